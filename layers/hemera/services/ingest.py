"""Ingest: one device message in, canonical intervals stored and the raw envelope archived.

A message that cannot be accepted raises a `RejectedMessage`; the caller quarantines it with
`quarantine_message` and goes on with the rest of its batch. Any other error is transient
(throttling, a network fault) and makes the message be delivered again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from hemera.domain.dlms.model import PROFILE_GENERIC_CLASS, decode_load_profile_buffer, load_dlms_model
from hemera.domain.envelope import (
    CanonicalFrame,
    DlmsFrame,
    Envelope,
    FrameKind,
    ModbusFrame,
    Protocol,
    parse_envelope,
)
from hemera.domain.errors import (
    HemeraError,
    MalformedEnvelope,
    MalformedFrame,
    RejectedMessage,
    TopicMismatch,
    UnknownMeter,
    UnknownMeterModel,
    UnsupportedProtocol,
)
from hemera.domain.events_decode import (
    RtuEventDocument,
    decode_meter_events,
    decode_registers,
    events_translated,
    is_rtu_events_topic,
    parse_rtu_event,
    registers_on_primary_side,
    rtu_meter_event,
)
from hemera.domain.instantaneous import InstantaneousReading, decode_instantaneous, on_primary_side
from hemera.domain.meter_events import MeterEvent, Subject
from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera.domain.readings import CHANNEL_UNITS, IntervalReading
from hemera.domain.registers import RegisterReading
from hemera.domain.registry import Meter
from hemera.domain.tenancy import TenantContext, parse_device_topic
from hemera.ports import (
    Announce,
    ArchivedEnvelope,
    ChangeEvents,
    EnvelopeLedger,
    LedgerEntry,
    MergeStats,
    Quarantine,
    QuarantineRecord,
    RawArchive,
    ReadingStore,
    Registry,
    SeriesChange,
)
from hemera.ports.instantaneous import InstantaneousStore
from hemera.services.device_events import DeviceBatch, DeviceBatchStats, DeviceEventPorts, record_device_batch


@dataclass(frozen=True, slots=True)
class DeviceMessage:
    """What a device published, as the topic rule delivers it: its bytes and the topic."""

    message_id: str
    payload: bytes
    topic: str
    received_at: datetime


def unwrap_rule_message(
    message_id: str, body: str, received_at: datetime, payload_attribute: str, topic_attribute: str
) -> DeviceMessage:
    """Undo the topic rule's wrapping (`{"payload": base64, "mqtt_topic": topic}`).

    A body that is not such a wrapper did not come through the rule; it is rejected whole.
    """
    try:
        document = json.loads(body)
        payload = base64.b64decode(document[payload_attribute], validate=True)
        topic = document[topic_attribute]
        if not isinstance(topic, str):
            raise TypeError(topic_attribute)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise MalformedEnvelope(f"not a topic-rule message: {exc!r}") from exc
    return DeviceMessage(message_id, payload, topic, received_at)


@dataclass(frozen=True, slots=True)
class IngestPorts:
    store: ReadingStore
    registry: Registry
    archive: RawArchive
    quarantine: Quarantine
    events: ChangeEvents
    ledger: EnvelopeLedger
    instantaneous: InstantaneousStore
    # Device events, registers, outages and last-seen times (None: those frames stay archived only).
    device_events: DeviceEventPorts | None = None


class Disposition(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # this (device, seq) with these bytes was stored before
    REJECTED = "rejected"  # bad input: quarantine it
    FAILED = "failed"  # transient: deliver it again


@dataclass(frozen=True, slots=True)
class MessageResult:
    message: DeviceMessage
    disposition: Disposition
    tenant_id: str | None = None
    device_id: str | None = None
    meter_id: str | None = None
    seq: int | None = None
    intervals: int = 0
    archive_key: str | None = None
    archived_only_frames: int = 0
    error: Exception | None = None


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    results: list[MessageResult]  # one per message, in the order given
    stats: MergeStats
    device: DeviceBatchStats = field(default_factory=DeviceBatchStats)

    def count(self, disposition: Disposition) -> int:
        return sum(1 for r in self.results if r.disposition is disposition)


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    tenant_id: str
    device_id: str
    meter_id: str | None  # None: an RTU event about the RTU itself
    seq: int | None  # None: an RTU event (they carry no sequence number)
    intervals: int
    stats: MergeStats
    archive_key: str | None
    archived_only_frames: int = 0
    duplicate: bool = False


def topic_tenant(topic: str | None) -> str | None:
    """The tenant a topic belongs to, or None for a topic that is not a device topic."""
    try:
        return parse_device_topic(topic)[0] if topic else None
    except ValueError:
        return None


# Frames that are not load profile: instantaneous frames are decoded by
# `hemera.domain.instantaneous`, register and DLMS event-log frames by
# `hemera.domain.events_decode` (stored through `IngestPorts.device_events`), each apart from the
# interval series. Event frames of a model without an event-log map (`events_translated` false)
# are archived under the tenant (and can be translated from there later), not quarantined.
NOT_INTERVALS = frozenset({FrameKind.REGISTERS, FrameKind.EVENTS, FrameKind.INSTANTANEOUS})


def archived_only_frames(envelope: Envelope) -> int:
    if events_translated(envelope):
        return 0
    return sum(1 for frame in envelope.frames if frame.kind is FrameKind.EVENTS)


def decode_envelope(envelope: Envelope) -> list[IntervalReading]:
    """Translate the load-profile frames of an envelope into canonical interval readings
    (frames of the `NOT_INTERVALS` kinds are skipped)."""
    if envelope.protocol is Protocol.DLMS:
        return _decode_dlms(envelope)
    if envelope.protocol is Protocol.CANONICAL:
        return _canonical(envelope)
    if envelope.protocol is not Protocol.MODBUS:
        raise UnsupportedProtocol(f"protocol {envelope.protocol} is not translated yet")
    model = load_model(envelope.model)
    readings: list[IntervalReading] = []
    for frame in envelope.frames:
        if frame.kind in NOT_INTERVALS:
            continue
        if not isinstance(frame, ModbusFrame):  # the envelope guarantees it; keeps mypy honest
            raise MalformedFrame("a modbus envelope carries modbus frames only")
        try:
            registers = frame.registers()
        except ValueError as exc:
            raise MalformedFrame(str(exc)) from exc
        readings.extend(decode_load_profile_window(model, envelope.meter, registers))
    return readings


def _canonical(envelope: Envelope) -> list[IntervalReading]:
    """A connector's canonical intervals, checked like any other: unit of the channel, aligned
    UTC starts, allowed lengths."""
    readings: list[IntervalReading] = []
    for frame in envelope.frames:
        if not isinstance(frame, CanonicalFrame):
            raise MalformedFrame("a canonical envelope carries canonical frames only")
        if frame.unit is not CHANNEL_UNITS[frame.channel]:
            raise MalformedFrame(
                f"{frame.channel} is in {CHANNEL_UNITS[frame.channel]}, the frame says {frame.unit}"
            )
        readings += [
            IntervalReading.decoded(
                f"interval {interval.start.isoformat()}",
                meter_id=envelope.meter,
                channel=frame.channel,
                start=interval.start.astimezone(UTC),
                length_minutes=frame.interval_minutes,
                value=interval.value,
                unit=frame.unit,
                quality_flag=interval.quality,
            )
            for interval in frame.intervals
        ]
    return readings


def _decode_dlms(envelope: Envelope) -> list[IntervalReading]:
    """DLMS frames: the load-profile buffer (ProfileGeneric attribute 2) of the model's profile."""
    model = load_dlms_model(envelope.model)
    lp = model.load_profile
    readings: list[IntervalReading] = []
    for frame in envelope.frames:
        if not isinstance(frame, DlmsFrame):
            raise MalformedFrame("a dlms envelope carries dlms frames only")
        if frame.kind in NOT_INTERVALS:
            continue
        if (frame.obis, frame.class_id, frame.attribute) != (lp.obis, PROFILE_GENERIC_CLASS, 2):
            raise MalformedFrame(
                f"load-profile frame reads {frame.obis}/{frame.class_id}/{frame.attribute}, "
                f"model {model.model} keeps its profile in {lp.obis}/{PROFILE_GENERIC_CLASS}/2"
            )
        readings.extend(decode_load_profile_buffer(model, envelope.meter, frame.raw()))
    return readings


def primary_side(readings: list[IntervalReading], multiplier: Decimal) -> list[IntervalReading]:
    """Scale secondary-side values by the meter's CT x VT ratio; `raw_value` stays what the
    meter counted, so the reading keeps its provenance."""
    if multiplier == 1:
        return readings
    return [replace(r, value=r.value * multiplier) for r in readings]


@dataclass(frozen=True, slots=True)
class _Attributed:
    """A message whose topic and envelope agree: who sent it and what it says."""

    index: int
    message: DeviceMessage
    device_id: str
    envelope: Envelope
    entry: LedgerEntry


def _attribute(index: int, message: DeviceMessage) -> tuple[str, _Attributed]:
    try:
        tenant_id, device_id, _ = parse_device_topic(message.topic)
    except ValueError as exc:
        raise MalformedEnvelope(str(exc)) from exc
    envelope = parse_envelope(message.payload)
    # The topic is the device's authenticated identity; the payload's claim must agree with it.
    if (envelope.tenant, envelope.device) != (tenant_id, device_id):
        raise TopicMismatch(
            f"envelope says {envelope.tenant}/{envelope.device}, published on {tenant_id}/{device_id}"
        )
    digest = hashlib.sha256(message.payload).hexdigest()
    return tenant_id, _Attributed(
        index, message, device_id, envelope, LedgerEntry(device_id, envelope.seq, digest)
    )


@dataclass(frozen=True, slots=True)
class _RtuMessage:
    """An RTU event (`up/events`) whose topic and document agree."""

    index: int
    message: DeviceMessage
    device_id: str
    document: RtuEventDocument


def _attribute_rtu_event(index: int, message: DeviceMessage) -> tuple[str, _RtuMessage]:
    try:
        tenant_id, device_id, _ = parse_device_topic(message.topic)
    except ValueError as exc:
        raise MalformedEnvelope(str(exc)) from exc
    return tenant_id, _RtuMessage(
        index, message, device_id, parse_rtu_event(message.payload, tenant_id, device_id)
    )


def archive_batch_key(received_hour: datetime, message_ids: Sequence[str]) -> str:
    """Key (under the tenant's raw prefix) of one archive object: the hour the messages arrived,
    and a digest of their ids, so a retried batch rewrites the same object instead of adding one."""
    digest = hashlib.sha256("\n".join(sorted(message_ids)).encode()).hexdigest()[:20]
    return f"{received_hour:%Y/%m/%d/%H}/{digest}.jsonl.gz"


def ingest_batch(messages: Sequence[DeviceMessage], ports: IngestPorts) -> BatchOutcome:
    """Validate, attribute, translate, store, archive and record a batch of device messages.

    Per tenant in the batch: envelopes already in the ledger are duplicates and skipped; the
    meters are looked up together; the readings of all envelopes are merged together (one read
    per 100 meter-days, one conditional write per changed meter-day, change events announced
    before the writes); their device events and registers, the RTUs' `up/events` messages of the
    batch and every meter's and RTU's last-seen time are stored together
    (`hemera.services.device_events.record_device_batch`); the accepted envelopes are archived as
    one compressed JSON Lines object per hour of arrival; and only then are they recorded in the
    ledger. A failure before the ledger leaves the messages to be delivered again, and every step
    repeats without double effect. RTU events carry no sequence number: their identity is the
    event's (`MeterEvent.event_id`), and they are not archived (a rejected one is quarantined).
    """
    results: dict[int, MessageResult] = {}
    by_tenant: dict[str, list[_Attributed]] = {}
    rtu_by_tenant: dict[str, list[_RtuMessage]] = {}
    for index, message in enumerate(messages):
        try:
            if is_rtu_events_topic(message.topic):
                tenant_id, rtu = _attribute_rtu_event(index, message)
                rtu_by_tenant.setdefault(tenant_id, []).append(rtu)
                continue
            tenant_id, attributed = _attribute(index, message)
        except RejectedMessage as error:
            results[index] = MessageResult(
                message, Disposition.REJECTED, topic_tenant(message.topic), error=error
            )
            continue
        by_tenant.setdefault(tenant_id, []).append(attributed)
    stats, device = MergeStats(), DeviceBatchStats()
    for tenant_id in dict.fromkeys([*by_tenant, *rtu_by_tenant]):
        group, rtu_group = by_tenant.get(tenant_id, []), rtu_by_tenant.get(tenant_id, [])
        first = group[0].message if group else rtu_group[0].message
        ctx = TenantContext(tenant_id, correlation_id=first.message_id)
        try:
            merged, recorded = _ingest_tenant(ctx, group, rtu_group, ports, results)
            stats, device = stats + merged, device + recorded
        except Exception as error:  # anything not about one message is transient: retry the rest
            pending = [(i.index, i.message, i.device_id) for i in group]
            pending += [(r.index, r.message, r.device_id) for r in rtu_group]
            for index, message, device_id in pending:
                results.setdefault(
                    index, MessageResult(message, Disposition.FAILED, tenant_id, device_id, error=error)
                )
    return BatchOutcome([results[i] for i in range(len(messages))], stats, device)


def _ingest_tenant(
    ctx: TenantContext,
    group: list[_Attributed],
    rtu_group: list[_RtuMessage],
    ports: IngestPorts,
    results: dict[int, MessageResult],
) -> tuple[MergeStats, DeviceBatchStats]:
    seen = ports.ledger.seen(ctx, list({item.entry for item in group}))
    fresh: list[_Attributed] = []
    in_batch: set[LedgerEntry] = set()
    for item in group:
        if item.entry in seen or item.entry in in_batch:
            results[item.index] = _result(ctx, item, Disposition.DUPLICATE)
        else:
            in_batch.add(item.entry)
            fresh.append(item)
    rtu_meters = {r.document.meter for r in rtu_group if r.document.meter is not None}
    meters = ports.registry.get_meters(ctx, {item.envelope.meter for item in fresh} | rtu_meters)
    decoded: list[tuple[_Attributed, list[IntervalReading]]] = []
    instant: dict[int, InstantaneousReading] = {}
    extras: dict[int, tuple[list[MeterEvent], list[RegisterReading]]] = {}
    for item in fresh:
        try:
            meter = meters.get(item.envelope.meter)
            readings = _translate(item, meter)
            assert meter is not None  # `_translate` rejects an unknown meter
            reading = decode_instantaneous(item.envelope)
            if reading is not None:
                instant[item.index] = on_primary_side(reading, meter.multiplier)
            # Decoded even when they are not stored (a quarantine dry run): a bad frame is found.
            registers = registers_on_primary_side(decode_registers(item.envelope), meter.multiplier)
            extras[item.index] = (decode_meter_events(item.envelope), registers)
            decoded.append((item, readings))
        except RejectedMessage as error:
            results[item.index] = _result(ctx, item, Disposition.REJECTED, error=error)
    rtu_events: list[tuple[_RtuMessage, MeterEvent | None]] = []
    for rtu in rtu_group:
        try:
            rtu_events.append((rtu, _rtu_event(rtu, meters)))
        except RejectedMessage as error:
            results[rtu.index] = _rtu_result(ctx, rtu, Disposition.REJECTED, error)
    if not decoded and not rtu_events:
        return MergeStats(), DeviceBatchStats()

    def announce(changes: Sequence[SeriesChange]) -> None:
        ports.events.announce(ctx, changes)

    stats = MergeStats()
    if decoded:
        try:
            stats = ports.store.merge_intervals(
                ctx, [r for _, readings in decoded for r in readings], announce
            )
        except MalformedFrame:
            # An envelope contradicts what is stored (another interval length): merge them one by
            # one so that only the culprit is rejected.
            stats, decoded = _merge_one_by_one(ctx, decoded, ports, announce, results)
    # Put before the ledger records the envelopes: a put repeated by a redelivery rewrites the item.
    if instant:
        ports.instantaneous.put(ctx, [instant[item.index] for item, _ in decoded if item.index in instant])
    device = DeviceBatchStats()
    if ports.device_events is not None:
        device = record_device_batch(ctx, _device_batch(decoded, extras, rtu_events), ports.device_events)
    keys = _archive(ctx, [item for item, _ in decoded], ports.archive)
    if decoded:
        ports.ledger.record(ctx, [item.entry for item, _ in decoded])
    for item, readings in decoded:
        results[item.index] = _result(ctx, item, Disposition.STORED, len(readings), keys[item.index])
    for rtu, _event in rtu_events:
        results[rtu.index] = _rtu_result(ctx, rtu, Disposition.STORED)
    return stats, device


def _rtu_event(rtu: _RtuMessage, meters: dict[str, Meter]) -> MeterEvent | None:
    """The canonical event of an RTU message; one about a meter must name a meter of that RTU."""
    meter_id = rtu.document.meter
    if meter_id is not None:
        meter = meters.get(meter_id)
        if meter is None or meter.device_id != rtu.device_id:
            raise UnknownMeter(f"meter {meter_id} is not registered to device {rtu.device_id}")
    return rtu_meter_event(rtu.document)


def _rtu_result(
    ctx: TenantContext, rtu: _RtuMessage, disposition: Disposition, error: HemeraError | None = None
) -> MessageResult:
    return MessageResult(
        rtu.message, disposition, ctx.tenant_id, rtu.device_id, rtu.document.meter, error=error
    )


def _device_batch(
    decoded: list[tuple[_Attributed, list[IntervalReading]]],
    extras: dict[int, tuple[list[MeterEvent], list[RegisterReading]]],
    rtu_events: list[tuple[_RtuMessage, MeterEvent | None]],
) -> DeviceBatch:
    """Events, registers, outage-flagged intervals and last-seen times of the accepted messages.

    A meter and its RTU were seen when their message arrived: silence is about the platform
    hearing from a device, and arrival times only grow (an RTU replaying a backlog is talking
    now, whatever its envelopes' `collected_at`)."""
    batch = DeviceBatch()
    for item, readings in decoded:
        envelope, received = item.envelope, item.message.received_at
        events, registers = extras.get(item.index, ([], []))
        batch.events += events
        batch.registers += registers
        batch.add_intervals(readings)
        batch.saw(Subject.METER, envelope.meter, received)
        batch.saw(Subject.RTU, item.device_id, received)
    for rtu, event in rtu_events:
        if event is not None:
            batch.events.append(event)
        batch.saw(Subject.RTU, rtu.device_id, rtu.message.received_at)
    return batch


def _translate(item: _Attributed, meter: Meter | None) -> list[IntervalReading]:
    envelope = item.envelope
    if meter is None or meter.device_id != item.device_id:
        raise UnknownMeter(f"meter {envelope.meter} is not registered to device {item.device_id}")
    if meter.model != envelope.model:
        raise UnknownMeterModel(
            f"meter {meter.id} is registered as {meter.model}, envelope says {envelope.model}"
        )
    return primary_side(decode_envelope(envelope), meter.multiplier)


def _merge_one_by_one(
    ctx: TenantContext,
    decoded: list[tuple[_Attributed, list[IntervalReading]]],
    ports: IngestPorts,
    announce: Announce,
    results: dict[int, MessageResult],
) -> tuple[MergeStats, list[tuple[_Attributed, list[IntervalReading]]]]:
    stats, stored = MergeStats(), []
    for item, readings in decoded:
        try:
            stats += ports.store.merge_intervals(ctx, readings, announce)
        except MalformedFrame as error:
            results[item.index] = _result(ctx, item, Disposition.REJECTED, error=error)
            continue
        stored.append((item, readings))
    return stats, stored


def _archive(ctx: TenantContext, items: list[_Attributed], archive: RawArchive) -> dict[int, str]:
    """One compressed JSON Lines object per hour of arrival; returns each message's object key."""
    by_hour: dict[datetime, list[_Attributed]] = {}
    for item in items:
        hour = item.message.received_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        by_hour.setdefault(hour, []).append(item)
    keys: dict[int, str] = {}
    for hour, hour_items in sorted(by_hour.items()):
        key = archive.put_batch(
            ctx,
            archive_batch_key(hour, [i.message.message_id for i in hour_items]),
            [
                ArchivedEnvelope(
                    message_id=i.message.message_id,
                    topic=i.message.topic,
                    received_at=i.message.received_at,
                    device_id=i.device_id,
                    meter_id=i.envelope.meter,
                    seq=i.envelope.seq,
                    sha256=i.entry.sha256,
                    payload=i.message.payload,
                )
                for i in hour_items
            ],
        )
        keys.update((i.index, key) for i in hour_items)
    return keys


def _result(
    ctx: TenantContext,
    item: _Attributed,
    disposition: Disposition,
    intervals: int = 0,
    archive_key: str | None = None,
    error: Exception | None = None,
) -> MessageResult:
    return MessageResult(
        item.message,
        disposition,
        ctx.tenant_id,
        item.device_id,
        item.envelope.meter,
        item.envelope.seq,
        intervals,
        archive_key,
        archived_only_frames(item.envelope),
        error,
    )


def ingest_message(message: DeviceMessage, ports: IngestPorts) -> IngestOutcome:
    """One message on its own (quarantine replay): raises its `RejectedMessage`, or the transient
    error, instead of returning it."""
    outcome = ingest_batch([message], ports)
    (result,) = outcome.results
    if result.error is not None:
        raise result.error
    assert result.tenant_id and result.device_id
    return IngestOutcome(
        result.tenant_id,
        result.device_id,
        result.meter_id,
        result.seq,
        result.intervals,
        outcome.stats,
        result.archive_key,
        result.archived_only_frames,
        duplicate=result.disposition is Disposition.DUPLICATE,
    )


def quarantine_message(
    message_id: str,
    original: bytes,
    topic: str | None,
    received_at: datetime,
    error: RejectedMessage,
    quarantine: Quarantine,
) -> str:
    """File a rejected message, with its reason and original bytes, under its topic's tenant."""
    return quarantine.put(
        QuarantineRecord(
            tenant_id=topic_tenant(topic),
            reason=error.reason,
            detail=str(error),
            topic=topic,
            message_id=message_id,
            received_at=received_at,
            original=original,
        )
    )
