"""Ingest: one device message in, canonical intervals stored and the raw envelope archived.

A message that cannot be accepted raises a `RejectedMessage`; the caller quarantines it with
`quarantine_message` and goes on with the rest of its batch. Any other error is transient
(throttling, a network fault) and makes the message be delivered again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from hemera.domain.envelope import Envelope, FrameKind, Protocol, parse_envelope
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
from hemera.domain.readings import IntervalReading
from hemera.domain.tenancy import TenantContext, parse_device_topic
from hemera.ports import MergeStats, Quarantine, QuarantineRecord, RawArchive, ReadingStore, Registry


@dataclass(frozen=True, slots=True)
class DeviceMessage:
    """A message as the topic rule delivers it: the payload plus the topic it was published on."""

    message_id: str
    body: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class IngestPorts:
    store: ReadingStore
    registry: Registry
    archive: RawArchive
    quarantine: Quarantine


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    tenant_id: str
    device_id: str
    meter_id: str
    seq: int
    intervals: int
    stats: MergeStats
    archive_key: str


def split_rule_payload(body: bytes, topic_attribute: str) -> tuple[dict[str, object], str]:
    """Separate the topic the rule added (`topic() AS mqtt_topic`) from the device's document."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEnvelope(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedEnvelope("envelope is not a JSON object")
    topic = document.pop(topic_attribute, None)
    if not isinstance(topic, str):
        raise MalformedEnvelope(f"the topic rule did not add {topic_attribute!r}")
    return document, topic


def topic_tenant(body: bytes, topic_attribute: str) -> tuple[str | None, str | None]:
    """Best-effort (tenant, topic) of a rejected message, to file it under the right tenant."""
    try:
        document = json.loads(body)
        topic = document.get(topic_attribute) if isinstance(document, dict) else None
        if isinstance(topic, str):
            return parse_device_topic(topic)[0], topic
    except Exception:
        pass
    return None, None


def decode_envelope(envelope: Envelope) -> list[IntervalReading]:
    """Translate the raw frames of an envelope into canonical interval readings."""
    if envelope.protocol is not Protocol.MODBUS:
        raise UnsupportedProtocol(f"protocol {envelope.protocol} is not translated yet")
    model = load_model(envelope.model)
    readings: list[IntervalReading] = []
    for frame in envelope.frames:
        if frame.kind is not FrameKind.LOAD_PROFILE:
            raise MalformedFrame(f"frame kind {frame.kind} is not translated yet")
        try:
            registers = frame.registers()
        except ValueError as exc:
            raise MalformedFrame(str(exc)) from exc
        readings.extend(decode_load_profile_window(model, envelope.meter, registers))
    return readings


def ingest_message(message: DeviceMessage, ports: IngestPorts, topic_attribute: str) -> IngestOutcome:
    """Validate, attribute, translate, archive and store one device message."""
    document, topic = split_rule_payload(message.body, topic_attribute)
    try:
        tenant_id, device_id, _ = parse_device_topic(topic)
    except ValueError as exc:
        raise MalformedEnvelope(str(exc)) from exc
    envelope = parse_envelope(document)
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
    readings = decode_envelope(envelope)
    # (device, seq) names the envelope: a redelivery overwrites the same object with the same bytes.
    archive_key = ports.archive.put(
        ctx, f"{envelope.collected_at:%Y/%m/%d}/{device_id}/{envelope.seq:012d}.json", envelope.to_json()
    )
    stats = ports.store.merge_intervals(ctx, readings)
    return IngestOutcome(
        tenant_id, device_id, envelope.meter, envelope.seq, len(readings), stats, archive_key
    )


def quarantine_message(
    message: DeviceMessage, error: RejectedMessage, quarantine: Quarantine, topic_attribute: str
) -> str:
    """File a rejected message, with its reason and original bytes, under its tenant."""
    tenant_id, topic = topic_tenant(message.body, topic_attribute)
    return quarantine.put(
        QuarantineRecord(
            tenant_id=tenant_id,
            reason=error.reason,
            detail=str(error),
            topic=topic,
            message_id=message.message_id,
            received_at=message.received_at or datetime.now(UTC),
            original=message.body,
        )
    )
