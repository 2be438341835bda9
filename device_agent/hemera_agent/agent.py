"""The RTU agent: poll the meters, wrap raw load-profile windows in envelopes, publish them.

One poll cycle, per meter: read every window after the meter's last captured interval, group the
windows into envelopes of at most `max_intervals_per_envelope` intervals, and publish each one.

Delivery is at least once, and a sequence number always names exactly one payload:
- the sequence number is reserved (state saved with `next_seq + 1`) *before* the envelope can
  reach the broker, so an envelope that got through but whose PUBACK was lost is never followed
  by a different payload under the same (device, seq) - the cloud archives by that name;
- the meter's last captured interval moves only *after* the PUBACK, so a crash or a broker outage
  makes the next cycle read and send those intervals again (under a new seq) rather than lose them.
The meter's own load-profile memory is the buffer while the broker is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusTcpClient

from hemera.domain.envelope import MAX_ENVELOPE_BYTES, ModbusFrame, Protocol, build_envelope
from hemera.domain.errors import HemeraError
from hemera.domain.modbus.model import ModbusMeterModel, load_model
from hemera_agent.clock import Clock, SystemClock
from hemera_agent.config import AgentConfig, MeterConfig
from hemera_agent.publisher import Publisher, PublishFailed
from hemera_agent.reader import LoadProfileReader, MeterReadError, ModbusClient, ProfileWindow
from hemera_agent.state import StateStore

log = logging.getLogger("hemera_agent.agent")


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
    """What one poll cycle did."""

    intervals: int = 0
    envelopes: int = 0
    windows: int = 0
    failed_meters: list[str] = field(default_factory=list)


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


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        publisher: Publisher,
        *,
        clock: Clock | None = None,
        modbus: ModbusConnector = modbus_tcp,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.clock: Clock = clock or SystemClock()
        self._modbus = modbus
        self.store = StateStore(config.state_dir, config.tenant, config.device)
        self.state = self.store.load()
        # Unknown meter models fail at start-up, not in the night's first poll.
        self._models: dict[str, ModbusMeterModel] = {m.id: load_model(m.model) for m in config.meters}

    async def poll_once(self) -> CycleReport:
        """Read and publish everything new on every meter. `PublishFailed` stops the cycle."""
        report = CycleReport()
        links: dict[tuple[str, int], list[MeterConfig]] = defaultdict(list)
        for meter in self.config.meters:
            links[(meter.host, meter.port)].append(meter)
        for (host, port), meters in links.items():
            timeout = max(m.timeout_seconds for m in meters)
            try:
                async with self._modbus(host, port, timeout) as client:
                    for meter in meters:
                        try:
                            await self._collect(client, meter, report)
                        except MeterReadError as exc:
                            log.warning("meter read failed", extra={"meter": meter.id, "error": str(exc)})
                            report.failed_meters.append(meter.id)
            except MeterReadError as exc:
                log.warning("rtu link failed", extra={"host": host, "port": port, "error": str(exc)})
                report.failed_meters.extend(m.id for m in meters if m.id not in report.failed_meters)
        log.info(
            "poll cycle done",
            extra={
                "intervals": report.intervals,
                "envelopes": report.envelopes,
                "windows": report.windows,
                "failed_meters": report.failed_meters,
            },
        )
        return report

    async def _collect(self, client: ModbusClient, meter: MeterConfig, report: CycleReport) -> None:
        model = self._models[meter.id]
        reader = LoadProfileReader(client, meter.id, meter.unit_id, model)
        limit = self.config.max_intervals_per_envelope
        batch: list[ProfileWindow] = []
        held = 0
        try:
            async for window in reader.windows_after(
                self.state.last_interval.get(meter.id), self.config.backfill
            ):
                while held + len(window.interval_starts) > limit:
                    room = limit - held
                    if room > 0:
                        head, window = split_window(window, room, model.load_profile.record_size)
                        batch.append(head)
                    await self._send(meter, model, batch, report)
                    batch, held = [], 0
                batch.append(window)
                held += len(window.interval_starts)
                if held == limit:
                    await self._send(meter, model, batch, report)
                    batch, held = [], 0
            if batch:
                await self._send(meter, model, batch, report)
        finally:
            report.windows += reader.windows_read

    async def _send(
        self, meter: MeterConfig, model: ModbusMeterModel, windows: list[ProfileWindow], report: CycleReport
    ) -> None:
        seq = self.state.next_seq
        self.state.next_seq = seq + 1
        self.store.save(self.state)  # reserve the seq before the payload can reach the broker
        envelope = build_envelope(
            tenant=self.config.tenant,
            device=self.config.device,
            meter=meter.id,
            model=model.model,
            protocol=Protocol.MODBUS,
            seq=seq,
            collected_at=self.clock.now(),
            frames=[w.frame for w in windows],
        )
        payload = envelope.to_json()
        if len(payload) > MAX_ENVELOPE_BYTES:
            raise EnvelopeTooLarge(f"envelope {seq} of meter {meter.id} is {len(payload)} bytes")
        intervals = sum(len(w.interval_starts) for w in windows)
        await self.publisher.publish(self.config.telemetry_topic, payload)
        self.state.last_interval[meter.id] = windows[-1].interval_starts[-1]
        self.store.save(self.state)
        report.envelopes += 1
        report.intervals += intervals
        log.info(
            "envelope published",
            extra={
                "meter": meter.id,
                "seq": seq,
                "intervals": intervals,
                "first": windows[0].interval_starts[0].isoformat(),
                "last": windows[-1].interval_starts[-1].isoformat(),
                "bytes": len(payload),
            },
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `poll_seconds` until `stop` is set; a failed cycle is retried next time."""
        while not stop.is_set():
            poll = asyncio.create_task(self.poll_once())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not poll.done():
                # Stop now rather than after a 30 s PUBACK timeout: state only moves after an
                # acknowledgement (and state saves are synchronous), so cancelling loses nothing.
                poll.cancel()
                with suppress(asyncio.CancelledError):
                    await poll
                return
            try:
                poll.result()
            except PublishFailed as exc:
                log.warning("publish failed; will resend next cycle", extra={"error": str(exc)})
            except Exception:  # the agent is a daemon: log, keep the state, try again next cycle
                log.exception("poll cycle crashed")
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.poll_seconds)
