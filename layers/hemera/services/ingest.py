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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

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
    MalformedEnvelope,
    MalformedFrame,
    RejectedMessage,
    TopicMismatch,
    UnknownMeter,
    UnknownMeterModel,
    UnsupportedProtocol,
)
from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera.domain.readings import CHANNEL_UNITS, IntervalReading
from hemera.domain.tenancy import TenantContext, parse_device_topic
from hemera.ports import (
    ChangeEvents,
    MergeStats,
    Quarantine,
    QuarantineRecord,
    RawArchive,
    ReadingStore,
    Registry,
)


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


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    tenant_id: str
    device_id: str
    meter_id: str
    seq: int
    intervals: int
    stats: MergeStats
    archive_key: str
    archived_only_frames: int = 0


def topic_tenant(topic: str | None) -> str | None:
    """The tenant a topic belongs to, or None for a topic that is not a device topic."""
    try:
        return parse_device_topic(topic)[0] if topic else None
    except ValueError:
        return None


# Frames the cloud keeps only in the raw archive for now: register, instantaneous and event-log
# reads are archived under the tenant (and can be translated from there later), not quarantined:
# they are good input whose canonical store comes with later capabilities.
ARCHIVED_ONLY = frozenset({FrameKind.REGISTERS, FrameKind.INSTANTANEOUS, FrameKind.EVENTS})


def archived_only_frames(envelope: Envelope) -> int:
    return sum(1 for frame in envelope.frames if frame.kind in ARCHIVED_ONLY)


def decode_envelope(envelope: Envelope) -> list[IntervalReading]:
    """Translate the load-profile frames of an envelope into canonical interval readings
    (frames of the `ARCHIVED_ONLY` kinds are skipped)."""
    if envelope.protocol is Protocol.DLMS:
        return _decode_dlms(envelope)
    if envelope.protocol is Protocol.CANONICAL:
        return _canonical(envelope)
    if envelope.protocol is not Protocol.MODBUS:
        raise UnsupportedProtocol(f"protocol {envelope.protocol} is not translated yet")
    model = load_model(envelope.model)
    readings: list[IntervalReading] = []
    for frame in envelope.frames:
        if frame.kind in ARCHIVED_ONLY:
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
        if frame.kind in ARCHIVED_ONLY:
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


def ingest_message(message: DeviceMessage, ports: IngestPorts) -> IngestOutcome:
    """Validate, attribute, translate, archive and store one device message."""
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
    ctx = TenantContext(tenant_id, correlation_id=message.message_id)
    meter = ports.registry.get_meter(ctx, envelope.meter)
    if meter is None or meter.device_id != device_id:
        raise UnknownMeter(f"meter {envelope.meter} is not registered to device {device_id}")
    if meter.model != envelope.model:
        raise UnknownMeterModel(
            f"meter {meter.id} is registered as {meter.model}, envelope says {envelope.model}"
        )
    readings = primary_side(decode_envelope(envelope), meter.multiplier)
    # The device's own bytes, named by (device, seq) and a digest of the bytes: a redelivery
    # overwrites the same object with the same bytes, while an RTU whose sequence restarted (a
    # reimaged outbox) can never overwrite an earlier envelope with different bytes.
    digest = hashlib.sha256(message.payload).hexdigest()[:16]
    archive_key = ports.archive.put(
        ctx,
        f"{envelope.collected_at:%Y/%m/%d}/{device_id}/{envelope.seq:012d}-{digest}.json",
        message.payload,
    )
    # A changed meter-day is announced (EventBridge) so VEE and billing re-run for it.
    stats = ports.store.merge_intervals(ctx, readings, lambda changes: ports.events.announce(ctx, changes))
    return IngestOutcome(
        tenant_id,
        device_id,
        envelope.meter,
        envelope.seq,
        len(readings),
        stats,
        archive_key,
        archived_only_frames(envelope),
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
