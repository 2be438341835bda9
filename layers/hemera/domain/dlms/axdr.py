"""A-XDR data of DLMS/COSEM (IEC 62056-6-2 / DLMS UA Blue Book, "Data" CHOICE), pure bytes in/out.

Only the `Data` types a meter returns for attribute values are handled. Decoding maps them to plain
Python values: array -> list, structure -> tuple, octet-string -> bytes, visible/utf8-string -> str,
integers and enum -> int, float32/64 -> float, boolean -> bool, null-data -> None, bit-string ->
`BitString`. Any defect (truncation, unknown tag, trailing bytes, absurd counts, nesting deeper
than `MAX_DEPTH`) raises `MalformedFrame`, never another exception, so the cloud can quarantine it.

Why our own codec and not gurux in the cloud: the cloud needs a few hundred lines of decoding,
not a DLMS stack; this keeps the Lambda layer free of a GPL library and its dependencies, and a
codec this small can be fuzzed to prove that bad bytes only ever raise the typed error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

from hemera.domain.errors import MalformedFrame

MAX_DEPTH = 16


class Tag(IntEnum):
    NULL_DATA = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5  # int32
    DOUBLE_LONG_UNSIGNED = 6  # uint32
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15  # int8
    LONG = 16  # int16
    UNSIGNED = 17  # uint8
    LONG_UNSIGNED = 18  # uint16
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27


_FIXED: dict[int, str] = {
    Tag.BOOLEAN: ">?",
    Tag.DOUBLE_LONG: ">i",
    Tag.DOUBLE_LONG_UNSIGNED: ">I",
    Tag.BCD: ">B",
    Tag.INTEGER: ">b",
    Tag.LONG: ">h",
    Tag.UNSIGNED: ">B",
    Tag.LONG_UNSIGNED: ">H",
    Tag.LONG64: ">q",
    Tag.LONG64_UNSIGNED: ">Q",
    Tag.ENUM: ">B",
    Tag.FLOAT32: ">f",
    Tag.FLOAT64: ">d",
}
_OPAQUE = {Tag.DATE_TIME: 12, Tag.DATE: 5, Tag.TIME: 4}  # tagged without a length: raw bytes


@dataclass(frozen=True, slots=True)
class BitString:
    bits: int  # number of bits
    data: bytes


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise MalformedFrame(f"A-XDR data truncated at byte {self.pos} (wanted {n} more)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def length(self) -> int:
        """A-XDR length: one byte below 0x80, else 0x80|n followed by an n-byte big-endian length."""
        first = self.take(1)[0]
        if first < 0x80:
            return first
        size = first & 0x7F
        if size == 0 or size > 4:
            raise MalformedFrame(f"A-XDR length of {size} bytes at byte {self.pos - 1}")
        return int.from_bytes(self.take(size), "big")

    def remaining(self) -> int:
        return len(self.data) - self.pos


def _decode(reader: _Reader, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise MalformedFrame(f"A-XDR data nested deeper than {MAX_DEPTH}")
    at = reader.pos
    tag = reader.take(1)[0]
    if tag == Tag.NULL_DATA:
        return None
    if tag in (Tag.ARRAY, Tag.STRUCTURE):
        count = reader.length()
        if count > reader.remaining():  # every element takes at least one byte
            raise MalformedFrame(
                f"A-XDR {Tag(tag).name.lower()} of {count} items in {reader.remaining()} bytes"
            )
        items = [_decode(reader, depth + 1) for _ in range(count)]
        return items if tag == Tag.ARRAY else tuple(items)
    if tag in _FIXED:
        fmt = _FIXED[tag]
        return struct.unpack(fmt, reader.take(struct.calcsize(fmt)))[0]
    if tag == Tag.OCTET_STRING:
        return reader.take(reader.length())
    if tag in (Tag.VISIBLE_STRING, Tag.UTF8_STRING):
        raw = reader.take(reader.length())
        try:
            return raw.decode("ascii" if tag == Tag.VISIBLE_STRING else "utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFrame(f"A-XDR string at byte {at} is not text") from exc
    if tag == Tag.BIT_STRING:
        bits = reader.length()
        return BitString(bits, reader.take((bits + 7) // 8))
    if tag in _OPAQUE:
        return reader.take(_OPAQUE[Tag(tag)])
    raise MalformedFrame(f"unknown A-XDR tag {tag} at byte {at}")


def decode(data: bytes) -> Any:
    """Decode exactly one A-XDR `Data` value that fills `data` (trailing bytes are an error)."""
    reader = _Reader(bytes(data))
    value = _decode(reader, 0)
    if reader.remaining():
        raise MalformedFrame(f"{reader.remaining()} bytes after the A-XDR value")
    return value


# --- encoding (used by the meter simulator and by tests to build frames) ------------------------
def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def encode(tag: Tag, value: Any = None) -> bytes:
    """Encode a scalar `Data` value of type `tag` (arrays/structures: see `array`/`structure`)."""
    if tag == Tag.NULL_DATA:
        return b"\x00"
    if tag in _FIXED:
        return bytes([tag]) + struct.pack(_FIXED[tag], value)
    if tag == Tag.OCTET_STRING:
        return bytes([tag]) + _length(len(value)) + bytes(value)
    if tag in (Tag.VISIBLE_STRING, Tag.UTF8_STRING):
        raw = value.encode("ascii" if tag == Tag.VISIBLE_STRING else "utf-8")
        return bytes([tag]) + _length(len(raw)) + raw
    raise ValueError(f"encode does not handle {tag!r}")


def array(items: list[bytes]) -> bytes:
    return bytes([Tag.ARRAY]) + _length(len(items)) + b"".join(items)


def structure(items: list[bytes]) -> bytes:
    return bytes([Tag.STRUCTURE]) + _length(len(items)) + b"".join(items)


# --- COSEM date-time (Blue Book 4.1.6.1: octet-string(12)) --------------------------------------
DEVIATION_NOT_SPECIFIED = -0x8000


def encode_datetime(moment: datetime) -> bytes:
    """The 12 octets of a COSEM date-time for a tz-aware moment, written as UTC (deviation 0)."""
    if moment.tzinfo is None:
        raise ValueError("a COSEM date-time needs a tz-aware moment")
    utc = moment.astimezone(UTC)
    return (
        utc.year.to_bytes(2, "big")
        + bytes([utc.month, utc.day, utc.isoweekday(), utc.hour, utc.minute, utc.second, 0])
        + (0).to_bytes(2, "big", signed=True)
        + b"\x00"  # clock status: ok
    )


def decode_datetime(raw: bytes) -> datetime:
    """A COSEM date-time (12 octets) as a tz-aware UTC datetime.

    Every field must be specified (0xFF wildcards are for selective access, not for a captured
    time). The deviation is "minutes of local time to UTC" (Blue Book), i.e. UTC = local +
    deviation (CET is -60); a deviation "not specified" (0x8000) means the meter keeps UTC.
    """
    if len(raw) != 12:
        raise MalformedFrame(f"a COSEM date-time has 12 octets, got {len(raw)}")
    year = int.from_bytes(raw[0:2], "big")
    month, day, _dow, hour, minute, second, hundredths = raw[2:9]
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    if hundredths == 0xFF:
        hundredths = 0
    try:
        local = datetime(year, month, day, hour, minute, second, hundredths * 10_000, tzinfo=UTC)
    except ValueError as exc:
        raise MalformedFrame(f"COSEM date-time {raw.hex()} is not a specified time: {exc}") from exc
    if deviation == DEVIATION_NOT_SPECIFIED:
        return local
    if not -720 <= deviation <= 720:
        raise MalformedFrame(f"COSEM date-time deviation {deviation} min is out of range")
    try:
        return local + timedelta(minutes=deviation)
    except OverflowError as exc:
        raise MalformedFrame(f"COSEM date-time {raw.hex()} is out of range") from exc
