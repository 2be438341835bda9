"""The alarm lifecycle: open → acknowledged → closed, one alarm per open condition.

An alarm is identified by its key (tenant, subject — a meter or an RTU —, type). Rules produce
*observations* of a key: the condition is there (`active`) or it is not. While an alarm of the
key is open (or acknowledged) an active observation only counts (`count`, `last_seen`); inactive
observations close it after `clear_after` consecutive ones (hysteresis: a condition hovering at a
threshold neither closes nor reopens the alarm, so flapping raises no transitions). A new alarm
is raised only when no alarm of the key is open. Observations at or before what the alarm has
already seen change nothing, so a redelivered event or a day evaluated twice is not counted twice.

Every change of state yields an `AlarmTransition` (the `AlarmChanged` event); its id is derived
from the alarm and its transition number, so a retried evaluation announces the same id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.alarms.catalog import AlarmType, Closing, spec_of
from hemera.domain.errors import HemeraError
from hemera.domain.meter_events import Subject


class AlarmState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


ACTIVE_STATES = frozenset({AlarmState.OPEN, AlarmState.ACKNOWLEDGED})


class AlarmNotFound(HemeraError):
    """Unknown alarm, another tenant's, or one of a meter the caller does not reach (BOLA)."""

    reason = "alarm_not_found"


class AlarmForbidden(HemeraError):
    """The caller reaches the alarm but its role may not acknowledge alarms."""

    reason = "alarm_forbidden"


class AlarmConflict(HemeraError):
    """Another evaluation changed the alarm of the same key first: re-read and apply again."""

    reason = "alarm_conflict"


@dataclass(frozen=True, slots=True)
class AlarmKey:
    subject: Subject
    subject_id: str
    type: AlarmType
    # What part of the subject, for a type that may hold for several at once ("phase-2": one
    # phase's loss); "" for the whole subject.
    scope: str = ""

    @property
    def text(self) -> str:
        base = f"{self.subject.value}#{self.subject_id}#{self.type.value}"
        return f"{base}#{self.scope}" if self.scope else base


@dataclass(frozen=True, slots=True)
class Observation:
    """A rule's verdict on one key at one time (tz-aware UTC), with the facts that back it
    (the interval, the phase and value, the event, ...)."""

    key: AlarmKey
    at: datetime
    active: bool
    facts: Mapping[str, Any] = field(default_factory=dict)
    # Inferred, not seen (an outage's start from the power-up's reported duration): it raises an
    # alarm when none is open but never counts as a sighting of an open one.
    implied: bool = False


@dataclass(frozen=True, slots=True)
class Alarm:
    alarm_id: str
    tenant_id: str
    key: AlarmKey
    severity: str
    state: AlarmState
    first_seen: datetime
    last_seen: datetime
    count: int  # evaluations that saw the condition
    facts: Mapping[str, Any] = field(default_factory=dict)
    # Consecutive evaluations that no longer saw the condition (reset by one that sees it), and
    # the time of the newest one counted: the same clear reading judged twice counts once.
    clear_count: int = 0
    last_clear: datetime | None = None
    transitions: int = 1  # state changes so far (the raise is the first)
    changed_at: datetime | None = None  # time of the last state change
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None

    @property
    def type(self) -> AlarmType:
        return self.key.type

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of applying one observation: the alarm to store (None: nothing changed) and
    the transition to announce (None: no change of state)."""

    alarm: Alarm | None
    transition: AlarmTransition | None = None


def new_alarm_id(tenant_id: str, key: AlarmKey, first_seen: datetime) -> str:
    """Time-ordered (newest sorts last), deterministic: `al-<yyyymmddThhmmss>-<digest>`; a valid
    id (lower-case letters, digits, hyphens) for keys and cursors."""
    stamp = first_seen.astimezone(UTC).strftime("%Y%m%dt%H%M%S")
    digest = hashlib.sha256(f"{tenant_id}|{key.text}|{first_seen.isoformat()}".encode()).hexdigest()[:12]
    return f"al-{stamp}-{digest}"


def transition_of(alarm: Alarm, previous: AlarmState | None, at: datetime) -> AlarmTransition:
    return AlarmTransition(
        transition_id=f"{alarm.alarm_id}-t{alarm.transitions}",
        tenant_id=alarm.tenant_id,
        alarm_id=alarm.alarm_id,
        alarm_type=alarm.type.value,
        severity=alarm.severity,
        subject=alarm.key.subject.value,
        subject_id=alarm.key.subject_id,
        state=alarm.state.value,
        previous_state=previous.value if previous is not None else None,
        at=at,
        first_seen=alarm.first_seen,
        last_seen=alarm.last_seen,
        count=alarm.count,
        facts=dict(alarm.facts),
    )


def apply_observation(tenant_id: str, current: Alarm | None, observation: Observation) -> Step:
    """The lifecycle's one rule: what an observation does to the key's latest alarm (`current`,
    None if the key never had one). Pure; the caller stores `Step.alarm` conditionally."""
    spec = spec_of(observation.key.type)
    at = observation.at
    if observation.active:
        if current is None or current.state is AlarmState.CLOSED:
            if current is not None and current.closed_at is not None and at <= current.closed_at:
                return Step(None)  # seen before the close: that alarm covered it
            raised = Alarm(
                alarm_id=new_alarm_id(tenant_id, observation.key, at),
                tenant_id=tenant_id,
                key=observation.key,
                severity=spec.severity.value,
                state=AlarmState.OPEN,
                first_seen=at,
                last_seen=at,
                count=1,
                facts=dict(observation.facts),
                changed_at=at,
            )
            return Step(raised, transition_of(raised, None, at))
        if at <= current.last_seen or observation.implied:
            return Step(None)  # already counted (a redelivery, a day evaluated again)
        return Step(
            replace(
                current, last_seen=at, count=current.count + 1, facts=dict(observation.facts), clear_count=0
            )
        )
    if current is None or not current.is_active or at <= current.last_seen:
        return Step(None)
    if current.clear_count and current.last_clear is not None and at <= current.last_clear:
        return Step(None)  # this clear evaluation (or an older one) was counted already
    clear_count = current.clear_count + 1
    if clear_count < spec.clear_after:
        return Step(replace(current, clear_count=clear_count, last_clear=at))
    cleared = replace(current, last_clear=at)
    return close(cleared, at, "condition cleared", clear_count=clear_count, clearing_facts=observation.facts)


def close(
    alarm: Alarm,
    at: datetime,
    reason: str,
    *,
    clear_count: int | None = None,
    clearing_facts: Mapping[str, Any] | None = None,
) -> Step:
    """Close an open or acknowledged alarm (auto-close); the facts keep what raised it, plus
    what ended it under `cleared`."""
    if not alarm.is_active:
        return Step(None)
    facts = dict(alarm.facts)
    if clearing_facts:
        facts["cleared"] = dict(clearing_facts)
    closed = replace(
        alarm,
        state=AlarmState.CLOSED,
        closed_at=at,
        close_reason=reason,
        changed_at=at,
        transitions=alarm.transitions + 1,
        clear_count=alarm.clear_count if clear_count is None else clear_count,
        facts=facts,
    )
    return Step(closed, transition_of(closed, alarm.state, at))


def acknowledge(alarm: Alarm, by: str, at: datetime) -> Step:
    """An operator saw the alarm: open → acknowledged. Acknowledging again, or a closed alarm,
    changes nothing (idempotent: a retried request answers the same alarm)."""
    if alarm.state is not AlarmState.OPEN:
        return Step(None)
    acked = replace(
        alarm,
        state=AlarmState.ACKNOWLEDGED,
        acknowledged_by=by,
        acknowledged_at=at,
        changed_at=at,
        transitions=alarm.transitions + 1,
    )
    return Step(acked, transition_of(acked, AlarmState.OPEN, at))


def close_if_quiet(alarm: Alarm, now: datetime, quiet: timedelta) -> Step:
    """One-shot alarms (no clearing event, no condition to re-evaluate) close after `quiet`
    without a recurrence."""
    if spec_of(alarm.type).closing is not Closing.QUIET_PERIOD or now - alarm.last_seen < quiet:
        return Step(None)
    return close(alarm, now, f"no recurrence for {quiet}")
