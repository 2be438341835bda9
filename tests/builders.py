"""Test data builders: hx300 envelopes from values and the SQS records the telemetry rule makes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from hemera.domain.envelope import Envelope, FrameKind, ModbusFrame, Protocol, build_envelope
from hemera.domain.modbus.model import load_model
from hemera.domain.modbus.registers import encode_value


def hx300_window(start: datetime, active_import_wh: list[int]) -> ModbusFrame:
    """A load-profile window as an hx300 meter would return it (encoded with the model's map)."""
    model = load_model("hx300")
    lp = model.load_profile
    registers: list[int] = []
    for i, wh in enumerate(active_import_wh):
        record = [0] * lp.record_size
        epoch = int((start + timedelta(minutes=lp.interval_minutes * i)).timestamp())
        record[lp.timestamp.offset : lp.timestamp.offset + 2] = encode_value(
            epoch, lp.timestamp.type, model.word_order
        )
        channel = lp.channels[0]
        record[channel.offset : channel.offset + 2] = encode_value(wh, channel.type, model.word_order)
        registers += record
    registers += [0] * (lp.window_registers - len(registers))
    data = b"".join(r.to_bytes(2, "big") for r in registers).hex()
    return ModbusFrame(
        kind=FrameKind.LOAD_PROFILE,
        unit_id=1,
        function=3,
        address=lp.window_address,
        count=len(registers),
        data=data,
    )


def hx300_envelope(
    tenant: str, device: str, meter: str, start: datetime, active_import_wh: list[int], seq: int = 1
) -> Envelope:
    """An envelope of consecutive 15-minute intervals (11 per frame, as the meter's window)."""
    frames = [
        hx300_window(start + timedelta(minutes=15 * i), active_import_wh[i : i + 11])
        for i in range(0, len(active_import_wh), 11)
    ]
    return build_envelope(
        tenant=tenant,
        device=device,
        meter=meter,
        model="hx300",
        protocol=Protocol.MODBUS,
        seq=seq,
        collected_at=datetime.now(UTC),
        frames=frames,
    )


def as_sqs_record(message_id: str, payload: bytes, topic: str) -> dict:
    """What the telemetry rule + SQS deliver to the translate function for one publish."""
    body = json.dumps({"payload": base64.b64encode(payload).decode(), "mqtt_topic": topic})
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {"SentTimestamp": "1795300000000", "ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:hemera-telemetry",
        "awsRegion": "us-east-1",
    }


# Agent config overrides for tests about the load profile alone: no scheduled registers,
# instantaneous values or event logs in the outbox beside it.
LOAD_PROFILE_ONLY = {
    "registers_every_seconds": 0,
    "instantaneous_every_seconds": 0,
    "events_every_seconds": 0,
}


def archived_envelopes(target, bucket: str, tenant: str) -> list:
    """Every envelope in a tenant's raw archive (all its JSON Lines objects), read back through
    the archive adapter, in object-key order."""
    from hemera import aws
    from hemera.adapters.s3 import S3RawArchive
    from hemera.domain.tenancy import TenantContext

    s3 = aws.client(target, "s3")
    ctx = TenantContext(tenant)
    archive = S3RawArchive(s3, bucket)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=ctx.s3_prefix("raw"))
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    return [e for key in keys for e in archive.read_batch(ctx, key)]
