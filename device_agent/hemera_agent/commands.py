"""Commands the cloud sends an RTU on `hemera/<tenant>/<device>/down/cmd`, and their acks.

    {"id": "c-42", "type": "read_range", "meter": "sul-m-1001",
     "params": {"from": "2026-03-02T10:00:00Z", "to": "2026-03-02T12:00:00Z"}}
    {"id": "c-43", "type": "disconnect", "meter": "sul-m-1001"}
    {"id": "c-44", "type": "clock_sync", "meter": "sul-m-1001"}       # params.epoch optional
    {"id": "c-45", "type": "ping"}
    {"id": "c-46", "type": "read_registers", "meter": "sul-m-1001"}  # energy + instantaneous now

Each command is executed at most once (its id is recorded in the outbox database before it runs)
and acknowledged on `up/cmd-ack`:

    {"schema": "hemera.cmd-ack/1", "id": "c-43", "status": "ok", "result": {"relay": "open"},
     "started_at": "...", "finished_at": "..."}

`status` is `ok`, `error` (with `result.reason` and `result.detail`) or `duplicate` (the id was
seen before; `result.original_status` says how that one ended - nothing is executed again).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from hemera.domain.errors import HemeraError

ACK_SCHEMA = "hemera.cmd-ack/1"


class InvalidCommand(HemeraError):
    reason = "invalid_command"


class CommandType(StrEnum):
    READ_RANGE = "read_range"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    CLOCK_SYNC = "clock_sync"
    PING = "ping"
    READ_REGISTERS = "read_registers"


_NEEDS_METER = {
    CommandType.READ_RANGE,
    CommandType.CONNECT,
    CommandType.DISCONNECT,
    CommandType.CLOCK_SYNC,
    CommandType.READ_REGISTERS,
}


class ReadRangeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> ReadRangeParams:
        if self.to < self.from_:
            raise ValueError("params.to is before params.from")
        return self


class ClockSyncParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    epoch: int | None = Field(default=None, ge=0, description="UTC epoch seconds; default: the RTU clock")


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128)
    type: CommandType
    meter: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _meter_when_needed(self) -> Command:
        if self.type in _NEEDS_METER and not self.meter:
            raise ValueError(f"a {self.type.value} command names a meter")
        if self.type is CommandType.READ_RANGE:
            ReadRangeParams.model_validate(self.params)
        if self.type is CommandType.CLOCK_SYNC:
            ClockSyncParams.model_validate(self.params)
        return self

    def read_range(self) -> ReadRangeParams:
        return ReadRangeParams.model_validate(self.params)

    def clock_sync(self) -> ClockSyncParams:
        return ClockSyncParams.model_validate(self.params)


class AckStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    DUPLICATE = "duplicate"


class CommandAck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["hemera.cmd-ack/1"] = Field(default="hemera.cmd-ack/1", alias="schema")
    id: str
    status: AckStatus
    result: dict[str, Any] = Field(default_factory=dict)
    started_at: AwareDatetime
    finished_at: AwareDatetime

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def parse_command(payload: bytes) -> Command:
    """A command from the down topic; `InvalidCommand` for anything else (never another error)."""
    try:
        return Command.model_validate_json(payload)
    except ValidationError as exc:
        raise InvalidCommand(str(exc).splitlines()[0] if str(exc) else "invalid command") from exc


def command_id_of(payload: bytes) -> str | None:
    """Best effort: the id of a command that failed validation, so its error can be acked."""
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    value = document.get("id") if isinstance(document, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None
