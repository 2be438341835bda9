"""The versioned JSON envelope an RTU publishes: raw frames plus who, what and when.

Schema `hemera.envelope/1`:

    {"schema": "hemera.envelope/1", "tenant": "acme", "device": "rtu-01", "meter": "m-1001",
     "model": "hx300", "protocol": "modbus", "seq": 42, "collected_at": "2026-11-22T04:00:00Z",
     "frames": [{"kind": "load_profile", "unit_id": 1, "function": 3, "address": 210,
                 "count": 121, "data": "<hex, 2 bytes per register, big-endian as on the wire>"}]}

A DLMS envelope (`"protocol": "dlms"`) carries `DlmsFrame`s instead: one COSEM attribute value
each, as the meter encoded it (A-XDR, hex), with the object that was read and, for a selective
read of a profile, the range asked for:

     "frames": [{"kind": "load_profile", "obis": "1.0.99.1.0.255", "class_id": 7, "attribute": 2,
                 "selector": {"from": "2026-11-22T00:00:00Z", "to": "2026-11-22T23:59:59Z"},
                 "data": "<hex of the A-XDR Data value, e.g. 01 60 02 05 09 0c ...>"}]

The frame's shape (an `obis` key) tells the two frame types apart, and the envelope's `protocol`
must agree with it; Modbus envelopes of schema 1 validate exactly as before (additive change).

The agent does not decode: the cloud translates frames with the meter model's map, so a new
meter model is a data change in the cloud, not a field upgrade.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from hemera.domain.dlms.obis import Obis
from hemera.domain.errors import MalformedEnvelope
from hemera.domain.readings import Channel, Unit
from hemera.domain.tenancy import validate_id

SCHEMA_V1 = "hemera.envelope/1"
# IoT Core rejects larger publishes; the agent splits batches below this.
MAX_ENVELOPE_BYTES = 128 * 1024


class Protocol(StrEnum):
    MODBUS = "modbus"
    DLMS = "dlms"
    CANONICAL = "canonical"


class FrameKind(StrEnum):
    LOAD_PROFILE = "load_profile"
    REGISTERS = "registers"
    INSTANTANEOUS = "instantaneous"
    EVENTS = "events"


def _hex(value: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError("data is not hexadecimal") from exc
    if len(raw) % 2:
        raise ValueError("a register block has an even number of bytes")
    return value.lower()


def _dlms_hex(value: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError("data is not hexadecimal") from exc
    if not raw:
        raise ValueError("a DLMS frame carries at least one byte")
    return value.lower()


HexData = Annotated[str, AfterValidator(_hex)]
DlmsHexData = Annotated[str, AfterValidator(_dlms_hex)]
Id = Annotated[str, AfterValidator(validate_id)]


class ModbusFrame(BaseModel):
    """A block of registers as read from the meter (function 3 holding / 4 input)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FrameKind
    unit_id: int = Field(ge=0, le=247)
    function: Literal[3, 4]
    address: int = Field(ge=0, le=0xFFFF)
    count: int = Field(ge=1, le=125)
    data: HexData

    def registers(self) -> list[int]:
        raw = bytes.fromhex(self.data)
        if len(raw) != 2 * self.count:
            raise ValueError(
                f"frame at {self.address} declares {self.count} registers, carries {len(raw) // 2}"
            )
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


class DlmsRange(BaseModel):
    """The range of a selective read of a profile (selector 1): capture times, both inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> DlmsRange:
        if self.to < self.from_:
            raise ValueError("a range ends after it starts")
        return self


class DlmsFrame(BaseModel):
    """One COSEM attribute value as read from the meter (GET response data, A-XDR encoded).

    `kind` says what the agent read it as; `obis`/`class_id`/`attribute` name the attribute
    (e.g. ProfileGeneric 1.0.99.1.0.255, class 7, attribute 2 = buffer); `selector` is the range
    of a selective read, absent for a plain GET.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FrameKind
    obis: Obis
    class_id: int = Field(ge=1, le=0xFFFF)
    attribute: int = Field(ge=1, le=127)
    selector: DlmsRange | None = None
    data: DlmsHexData

    def raw(self) -> bytes:
        return bytes.fromhex(self.data)


class CanonicalInterval(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: AwareDatetime
    value: Annotated[Decimal, Field(allow_inf_nan=False)]
    quality: Literal["A", "E", "F", "S", "V", "N"] = "A"  # AEMO MDFF flag as the connector sends it


class CanonicalFrame(BaseModel):
    """Intervals already in canonical form, from a third-party connector (`protocol: canonical`):
    the cloud validates and stores them; nothing is decoded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal[FrameKind.LOAD_PROFILE]
    channel: Channel
    unit: Unit
    interval_minutes: Literal[5, 15, 30, 60]
    intervals: list[CanonicalInterval] = Field(min_length=1, max_length=2880)


def _frame_type(value: Any) -> str:
    if isinstance(value, dict):
        return "canonical" if "intervals" in value else "dlms" if "obis" in value else "modbus"
    if isinstance(value, CanonicalFrame):
        return "canonical"
    return "dlms" if isinstance(value, DlmsFrame) else "modbus"


_FRAME_TAGS = frozenset({"modbus", "dlms", "canonical"})
Frame = Annotated[
    Annotated[ModbusFrame, Tag("modbus")]
    | Annotated[DlmsFrame, Tag("dlms")]
    | Annotated[CanonicalFrame, Tag("canonical")],
    Discriminator(_frame_type),
]


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Literal["hemera.envelope/1"] = Field(alias="schema")
    tenant: Id
    device: Id
    meter: Id
    model: str = Field(min_length=1, max_length=64)
    protocol: Protocol
    seq: int = Field(ge=0)
    collected_at: AwareDatetime
    frames: list[Frame] = Field(min_length=1)

    @model_validator(mode="after")
    def _frames_match_protocol(self) -> Envelope:
        # The protocol decides how frames are read.
        wanted = {Protocol.MODBUS: ModbusFrame, Protocol.DLMS: DlmsFrame, Protocol.CANONICAL: CanonicalFrame}[
            self.protocol
        ]
        if not all(isinstance(f, wanted) for f in self.frames):
            raise ValueError(f"a {self.protocol} envelope carries {self.protocol} frames only")
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def build_envelope(
    *,
    tenant: str,
    device: str,
    meter: str,
    model: str,
    protocol: Protocol,
    seq: int,
    collected_at: datetime,
    frames: Sequence[ModbusFrame | DlmsFrame | CanonicalFrame],
) -> Envelope:
    return Envelope.model_validate(
        {
            "schema": SCHEMA_V1,
            "tenant": tenant,
            "device": device,
            "meter": meter,
            "model": model,
            "protocol": protocol,
            "seq": seq,
            "collected_at": collected_at,
            "frames": list(frames),
        }
    )


def parse_envelope(document: dict[str, Any] | bytes | str) -> Envelope:
    """Validate an envelope; any defect raises `MalformedEnvelope` naming the first problem."""
    try:
        if isinstance(document, bytes | str):
            document = json.loads(document)
        if not isinstance(document, dict):
            raise MalformedEnvelope("envelope is not a JSON object")
        return Envelope.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Drop the frame-type tags of the union from the location: "frames.0.count", not
        # "frames.0.modbus.count".
        where = ".".join(str(p) for p in first["loc"] if p not in _FRAME_TAGS) or "envelope"
        raise MalformedEnvelope(f"{where}: {first['msg']}") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        raise MalformedEnvelope(f"not JSON: {exc}") from exc
    except RecursionError as exc:  # e.g. 50 KB of "[": poison, not a transient fault
        raise MalformedEnvelope("JSON nested too deeply") from exc
