"""The versioned JSON envelope an RTU publishes: raw frames plus who, what and when.

Schema `hemera.envelope/1`:

    {"schema": "hemera.envelope/1", "tenant": "acme", "device": "rtu-01", "meter": "m-1001",
     "model": "hx300", "protocol": "modbus", "seq": 42, "collected_at": "2026-11-22T04:00:00Z",
     "frames": [{"kind": "load_profile", "unit_id": 1, "function": 3, "address": 210,
                 "count": 121, "data": "<hex, 2 bytes per register, big-endian as on the wire>"}]}

The agent does not decode: the cloud translates frames with the meter model's map, so a new
meter model is a data change in the cloud, not a field upgrade.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from hemera.domain.errors import MalformedEnvelope
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


def _hex(value: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError("data is not hexadecimal") from exc
    if len(raw) % 2:
        raise ValueError("a register block has an even number of bytes")
    return value.lower()


HexData = Annotated[str, AfterValidator(_hex)]
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
    frames: list[ModbusFrame] = Field(min_length=1)

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
    frames: list[ModbusFrame],
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
            "frames": frames,
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
        where = ".".join(str(p) for p in first["loc"]) or "envelope"
        raise MalformedEnvelope(f"{where}: {first['msg']}") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        raise MalformedEnvelope(f"not JSON: {exc}") from exc
