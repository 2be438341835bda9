"""The RTU agent: poll the meters into a durable outbox, forward the outbox to the broker,
execute commands from the cloud, report the RTU's health and events.

One poll cycle, per meter: read every window after the meter's last captured interval, group the
windows into envelopes of at most `max_intervals_per_envelope` intervals, and store each one in
the outbox (`hemera_agent.buffer`). Then, when due, the other readings of the meter: energy
registers (`registers_every_seconds`, daily), instantaneous values (`instantaneous_every_seconds`)
and the event logs since the last read (`events_every_seconds`; DLMS meters, and Modbus meters
whose model maps an event log) - one envelope per reading, its read time kept in the outbox with
it so a restart neither repeats nor skips one.
A separate forwarder publishes the outbox in order and deletes each message after its PUBACK;
while the broker is unreachable the outbox grows (bounded, with an overflow policy) and after a
reconnect it drains in order.

Delivery is at least once, and a sequence number always names exactly one payload: the outbox
assigns the seq, stores the bytes and moves the meter's cursor in one SQLite transaction, before
anything can reach the broker. A crash before the commit loses nothing (the meter still holds the
intervals and the cursor did not move); after it, the envelope is replayed with the same seq and
the same bytes, which the cloud's (device, seq) idempotency absorbs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from hemera.domain.dlms import axdr
from hemera.domain.dlms.model import DlmsMeterModel, decode_load_profile_buffer, load_dlms_model
from hemera.domain.envelope import (
    MAX_ENVELOPE_BYTES,
    DlmsFrame,
    FrameKind,
    ModbusFrame,
    Protocol,
    build_envelope,
)
from hemera.domain.errors import HemeraError, MalformedFrame
from hemera.domain.modbus.model import ModbusMeterModel, RegisterGroup, load_model
from hemera_agent.backoff import Backoff
from hemera_agent.buffer import BUFFER_FILE, BufferFull, EnvelopeBuffer, MessageKind, OverflowPolicy
from hemera_agent.clock import Clock, SystemClock
from hemera_agent.commands import (
    AckStatus,
    Command,
    CommandAck,
    CommandType,
    InvalidCommand,
    command_id_of,
    parse_command,
)
from hemera_agent.config import AgentConfig, MeterConfig, MeterProtocol
from hemera_agent.dlms import DlmsEndpoint, DlmsReadError, DlmsSession, read_load_profile
from hemera_agent.publisher import BrokerUnavailable, Publisher, PublishFailed
from hemera_agent.reader import (
    LoadProfileReader,
    MeterAnsweredGarbage,
    MeterReadError,
    ModbusClient,
    ProfileWindow,
)
from hemera_agent.rtu_messages import HealthDocument, RtuEventType, rtu_event
from hemera_agent.state import StateStore

log = logging.getLogger("hemera_agent.agent")


STOP_GRACE_SECONDS = 0.5

# The readings besides the load profile, and the Modbus map group each one reads. A Modbus event
# log is not a register group but a cursor and a window (`_collect_modbus_events`).
MODBUS_GROUPS: dict[FrameKind, RegisterGroup] = {
    FrameKind.REGISTERS: "energy",
    FrameKind.INSTANTANEOUS: "instantaneous",
}
SCHEDULED_KINDS = (FrameKind.REGISTERS, FrameKind.INSTANTANEOUS, FrameKind.EVENTS)
# A-XDR of an empty array: an event log with no entry in the range asked for.
_EMPTY_ARRAY = b"\x01\x00"


class EnvelopeTooLarge(HemeraError):
    reason = "envelope_too_large"


ModbusConnector = Callable[[str, int, float], AbstractAsyncContextManager[ModbusClient]]


@asynccontextmanager
async def modbus_tcp(host: str, port: int, timeout: float) -> AsyncIterator[ModbusClient]:
    """A connected pymodbus TCP client for one RTU port, closed on exit."""
    client = AsyncModbusTcpClient(host, port=port, timeout=timeout, retries=1)
    try:
        if not await client.connect():
            raise MeterReadError(f"no Modbus TCP connection to {host}:{port}")
        yield client  # type: ignore[misc]  # pymodbus' client satisfies ModbusClient structurally
    finally:
        client.close()


@dataclass
class CycleReport:
    """What one poll cycle did: intervals/envelopes read into the outbox, messages published.

    `envelopes` counts load-profile envelopes; `readouts` the envelopes of registers,
    instantaneous values and events (`readout_frames` their frames).
    """

    intervals: int = 0
    envelopes: int = 0
    readouts: int = 0
    readout_frames: int = 0
    windows: int = 0
    failed_meters: list[str] = field(default_factory=list)
    published: int = 0
    buffer_full: bool = False
    first_seq: int | None = None
    last_seq: int | None = None

    def summary(self) -> dict[str, Any]:
        """What a command's ack reports of the envelopes it stored."""
        return {
            "intervals": self.intervals,
            "envelopes": self.envelopes,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
        }

    def readout_summary(self) -> dict[str, Any]:
        """What a `read_registers` command's ack reports."""
        return {
            "envelopes": self.readouts,
            "frames": self.readout_frames,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
        }

    def count(self, seq: int, intervals: int) -> None:
        self.envelopes += 1
        self.intervals += intervals
        self._seq(seq)

    def count_readout(self, seq: int, frames: int) -> None:
        self.readouts += 1
        self.readout_frames += frames
        self._seq(seq)

    def _seq(self, seq: int) -> None:
        self.first_seq = seq if self.first_seq is None else self.first_seq
        self.last_seq = seq


def firmware_version() -> str:
    try:
        return metadata.version("hemera-cloud")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def split_window(
    window: ProfileWindow, records: int, record_size: int
) -> tuple[ProfileWindow, ProfileWindow]:
    """Cut a window after its first `records` records into two frames of the same raw registers.

    Records fill a window from its first slot, so the cut keeps every record whole and each part
    is still a register block exactly as read, at its own address.
    """
    frame = window.frame
    cut = records * record_size
    hex_cut = cut * 4  # 2 bytes per register, 2 hex digits per byte
    head = ModbusFrame(
        kind=frame.kind,
        unit_id=frame.unit_id,
        function=frame.function,
        address=frame.address,
        count=cut,
        data=frame.data[:hex_cut],
    )
    tail = ModbusFrame(
        kind=frame.kind,
        unit_id=frame.unit_id,
        function=frame.function,
        address=frame.address + cut,
        count=frame.count - cut,
        data=frame.data[hex_cut:],
    )
    starts = window.interval_starts
    return ProfileWindow(head, starts[:records]), ProfileWindow(tail, starts[records:])


def _newest_capture(frames: Sequence[ModbusFrame | DlmsFrame]) -> datetime | None:
    """The newest capture time (meter clock) in event-log buffers: rows start with their clock."""
    newest: datetime | None = None
    for frame in frames:
        if not isinstance(frame, DlmsFrame):
            continue
        try:
            rows = axdr.decode(frame.raw())
            times = [axdr.decode_datetime(row[0]) for row in rows if isinstance(row, tuple) and row]
        except (MalformedFrame, TypeError):
            continue  # shipped as read; the cloud decides what to make of it
        newest = max([*times, *([newest] if newest else [])], default=newest)
    return newest


def _last_start(frame: DlmsFrame, period: timedelta, now: datetime) -> datetime:
    """Start of the last interval a range read could hold: its end capture time minus a period,
    on the period grid (capture times close their intervals)."""
    end = frame.selector.to if frame.selector else now
    seconds = int(period.total_seconds())
    return datetime.fromtimestamp((int(end.timestamp()) // seconds) * seconds, tz=UTC) - period


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        publisher: Publisher,
        *,
        clock: Clock | None = None,
        modbus: ModbusConnector = modbus_tcp,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.clock: Clock = clock or SystemClock()
        self._modbus = modbus
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._monotonic = monotonic
        self._started = monotonic()
        self.buffer = EnvelopeBuffer(
            config.state_dir / BUFFER_FILE,
            config.tenant,
            config.device,
            max_envelopes=config.buffer.max_envelopes,
            max_bytes=config.buffer.max_bytes,
            overflow=config.buffer.overflow,
        )
        legacy = StateStore(config.state_dir, config.tenant, config.device)
        if legacy.path.exists():  # an agent upgraded from the JSON state: keep its seqs and cursors
            state = legacy.load()
            self.buffer.adopt_legacy_state(state.next_seq, state.last_interval)
        r = config.reconnect
        self.retry_backoff = Backoff(r.base_seconds, r.cap_seconds, r.factor, rng=self._rng)
        # Unknown meter models fail at start-up, not in the night's first poll.
        self._models: dict[str, ModbusMeterModel] = {
            m.id: load_model(m.model) for m in config.meters if m.protocol is MeterProtocol.MODBUS
        }
        self._dlms_models: dict[str, DlmsMeterModel] = {
            m.id: load_dlms_model(m.model) for m in config.meters if m.protocol is MeterProtocol.DLMS
        }
        self._meters = {m.id: m for m in config.meters}
        self._link_locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._meter_status: dict[str, str] = {}
        self._wakeup = asyncio.Event()
        self._commands: asyncio.Queue[bytes] = asyncio.Queue()
        on_message = getattr(publisher, "on_message", None)
        if on_message is not None:
            on_message(config.command_topic, self._command_received)

    def close(self) -> None:
        self.buffer.close()

    # --- polling: meters -> outbox -----------------------------------------------------------------
    def _link_lock(self, host: str, port: int) -> asyncio.Lock:
        # One conversation per RTU port at a time: the cursor protocol is per meter, not per TCP
        # connection, so a poll and a command's re-read must not interleave on the same meter.
        return self._link_locks.setdefault((host, port), asyncio.Lock())

    async def collect(self) -> CycleReport:
        """Read everything new on every meter into the outbox (nothing is published here)."""
        report = CycleReport()
        if self.buffer.overflow is OverflowPolicy.STOP_READING and not self.buffer.has_room():
            # Do not even read: the meters keep the data until the outbox drains.
            log.warning("outbox full; meters not read", extra={"depth": self.buffer.depth()})
            report.buffer_full = True
        links: dict[tuple[str, int], list[MeterConfig]] = defaultdict(list)
        for meter in self.config.meters:
            if meter.protocol is MeterProtocol.MODBUS:
                links[(meter.host, meter.port)].append(meter)
        for meter in self._dlms_meters():
            if report.buffer_full:
                break
            try:
                await self._collect_dlms(meter, report)
                await self._collect_dlms_readouts(meter, report)
            except MeterReadError as exc:
                self._meter_failed(meter.id, exc, report)
            except BufferFull as exc:
                log.warning("outbox full; meters not read", extra={"error": str(exc)})
                report.buffer_full = True
            else:
                self._meter_ok(meter.id)
        for (host, port), meters in links.items():
            if report.buffer_full:
                break
            timeout = max(m.timeout_seconds for m in meters)
            async with self._link_lock(host, port):
                try:
                    async with self._modbus(host, port, timeout) as client:
                        for meter in meters:
                            try:
                                await self._collect(client, meter, report)
                                await self._collect_modbus_readouts(client, meter, report)
                            except MeterReadError as exc:
                                self._meter_failed(meter.id, exc, report)
                            except BufferFull as exc:
                                log.warning("outbox full; meters not read", extra={"error": str(exc)})
                                report.buffer_full = True
                                break
                            else:
                                self._meter_ok(meter.id)
                except MeterReadError as exc:
                    log.warning("rtu link failed", extra={"host": host, "port": port, "error": str(exc)})
                    for meter in meters:
                        if meter.id not in report.failed_meters:
                            self._meter_failed(meter.id, exc, report)
        self._report_overflow()
        if report.envelopes or report.readouts:
            self._wakeup.set()
        log.info(
            "poll cycle done",
            extra={
                "intervals": report.intervals,
                "envelopes": report.envelopes,
                "readouts": report.readouts,
                "windows": report.windows,
                "failed_meters": report.failed_meters,
                "buffer_full": report.buffer_full,
            },
        )
        return report

    async def poll_once(self) -> CycleReport:
        """One cycle: read every meter into the outbox, then publish the outbox.

        `PublishFailed` stops publishing; what was not acknowledged stays in the outbox.
        """
        report = await self.collect()
        report.published = await self.flush()
        return report

    def _meter_failed(self, meter_id: str, exc: MeterReadError, report: CycleReport) -> None:
        garbage = isinstance(exc, MeterAnsweredGarbage)
        status = "garbage" if garbage else "failed"
        log.warning("meter read failed", extra={"meter": meter_id, "error": str(exc), "reason": exc.reason})
        report.failed_meters.append(meter_id)
        if self._meter_status.get(meter_id) != status:  # one event per change, not one per poll
            kind = RtuEventType.METER_GARBAGE if garbage else RtuEventType.METER_READ_FAILED
            self.raise_event(kind, meter_id, reason=exc.reason, error=str(exc))
        self._meter_status[meter_id] = status

    def _meter_ok(self, meter_id: str) -> None:
        previous = self._meter_status.get(meter_id)
        if previous not in (None, "ok"):
            self.raise_event(RtuEventType.METER_RECOVERED, meter_id, was=previous)
        self._meter_status[meter_id] = "ok"

    def _report_overflow(self) -> None:
        if self.buffer.overflow_needs_report():
            state = self.buffer.overflow_state()
            count, size = self.buffer.telemetry_usage()
            assert state is not None
            self.raise_event(
                RtuEventType.BUFFER_OVERFLOW,
                policy=self.buffer.overflow.value,
                envelopes=count,
                bytes=size,
                max_envelopes=self.buffer.max_envelopes,
                max_bytes=self.buffer.max_bytes,
                refused=state.refused,
                dropped=state.dropped,
                first_dropped_seq=state.first_dropped_seq,
                last_dropped_seq=state.last_dropped_seq,
            )
            self.buffer.mark_overflow_reported()

    async def _collect(self, client: ModbusClient, meter: MeterConfig, report: CycleReport) -> None:
        reader = LoadProfileReader(client, meter.id, meter.unit_id, self._models[meter.id])
        try:
            windows = reader.windows_after(self.state_cursor(meter.id), self.config.backfill)
            await self._enqueue_windows(meter, windows, report, move_cursor=True)
        finally:
            report.windows += reader.windows_read

    def _dlms_meters(self) -> list[MeterConfig]:
        return [m for m in self.config.meters if m.protocol is MeterProtocol.DLMS]

    async def _collect_dlms(self, meter: MeterConfig, report: CycleReport) -> None:
        """Read a DLMS meter's load profile since the last captured interval, by range.

        The meter stamps each row with the capture time, which closes the interval (see the
        model's `clock_marks`), so the next row wanted is captured after `cursor + period`.
        One envelope per frame (the reader returns one frame per day: at most 96 intervals).
        """
        model = self._dlms_models[meter.id]
        period = timedelta(minutes=model.load_profile.interval_minutes)
        now = self.clock.now()
        cursor = self.state_cursor(meter.id)
        since = cursor + period + timedelta(seconds=1) if cursor else now - self.config.backfill
        assert meter.password is not None  # MeterConfig requires it for DLMS meters
        async with self._link_lock(meter.host, meter.port):
            try:
                frames = await read_load_profile(
                    meter.host,
                    meter.port,
                    meter.password,
                    since,
                    now,
                    model=model.model,
                    timeout_s=meter.timeout_seconds,
                )
            except DlmsReadError as exc:
                raise MeterReadError(f"meter {meter.id}: {exc}") from exc
        garbage: list[str] = []
        for frame in frames:
            report.windows += 1
            try:
                starts = sorted({r.start for r in decode_load_profile_buffer(model, meter.id, frame.raw())})
            except MalformedFrame as exc:
                # Ship the frame anyway (the cloud quarantines it with the reason and the bytes)
                # and move past its range: a row the meter will always answer the same way must
                # not stop this meter's data for good.
                garbage.append(str(exc))
                self._store_frames(
                    meter,
                    model.model,
                    Protocol.DLMS,
                    [frame],
                    [_last_start(frame, period, now)],
                    report,
                    move_cursor=True,
                )
                continue
            if starts:
                self._store_frames(
                    meter, model.model, Protocol.DLMS, [frame], starts, report, move_cursor=True
                )
        if garbage:
            raise MeterAnsweredGarbage(
                f"meter {meter.id}: load profile does not decode: {'; '.join(garbage)}"
            )

    # --- registers, instantaneous values, events: on a schedule --------------------------------------
    def _schedule_key(self, kind: FrameKind, meter_id: str) -> str:
        return f"{kind.value}:{meter_id}"

    def _period(self, kind: FrameKind) -> float:
        return {
            FrameKind.REGISTERS: self.config.registers_every_seconds,
            FrameKind.INSTANTANEOUS: self.config.instantaneous_every_seconds,
            FrameKind.EVENTS: self.config.events_every_seconds,
        }[kind]

    def _due(self, kind: FrameKind, meter_id: str, now: datetime) -> bool:
        period = self._period(kind)
        if period <= 0:
            return False
        last = self.buffer.schedule_mark(self._schedule_key(kind, meter_id))
        # A mark in the future means the RTU clock was set back: read now rather than wait.
        return last is None or last > now or (now - last).total_seconds() >= period

    def _store_readout(
        self,
        meter: MeterConfig,
        model: str,
        protocol: Protocol,
        kind: FrameKind,
        frames: Sequence[ModbusFrame | DlmsFrame],
        report: CycleReport,
        read_at: datetime | None,
    ) -> None:
        """One envelope for one reading; `read_at` moves its schedule mark with it (None: on
        demand, the schedule stays). A reading with no frame only moves the mark."""
        mark = None if read_at is None else (self._schedule_key(kind, meter.id), read_at)
        if frames:
            self._store_frames(meter, model, protocol, frames, [], report, move_cursor=False, mark=mark)
        elif mark is not None:
            self.buffer.set_schedule_mark(*mark)

    async def _collect_modbus_readouts(
        self, client: ModbusClient, meter: MeterConfig, report: CycleReport
    ) -> None:
        """Energy registers and instantaneous values that are due, one read per register run;
        the event log when due and the model has one."""
        model = self._models[meter.id]
        reader = LoadProfileReader(client, meter.id, meter.unit_id, model)
        for kind, group in MODBUS_GROUPS.items():
            now = self.clock.now()
            if self._due(kind, meter.id, now):
                frames = await reader.read_group(group, kind)
                self._store_readout(meter, model.model, Protocol.MODBUS, kind, frames, report, now)
        now = self.clock.now()
        if model.event_log is not None and self._due(FrameKind.EVENTS, meter.id, now):
            await self._collect_modbus_events(reader, meter, report, now)

    async def _collect_modbus_events(
        self, reader: LoadProfileReader, meter: MeterConfig, report: CycleReport, now: datetime
    ) -> None:
        """The event-log entries stamped since the newest one already in the outbox (meter clock,
        the DLMS path's mark; the first time: the backfill), in one envelope; none, no envelope.

        The mark moves past the newest entry only after the envelope is stored: a crash in between
        re-reads (and re-sends) those entries, it never skips one; the cloud keeps each once.
        """
        since_key = f"events-since:{meter.id}"
        since = self.buffer.schedule_mark(since_key) or now - self.config.backfill
        read = await reader.event_windows(since)
        frames = [w.frame for w in read.windows]
        self._store_readout(meter, reader.model.model, Protocol.MODBUS, FrameKind.EVENTS, frames, report, now)
        next_since = read.next_since()
        if next_since is not None:
            self.buffer.set_schedule_mark(since_key, next_since)

    async def _read_dlms_objects(
        self, meter: MeterConfig, kinds: Sequence[FrameKind], events_since: datetime | None = None
    ) -> dict[FrameKind, list[DlmsFrame]]:
        """Registers / instantaneous values / event logs (entries since `events_since`) of a DLMS
        meter in one association."""
        model = self._dlms_models[meter.id]
        assert meter.password is not None  # MeterConfig requires it for DLMS meters
        endpoint = DlmsEndpoint(meter.host, meter.port, meter.password, timeout_s=meter.timeout_seconds)

        def work() -> dict[FrameKind, list[DlmsFrame]]:
            read: dict[FrameKind, list[DlmsFrame]] = {}
            with DlmsSession(endpoint) as session:
                for kind in kinds:
                    if kind is FrameKind.REGISTERS:
                        read[kind] = session.read_registers(model)
                    elif kind is FrameKind.INSTANTANEOUS:
                        read[kind] = session.read_instantaneous(model)
                    else:
                        read[kind] = session.read_events(model, events_since)
            return read

        async with self._link_lock(meter.host, meter.port):
            try:
                return await asyncio.to_thread(work)
            except DlmsReadError as exc:
                raise MeterReadError(f"meter {meter.id}: {exc}") from exc

    async def _collect_dlms_readouts(self, meter: MeterConfig, report: CycleReport) -> None:
        """Registers, instantaneous values and event logs of a DLMS meter, those that are due.

        Event logs are read by range from the previous read's time (the first time: the
        backfill), so each read carries the entries since the last one; logs without a new entry
        are left out, and a read with none stores no envelope.
        """
        now = self.clock.now()
        due = [kind for kind in SCHEDULED_KINDS if self._due(kind, meter.id, now)]
        if not due:
            return
        # Event logs are filtered by the meter's own capture times, so the next read starts after
        # the newest entry already read (meter clock), not at the RTU's clock: a meter running
        # behind the RTU would otherwise hide the entries of that lag (power-down, tamper).
        since_key = f"events-since:{meter.id}"
        since = self.buffer.schedule_mark(since_key) or now - self.config.backfill
        read = await self._read_dlms_objects(meter, due, since)
        model = self._dlms_models[meter.id].model
        for kind in due:
            frames = read[kind]
            if kind is FrameKind.EVENTS:
                frames = [f for f in frames if f.raw() != _EMPTY_ARRAY]
            self._store_readout(meter, model, Protocol.DLMS, kind, frames, report, now)
            newest = _newest_capture(frames) if kind is FrameKind.EVENTS else None
            if newest is not None:
                # After the envelope is safe in the outbox: a crash in between re-reads (and
                # re-sends) those entries, it never skips one.
                self.buffer.set_schedule_mark(since_key, newest + timedelta(seconds=1))

    def state_cursor(self, meter_id: str) -> datetime | None:
        return self.buffer.cursors().get(meter_id)

    async def _enqueue_windows(
        self,
        meter: MeterConfig,
        windows: AsyncIterable[ProfileWindow],
        report: CycleReport,
        *,
        move_cursor: bool,
        until: datetime | None = None,
    ) -> None:
        """Group windows into envelopes of at most `max_intervals_per_envelope` and store them."""
        model = self._models[meter.id]
        limit = self.config.max_intervals_per_envelope
        size = model.load_profile.record_size
        batch: list[ProfileWindow] = []
        held = 0
        async for read in windows:
            window = read
            if until is not None:
                keep = sum(1 for start in window.interval_starts if start <= until)
                if keep == 0:
                    break
                if keep < len(window.interval_starts):
                    window, _after = split_window(window, keep, size)
            while held + len(window.interval_starts) > limit:
                room = limit - held
                if room > 0:
                    head, window = split_window(window, room, size)
                    batch.append(head)
                self._store(meter, model, batch, report, move_cursor)
                batch, held = [], 0
            batch.append(window)
            held += len(window.interval_starts)
            if held == limit:
                self._store(meter, model, batch, report, move_cursor)
                batch, held = [], 0
        if batch:
            self._store(meter, model, batch, report, move_cursor)

    def _store(
        self,
        meter: MeterConfig,
        model: ModbusMeterModel,
        windows: list[ProfileWindow],
        report: CycleReport,
        move_cursor: bool,
    ) -> None:
        starts = [start for w in windows for start in w.interval_starts]
        self._store_frames(
            meter, model.model, Protocol.MODBUS, [w.frame for w in windows], starts, report, move_cursor
        )

    def _store_frames(
        self,
        meter: MeterConfig,
        model: str,
        protocol: Protocol,
        frames: Sequence[ModbusFrame | DlmsFrame],
        interval_starts: list[datetime],
        report: CycleReport,
        move_cursor: bool,
        mark: tuple[str, datetime] | None = None,
    ) -> None:
        """Put one envelope of raw frames into the outbox; it names the intervals it carries
        (none for registers, instantaneous values and events, which move their `mark` instead)."""
        collected_at = self.clock.now()

        def payload(seq: int) -> bytes:
            envelope = build_envelope(
                tenant=self.config.tenant,
                device=self.config.device,
                meter=meter.id,
                model=model,
                protocol=protocol,
                seq=seq,
                collected_at=collected_at,
                frames=frames,
            )
            data = envelope.to_json()
            if len(data) > MAX_ENVELOPE_BYTES:
                raise EnvelopeTooLarge(f"envelope {seq} of meter {meter.id} is {len(data)} bytes")
            return data

        if not interval_starts:
            seq = self.buffer.enqueue_envelope(
                self.config.telemetry_topic, payload, meter=meter.id, last_interval=None, mark=mark
            )
            report.count_readout(seq, len(frames))
            log.info(
                "envelope stored",
                extra={"meter": meter.id, "seq": seq, "kind": frames[0].kind.value, "frames": len(frames)},
            )
            return
        last = interval_starts[-1]
        seq = self.buffer.enqueue_envelope(
            self.config.telemetry_topic,
            payload,
            meter=meter.id,
            last_interval=last if move_cursor else None,
            mark=mark,
        )
        report.count(seq, len(interval_starts))
        log.info(
            "envelope stored",
            extra={
                "meter": meter.id,
                "seq": seq,
                "intervals": len(interval_starts),
                "first": interval_starts[0].isoformat(),
                "last": last.isoformat(),
            },
        )

    # --- forwarding: outbox -> broker --------------------------------------------------------------
    async def flush(self) -> int:
        """Publish the outbox in order until it is empty; returns how many were acknowledged.

        Raises `PublishFailed` at the first failure; that message and all after it stay queued.
        """
        sent = 0
        while True:
            batch = self.buffer.peek(self.config.broker.max_inflight)
            if not batch:
                return sent
            # A window of publishes in flight, started in outbox order. On one connection the
            # broker receives them in that order; if the connection drops, the unacknowledged
            # ones are resent with the same seq and bytes. Only a broker *refusing* one message
            # while accepting the next can reorder - and that message then waits, never vanishes.
            results = await asyncio.gather(
                *(self.publisher.publish(m.topic, m.payload) for m in batch), return_exceptions=True
            )
            failure: BaseException | None = None
            for message, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    failure = failure or result
                    continue
                self.buffer.acknowledge(message.id)
                sent += 1
            if failure is not None:
                raise failure
            recovered = self.buffer.end_overflow_if_drained()
            if recovered is not None:
                self.raise_event(
                    RtuEventType.BUFFER_RECOVERED,
                    since=recovered.since.isoformat(),
                    refused=recovered.refused,
                    dropped=recovered.dropped,
                    first_dropped_seq=recovered.first_dropped_seq,
                    last_dropped_seq=recovered.last_dropped_seq,
                )

    async def _forward_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wakeup.clear()
            try:
                sent = await self.flush()
                if sent:
                    self.retry_backoff.reset()
            except BrokerUnavailable as exc:
                # The publisher already waited for its (jittered) reconnect; try again at once.
                log.info(
                    "broker unavailable; outbox kept", extra={"error": str(exc), "depth": self.buffer.depth()}
                )
                await self._sleep(0)
                continue
            except PublishFailed as exc:
                delay = self.retry_backoff.next_delay()
                log.warning(
                    "publish failed; retrying",
                    extra={"error": str(exc), "delay_s": round(delay, 3), "depth": self.buffer.depth()},
                )
                await self._sleep(delay)
                continue
            except Exception:  # a daemon: log, keep the outbox, try again
                log.exception("forwarder crashed")
                await self._sleep(self.retry_backoff.next_delay())
                continue
            await self._wakeup.wait()

    # --- RTU events and health ---------------------------------------------------------------------
    def raise_event(self, kind: RtuEventType, meter: str | None = None, **detail: Any) -> None:
        """Queue an RTU event on `up/events` (through the outbox: events survive outages too)."""
        event = rtu_event(self.config.tenant, self.config.device, self.clock.now(), kind, meter, **detail)
        self.buffer.enqueue_control(MessageKind.EVENT, self.config.events_topic, event.to_json())
        log.warning("rtu event", extra={"event": kind.value, "meter": meter, **detail})
        self._wakeup.set()

    def _temperature(self) -> tuple[float, str]:
        path = self.config.health.temperature_path
        try:
            return int(path.read_text().strip()) / 1000.0, "sys"  # millidegrees Celsius
        except (OSError, ValueError):
            # No sensor (a container, a laptop): a plausible enclosure temperature, marked as such.
            hours = self._monotonic() / 3600
            return round(38.0 + 4.0 * math.sin(hours) + self._rng.uniform(-0.5, 0.5), 1), "simulated"

    def health(self) -> HealthDocument:
        _envelopes, size = self.buffer.telemetry_usage()
        temperature, source = self._temperature()
        return HealthDocument(
            tenant=self.config.tenant,
            device=self.config.device,
            at=self.clock.now(),
            firmware=firmware_version(),
            uptime_seconds=round(self._monotonic() - self._started, 3),
            signal_dbm=self.config.health.signal_dbm,
            temperature_c=temperature,
            temperature_source=source,  # type: ignore[arg-type]
            buffer_depth=self.buffer.depth(),
            buffer_bytes=size,
            meters_failing=sorted(m for m, s in self._meter_status.items() if s != "ok"),
        )

    async def publish_health(self) -> None:
        """Publish the health document directly: a stale one is worth nothing, so it is not queued."""
        await self.publisher.publish(self.config.health_topic, self.health().to_json())

    async def _health_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.publish_health()
            except PublishFailed as exc:
                log.info("health not published", extra={"error": str(exc)})
            except Exception:
                log.exception("health report crashed")
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.health.interval_seconds)

    # --- commands ------------------------------------------------------------------------------------
    def _command_received(self, _topic: str, payload: bytes) -> None:
        self._commands.put_nowait(payload)

    async def _command_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            payload = await self._commands.get()
            try:
                await self.handle_command(payload)
            except Exception:
                log.exception("command handling crashed")

    async def handle_command(self, payload: bytes) -> CommandAck | None:
        """Execute a command at most once and queue its ack; None if it has no usable id."""
        started = self.clock.now()
        try:
            command = parse_command(payload)
        except InvalidCommand as exc:
            command_id = command_id_of(payload)
            log.warning("invalid command", extra={"command_id": command_id, "error": str(exc)})
            if command_id is None or self.buffer.claim_command(command_id) is not None:
                return None
            return self._finish(command_id, AckStatus.ERROR, _error(exc), started)
        earlier = self.buffer.claim_command(command.id)
        if earlier is not None:
            log.info("duplicate command", extra={"command_id": command.id, "original_status": earlier.status})
            ack = CommandAck(
                id=command.id,
                status=AckStatus.DUPLICATE,
                result={"original_status": earlier.status},
                started_at=started,
                finished_at=self.clock.now(),
            )
            self.buffer.enqueue_control(MessageKind.ACK, self.config.ack_topic, ack.to_json())
            self._wakeup.set()
            return ack
        log.info(
            "command", extra={"command_id": command.id, "type": command.type.value, "meter": command.meter}
        )
        try:
            result = await self._execute(command)
        except (MeterReadError, InvalidCommand, BufferFull) as exc:
            return self._finish(command.id, AckStatus.ERROR, _error(exc), started)
        except Exception as exc:
            log.exception("command crashed", extra={"command_id": command.id})
            return self._finish(
                command.id, AckStatus.ERROR, {"reason": "internal", "detail": str(exc)}, started
            )
        return self._finish(command.id, AckStatus.OK, result, started)

    def _finish(
        self, command_id: str, status: AckStatus, result: dict[str, Any], started: datetime
    ) -> CommandAck:
        ack = CommandAck(
            id=command_id, status=status, result=result, started_at=started, finished_at=self.clock.now()
        )
        self.buffer.finish_command(command_id, status.value, self.config.ack_topic, ack.to_json())
        self._wakeup.set()
        return ack

    async def _execute(self, command: Command) -> dict[str, Any]:
        if command.type is CommandType.PING:
            return self.health().model_dump(mode="json", by_alias=True)
        assert command.meter is not None  # the model requires it for every other type
        meter = self._meters.get(command.meter)
        if meter is None:
            raise InvalidCommand(f"meter {command.meter} is not behind this RTU")
        if meter.protocol is MeterProtocol.DLMS:
            return await self._execute_dlms(command, meter)
        async with (
            self._link_lock(meter.host, meter.port),
            self._modbus(meter.host, meter.port, meter.timeout_seconds) as client,
        ):
            reader = LoadProfileReader(client, meter.id, meter.unit_id, self._models[meter.id])
            if command.type is CommandType.READ_REGISTERS:
                report = CycleReport()
                for kind, group in MODBUS_GROUPS.items():
                    frames = await reader.read_group(group, kind)
                    self._store_readout(
                        meter, reader.model.model, Protocol.MODBUS, kind, frames, report, None
                    )
                return report.readout_summary()
            if command.type is CommandType.READ_RANGE:
                span = command.read_range()
                report = CycleReport()
                windows = reader.windows_between(span.from_, span.to)
                await self._enqueue_windows(meter, windows, report, move_cursor=False, until=span.to)
                return report.summary()
            if command.type in (CommandType.CONNECT, CommandType.DISCONNECT):
                wanted = 1 if command.type is CommandType.CONNECT else 0
                await reader.write_register("relay", wanted)
                now = int(await reader.read_register("relay"))
                if now != wanted:
                    raise MeterAnsweredGarbage(f"meter {meter.id}: relay reads {now} after writing {wanted}")
                return {"relay": "connected" if now else "open"}
            # clock_sync
            target = command.clock_sync().epoch or int(self.clock.now().timestamp())
            before = int(await reader.read_register("clock"))
            await reader.write_register("clock", target)
            return {"meter_clock_before": before, "set_to": target, "drift_seconds": before - target}

    async def _execute_dlms(self, command: Command, meter: MeterConfig) -> dict[str, Any]:
        model = self._dlms_models[meter.id]
        assert meter.password is not None
        endpoint = DlmsEndpoint(meter.host, meter.port, meter.password, timeout_s=meter.timeout_seconds)
        if command.type is CommandType.READ_REGISTERS:
            report = CycleReport()
            read = await self._read_dlms_objects(meter, (FrameKind.REGISTERS, FrameKind.INSTANTANEOUS))
            for kind, frames in read.items():
                self._store_readout(meter, model.model, Protocol.DLMS, kind, frames, report, None)
            return report.readout_summary()
        if command.type is CommandType.READ_RANGE:
            span = command.read_range()
            period = timedelta(minutes=model.load_profile.interval_minutes)
            report = CycleReport()
            async with self._link_lock(meter.host, meter.port):
                # Capture times close their intervals: [from, to] of starts is [from+p, to+p].
                frames = await read_load_profile(
                    meter.host,
                    meter.port,
                    meter.password,
                    span.from_ + period,
                    span.to + period,
                    model=model.model,
                )
            for frame in frames:
                starts = sorted({r.start for r in decode_load_profile_buffer(model, meter.id, frame.raw())})
                if starts:
                    self._store_frames(
                        meter, model.model, Protocol.DLMS, [frame], starts, report, move_cursor=False
                    )
            return report.summary()
        if command.type in (CommandType.CONNECT, CommandType.DISCONNECT):
            connect = command.type is CommandType.CONNECT

            def operate() -> None:
                with DlmsSession(endpoint) as session:
                    session.operate_disconnect_control(model, connect)

            async with self._link_lock(meter.host, meter.port):
                await asyncio.to_thread(operate)
            return {"relay": "connected" if connect else "open"}
        raise InvalidCommand(f"{command.type.value} is not supported for DLMS meters yet")

    # --- the daemon ------------------------------------------------------------------------------------
    async def _poll_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.collect()
            except Exception:  # the agent is a daemon: log, keep the outbox, try again next cycle
                log.exception("poll cycle crashed")
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.poll_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll, forward, answer commands and report health until `stop` is set.

        Stopping cancels whatever is in flight: the outbox is only changed by whole SQLite
        transactions, so a cancelled publish simply stays queued.
        """
        forward = asyncio.create_task(self._forward_loop(stop), name="forward")
        others = [
            asyncio.create_task(self._poll_loop(stop), name="poll"),
            asyncio.create_task(self._command_loop(stop), name="commands"),
            asyncio.create_task(self._health_loop(stop), name="health"),
        ]
        try:
            await stop.wait()
        finally:
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            # A short grace for PUBACKs already on their way, so a clean stop does not leave
            # delivered messages queued for a resend; then stop regardless.
            self._wakeup.set()
            with suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(forward), STOP_GRACE_SECONDS)
            forward.cancel()
            await asyncio.gather(forward, return_exceptions=True)


def _error(exc: Exception) -> dict[str, Any]:
    reason = getattr(exc, "reason", "error")
    return {"reason": reason, "detail": str(exc)}
