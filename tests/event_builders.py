"""Test data builders for event-log, register and RTU-event messages, written byte by byte / word
by word (not with our decoders' inverse), so the decoding tests check the codec against
hand-computed wire data."""

from __future__ import annotations

import json
from datetime import datetime

from hemera.domain.dlms.axdr import encode_datetime
from hemera.domain.envelope import DlmsFrame, Envelope, FrameKind, ModbusFrame, Protocol, build_envelope
from tests.dlms_builders import hd500_frames_envelope

STANDARD_LOG, FRAUD_LOG, POWER_FAILURE_LOG = "0.0.99.98.0.255", "0.0.99.98.1.255", "1.0.99.97.0.255"


def event_log_buffer(entries: list[tuple[datetime, int] | tuple[datetime, int, int]]) -> bytes:
    """A ProfileGeneric buffer of an event log: array of structure {date-time, unsigned code
    [, double-long-unsigned duration]}."""
    out = bytearray([0x01, len(entries)])  # array, count
    for entry in entries:
        out += bytes([0x02, len(entry)])  # structure, count
        out += bytes([0x09, 0x0C]) + encode_datetime(entry[0])  # octet-string of 12 bytes
        out += bytes([0x11, entry[1]])  # unsigned code
        if len(entry) == 3:
            out += bytes([0x06]) + entry[2].to_bytes(4, "big")  # double-long-unsigned seconds
    return bytes(out)


def hd500_events_envelope(
    tenant: str,
    device: str,
    meter: str,
    logs: dict[str, bytes],
    collected_at: datetime,
    seq: int = 1,
) -> Envelope:
    frames = [
        DlmsFrame(kind=FrameKind.EVENTS, obis=obis, class_id=7, attribute=2, data=data.hex())
        for obis, data in logs.items()
    ]
    return hd500_frames_envelope(tenant, device, meter, collected_at, frames, seq)


# hd500 energy registers, attribute 2 (value) as long64-unsigned Wh, plus what the agent reads too.
HD500_REGISTER_FRAMES = [
    ("1.0.1.8.0.255", 3, 2, "15" + "00000000004c4b40"),  # 5,000,000 Wh -> 5000 kWh
    ("1.0.2.8.0.255", 3, 2, "15" + "00000000000003e8"),  # 1,000 Wh -> 1 kWh
    ("1.0.3.8.0.255", 3, 2, "15" + "00000000000186a0"),  # 100,000 varh -> 100 kvarh
    ("1.0.1.8.0.255", 3, 3, "02020f0016" + "1e"),  # scaler_unit {0, Wh}: skipped
    ("1.0.1.8.1.255", 3, 2, "15" + "0000000000002710"),  # tariff T1: not a channel total
    ("1.0.1.6.0.255", 4, 2, "06" + "00002710"),  # maximum demand: not a channel total
]


def hd500_registers_envelope(
    tenant: str, device: str, meter: str, collected_at: datetime, seq: int = 1
) -> Envelope:
    frames = [
        DlmsFrame(kind=FrameKind.REGISTERS, obis=obis, class_id=class_id, attribute=attribute, data=data)
        for obis, class_id, attribute, data in HD500_REGISTER_FRAMES
    ]
    return hd500_frames_envelope(tenant, device, meter, collected_at, frames, seq)


# mx40 energy group 512-525, CDAB (least significant word first):
MX40_ENERGY = [
    0xCD15, 0x075B, 0x0000, 0x0000,  # 512 active_import u64 Wh: 123,456,789 -> 123456.789 kWh
    0x03E8, 0x0000, 0x0000, 0x0000,  # 516 active_export u64 Wh: 1000 -> 1.000 kWh
    0xD431, 0x0000,  # 520 reactive_import u32 0.1 kvarh: 54321 -> 5432.1 kvarh
    0x0007, 0x0000,  # 522 reactive_export u32 0.1 kvarh: 7 -> 0.7 kvarh
    0xFFFF, 0xFFFF,  # 524 net_active i32: not a channel total
]  # fmt: skip


def mx40_registers_envelope(
    tenant: str, device: str, meter: str, collected_at: datetime, seq: int = 1
) -> Envelope:
    frame = ModbusFrame(
        kind=FrameKind.REGISTERS,
        unit_id=1,
        function=3,
        address=512,
        count=len(MX40_ENERGY),
        data="".join(f"{w:04x}" for w in MX40_ENERGY),
    )
    return build_envelope(
        tenant=tenant,
        device=device,
        meter=meter,
        model="mx40",
        protocol=Protocol.MODBUS,
        seq=seq,
        collected_at=collected_at,
        frames=[frame],
    )


def rtu_event_payload(
    tenant: str, device: str, at: datetime, kind: str, meter: str | None = None, **detail: object
) -> bytes:
    """`hemera.rtu-event/1` as the agent publishes it on `hemera/<tenant>/<device>/up/events`."""
    document: dict[str, object] = {
        "schema": "hemera.rtu-event/1",
        "tenant": tenant,
        "device": device,
        "at": at.isoformat(),
        "type": kind,
        "detail": detail,
    }
    if meter is not None:
        document["meter"] = meter
    return json.dumps(document).encode()
