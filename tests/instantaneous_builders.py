"""Test data builders for instantaneous frames, written word by word / byte by byte (not with our
own encoders), so the decoding tests check the codec against hand-computed wire data."""

from __future__ import annotations

from datetime import datetime

from hemera.domain.envelope import DlmsFrame, Envelope, FrameKind, ModbusFrame, Protocol, build_envelope
from tests.dlms_builders import hd500_frames_envelope

# mx40 (CDAB word order): the two register runs of its `instantaneous` group.
# 256-258: voltage L1-L3, u16, 0.1 V -> 230.1, 229.8, 230.5 V
MX40_VOLTAGES = [0x08FD, 0x08FA, 0x0901]
# 260-271: current L1-L3 u32 mA (12.345 A, 70.000 A, 0.500 A), P i32 W (-1500: exporting),
# Q i32 var (800), PF i16 0.001 (-0.985), frequency u16 0.01 Hz (50.02); low word first.
MX40_POWER = [
    0x3039, 0x0000,  # 12345
    0x1170, 0x0001,  # 70000 = 0x0001_1170
    0x01F4, 0x0000,  # 500
    0xFA24, 0xFFFF,  # -1500 = 0xFFFF_FA24
    0x0320, 0x0000,  # 800
    0xFC27,  # -985
    0x138A,  # 5002
]  # fmt: skip


def _modbus(address: int, words: list[int]) -> ModbusFrame:
    return ModbusFrame(
        kind=FrameKind.INSTANTANEOUS,
        unit_id=1,
        function=3,
        address=address,
        count=len(words),
        data="".join(f"{w:04x}" for w in words),
    )


def mx40_instantaneous_envelope(
    tenant: str, device: str, meter: str, collected_at: datetime, seq: int = 1
) -> Envelope:
    return build_envelope(
        tenant=tenant,
        device=device,
        meter=meter,
        model="mx40",
        protocol=Protocol.MODBUS,
        seq=seq,
        collected_at=collected_at,
        frames=[_modbus(256, MX40_VOLTAGES), _modbus(260, MX40_POWER)],
    )


# hd500: (obis, A-XDR of the value attribute). Voltages long-unsigned 0.1 V, currents
# double-long-unsigned 0.01 A, PF long 0.001, frequency long-unsigned 0.01 Hz.
HD500_VALUES = [
    ("1.0.32.7.0.255", "1208fd"),  # 2301 -> 230.1 V
    ("1.0.52.7.0.255", "1208fa"),  # 2298 -> 229.8 V
    ("1.0.72.7.0.255", "120901"),  # 2305 -> 230.5 V
    ("1.0.31.7.0.255", "06000004d2"),  # 1234 -> 12.34 A
    ("1.0.51.7.0.255", "0600011170"),  # 70000 -> 700.00 A
    ("1.0.71.7.0.255", "0600000032"),  # 50 -> 0.50 A
    ("1.0.13.7.0.255", "1003b6"),  # 950 -> 0.950
    ("1.0.14.7.0.255", "121386"),  # 4998 -> 49.98 Hz
]
SCALER_UNIT_VOLT = "02020fff1623"  # attribute 3: structure {integer -1, enum 35 (V)}


def hd500_instantaneous_envelope(
    tenant: str, device: str, meter: str, collected_at: datetime, seq: int = 1
) -> Envelope:
    frames = [
        DlmsFrame(kind=FrameKind.INSTANTANEOUS, obis=obis, class_id=3, attribute=2, data=data)
        for obis, data in HD500_VALUES
    ]
    # The agent reads scaler_unit too; the cloud applies the model's scaler and skips it.
    frames.append(
        DlmsFrame(
            kind=FrameKind.INSTANTANEOUS,
            obis="1.0.32.7.0.255",
            class_id=3,
            attribute=3,
            data=SCALER_UNIT_VOLT,
        )
    )
    return hd500_frames_envelope(tenant, device, meter, collected_at, frames, seq)
