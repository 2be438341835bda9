"""Encoding and decoding of typed values held in 16-bit Modbus registers.

Modbus defines only 16-bit big-endian registers; wider values span consecutive registers and the
order of those words is the meter maker's choice (`big`: most significant word first, "ABCD";
`little`: least significant word first, "CDAB"). Both directions are here so the meter simulators
encode exactly what the translator decodes, and tests can check one against hand-made bytes.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from enum import StrEnum

from hemera.domain.errors import MalformedFrame


class RegisterType(StrEnum):
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    U64 = "u64"
    I64 = "i64"
    F32 = "f32"


class WordOrder(StrEnum):
    BIG = "big"
    LITTLE = "little"


WIDTH: dict[RegisterType, int] = {
    RegisterType.U16: 1,
    RegisterType.I16: 1,
    RegisterType.U32: 2,
    RegisterType.I32: 2,
    RegisterType.U64: 4,
    RegisterType.I64: 4,
    RegisterType.F32: 2,
}
_STRUCT: dict[RegisterType, str] = {
    RegisterType.U16: ">H",
    RegisterType.I16: ">h",
    RegisterType.U32: ">I",
    RegisterType.I32: ">i",
    RegisterType.U64: ">Q",
    RegisterType.I64: ">q",
    RegisterType.F32: ">f",
}


def decode_value(registers: list[int], offset: int, kind: RegisterType, order: WordOrder) -> int | float:
    """Decode one value of `kind` starting at `registers[offset]`."""
    width = WIDTH[kind]
    words = registers[offset : offset + width]
    if len(words) != width:
        raise MalformedFrame(f"{kind} at offset {offset} needs {width} registers, block has {len(registers)}")
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise MalformedFrame(f"register value out of 16-bit range at offset {offset}")
    if order is WordOrder.LITTLE:
        words = list(reversed(words))
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    value: int | float = struct.unpack(_STRUCT[kind], raw)[0]
    return value


def encode_value(value: int | float, kind: RegisterType, order: WordOrder) -> list[int]:
    """Encode `value` as the registers a meter would hold (inverse of `decode_value`)."""
    try:
        raw = struct.pack(_STRUCT[kind], value)
    except struct.error as exc:
        raise ValueError(f"{value!r} does not fit {kind}") from exc
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return list(reversed(words)) if order is WordOrder.LITTLE else words


def scaled(raw: int | float, scaler: int) -> Decimal:
    """Apply a power-of-ten scaler the way DLMS/COSEM and most Modbus maps state it.

    Integers stay exact (Wh with scaler -3 become kWh without float rounding).
    """
    if isinstance(raw, float):
        return Decimal(repr(raw)).scaleb(scaler)
    return Decimal(raw).scaleb(scaler)
