"""Commands to a meter through its RTU (connect/disconnect, on-demand read, clock sync), their
audit trail and their status from the RTU's acknowledgement.

A command is requested by a person or system of the tenant, published to the RTU on
`hemera/<tenant>/<device>/down/cmd` in the agent's schema (`hemera_agent.commands`), and closed by
the agent's ack on `hemera/<tenant>/<device>/up/cmd-ack` (`hemera.cmd-ack/1`):

    requested ──publish──▶ sent ──ack ok──▶ acknowledged
        │                    ├──ack error─▶ failed
        └──publish failed──▶ failed        └──no ack in time─▶ expired

The RTU is the authority on what happened at the meter: a late ack still closes an expired command
(the relay *did* open). A repeated ack of a closed command changes nothing (at-least-once delivery).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from hemera.domain.errors import HemeraError, InvalidQuery

ACK_SCHEMA = "hemera.cmd-ack/1"
COMMAND_TOPIC_SUFFIX = "down/cmd"
ACK_TOPIC_SUFFIX = "up/cmd-ack"
# An on-demand read re-reads at most this span of the meter's load profile.
MAX_READ_RANGE = timedelta(days=31)
# A command not acknowledged within this time is reported expired (the broker keeps the agent's
# session an hour by default, so an agent offline longer never sees it).
ACK_DEADLINE = timedelta(hours=1)


class CommandKind(StrEnum):
    """What the cloud may ask a meter for (the agent's `type`)."""

    CONNECT = "connect"
    DISCONNECT = "disconnect"
    READ_RANGE = "read_range"
    CLOCK_SYNC = "clock_sync"


class CommandStatus(StrEnum):
    REQUESTED = "requested"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"
    EXPIRED = "expired"


CLOSED = frozenset({CommandStatus.ACKNOWLEDGED, CommandStatus.FAILED})


class InvalidCommandRequest(InvalidQuery):
    """A command request the API cannot accept (unknown kind, bad parameters): a 400."""

    reason = "invalid_command"


class CommandForbidden(HemeraError):
    """The caller reaches the meter but its role may not command it (a 403: the meter is its own)."""

    reason = "command_forbidden"


class CommandNotFound(HemeraError):
    """Unknown command, or one of another meter, customer or tenant (a 404, like a foreign meter)."""

    reason = "command_not_found"


class InvalidTransition(HemeraError):
    reason = "invalid_command_transition"


class MalformedAck(HemeraError):
    reason = "malformed_ack"


class AckDeviceMismatch(HemeraError):
    """An ack published by another RTU than the one the command was sent to: refused."""

    reason = "ack_device_mismatch"


@dataclass(frozen=True, slots=True)
class MeterCommand:
    """One command and its audit trail: who asked, when, what was sent, what the RTU answered."""

    tenant_id: str
    id: str
    meter_id: str
    device_id: str
    kind: CommandKind
    params: dict[str, Any]
    requested_by: str
    requester_role: str
    requested_at: datetime
    status: CommandStatus = CommandStatus.REQUESTED
    sent_at: datetime | None = None
    closed_at: datetime | None = None  # acknowledged, failed or expired
    ack_status: str | None = None  # the agent's ok / error / duplicate
    ack_result: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None  # why it failed, in words

    @property
    def topic(self) -> str:
        return f"hemera/{self.tenant_id}/{self.device_id}/{COMMAND_TOPIC_SUFFIX}"

    def agent_payload(self) -> dict[str, Any]:
        """The document the agent expects on its command topic (`hemera_agent.commands.Command`)."""
        return {"id": self.id, "type": self.kind.value, "meter": self.meter_id, "params": dict(self.params)}


def new_command_id(at: datetime, entropy: str | None = None) -> str:
    """A time-ordered id (`c` + milliseconds since the epoch in 12 hex digits + `-` + 8 random hex
    digits): sorts as it was requested, is a valid key segment and an agent command id."""
    millis = int(at.astimezone(UTC).timestamp() * 1000)
    return f"c{millis:012x}-{entropy or secrets.token_hex(4)}"


def validate_params(kind: CommandKind, params: object) -> dict[str, Any]:
    """The parameters of a kind, normalised as the agent reads them; InvalidCommandRequest else."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidCommandRequest("params must be an object")
    if kind in (CommandKind.CONNECT, CommandKind.DISCONNECT):
        if params:
            raise InvalidCommandRequest(f"a {kind.value} command takes no params")
        return {}
    if kind is CommandKind.CLOCK_SYNC:
        unknown = set(params) - {"epoch"}
        if unknown:
            raise InvalidCommandRequest(f"clock_sync takes only params.epoch, not {sorted(unknown)}")
        epoch = params.get("epoch")
        if epoch is None:
            return {}
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise InvalidCommandRequest("params.epoch is UTC epoch seconds (a whole number ≥ 0)")
        return {"epoch": epoch}
    if set(params) != {"from", "to"}:
        raise InvalidCommandRequest("read_range takes params.from and params.to (ISO-8601 with offset)")
    bounds = []
    for name in ("from", "to"):
        value = params[name]
        try:
            instant = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            instant = None
        if instant is None or instant.tzinfo is None:
            raise InvalidCommandRequest(f"params.{name} must be an ISO-8601 time with offset")
        bounds.append(instant.astimezone(UTC))
    start, end = bounds
    if end <= start:
        raise InvalidCommandRequest("params.to must be after params.from")
    if end - start > MAX_READ_RANGE:
        raise InvalidCommandRequest(f"a read spans at most {MAX_READ_RANGE.days} days")
    return {"from": start.isoformat().replace("+00:00", "Z"), "to": end.isoformat().replace("+00:00", "Z")}


def parse_kind(value: object) -> CommandKind:
    try:
        return CommandKind(str(value))
    except ValueError as exc:
        kinds = ", ".join(k.value for k in CommandKind)
        raise InvalidCommandRequest(f"kind must be one of {kinds}") from exc


def mark_sent(command: MeterCommand, at: datetime) -> MeterCommand:
    if command.status is not CommandStatus.REQUESTED:
        raise InvalidTransition(f"command {command.id} is {command.status.value}, not requested")
    return replace(command, status=CommandStatus.SENT, sent_at=at)


def mark_undelivered(command: MeterCommand, at: datetime, detail: str) -> MeterCommand:
    """The publish to the RTU failed: the command never left the cloud."""
    if command.status is not CommandStatus.REQUESTED:
        raise InvalidTransition(f"command {command.id} is {command.status.value}, not requested")
    return replace(command, status=CommandStatus.FAILED, closed_at=at, detail=detail)


def expire(command: MeterCommand, at: datetime) -> MeterCommand:
    """No ack within ACK_DEADLINE of being sent: expired (a later ack still closes it)."""
    if command.status is not CommandStatus.SENT:
        raise InvalidTransition(f"command {command.id} is {command.status.value}, not sent")
    if command.sent_at is None or at - command.sent_at < ACK_DEADLINE:
        raise InvalidTransition(f"command {command.id} is still within its ack deadline")
    return replace(command, status=CommandStatus.EXPIRED, closed_at=at, detail="no ack from the RTU in time")


class CommandAck(BaseModel):
    """The agent's acknowledgement (`hemera.cmd-ack/1`)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    schema_: Literal["hemera.cmd-ack/1"] = Field(alias="schema")
    id: str = Field(min_length=1, max_length=128)
    status: Literal["ok", "error", "duplicate"]
    result: dict[str, Any] = Field(default_factory=dict)
    started_at: AwareDatetime
    finished_at: AwareDatetime


def parse_ack(payload: bytes) -> CommandAck:
    try:
        return CommandAck.model_validate_json(payload)
    except ValidationError as exc:
        raise MalformedAck(f"not a {ACK_SCHEMA} document: {exc.error_count()} error(s)") from exc


def apply_ack(command: MeterCommand, ack: CommandAck, device_id: str) -> MeterCommand:
    """The command as the RTU's ack leaves it. `device_id` is the RTU the ack was published by
    (the topic, the device's authenticated identity): an ack from any other RTU is refused.

    `ok` → acknowledged, `error` → failed with the agent's reason; `duplicate` (the agent had run
    this id before) → as that first run ended (`result.original_status`). An ack for a command
    already closed changes nothing."""
    if device_id != command.device_id:
        raise AckDeviceMismatch(f"ack for {command.id} from {device_id}, sent to {command.device_id}")
    if ack.id != command.id:
        raise MalformedAck(f"ack {ack.id} applied to command {command.id}")
    if command.status in CLOSED:
        return command
    outcome = ack.status
    if outcome == "duplicate":
        original = ack.result.get("original_status")
        if original not in ("ok", "error"):
            return command  # the first run's own ack will (or did) close it
        outcome = original
    closed_at = ack.finished_at.astimezone(UTC)
    if outcome == "ok":
        return replace(
            command,
            status=CommandStatus.ACKNOWLEDGED,
            closed_at=closed_at,
            ack_status=ack.status,
            ack_result=dict(ack.result),
            detail=None,
        )
    reason, detail = ack.result.get("reason"), ack.result.get("detail")
    text = ": ".join(str(p) for p in (reason, detail) if p) or "the RTU reported an error"
    return replace(
        command,
        status=CommandStatus.FAILED,
        closed_at=closed_at,
        ack_status=ack.status,
        ack_result=dict(ack.result),
        detail=text,
    )
