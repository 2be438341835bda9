"""Ports of the alarms capability: the alarm store (one current alarm per key, conditional
writes), the tenants' alarm settings, the VEE failure tally and the bus the transitions go to.

Adapters: `hemera.adapters.alarms_dynamodb` (the readings table) and the in-memory fakes of
`hemera.adapters.alarms_memory`, held to the same contract by `tests/functional/test_alarm_store_contract.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.alarms import Alarm, AlarmKey, AlarmSettings, AlarmState, AlarmType
from hemera.domain.tenancy import TenantContext
from hemera.ports import Page


@dataclass(frozen=True, slots=True)
class AlarmQuery:
    """Filters of an alarm listing; None = any. `since`/`until` select alarms active at some time
    in [since, until): first seen before `until`, last seen (or closed) at or after `since`."""

    state: AlarmState | None = None
    type: AlarmType | None = None
    meter_ids: frozenset[str] | None = None  # alarms of these meters only (a customer's reach)
    meter_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, alarm: Alarm) -> bool:
        subject_meter = alarm.key.subject_id if alarm.key.subject.value == "meter" else None
        if self.state is not None and alarm.state is not self.state:
            return False
        if self.type is not None and alarm.type is not self.type:
            return False
        if self.meter_ids is not None and subject_meter not in self.meter_ids:
            return False
        if self.meter_id is not None and subject_meter != self.meter_id:
            return False
        if self.until is not None and alarm.first_seen >= self.until:
            return False
        end = alarm.closed_at or alarm.last_seen
        return not (self.since is not None and alarm.is_active is False and end < self.since)


class AlarmStore(Protocol):
    def current(self, ctx: TenantContext, key: AlarmKey) -> tuple[Alarm | None, int]:
        """The key's latest alarm (open, acknowledged or closed; None if it never had one) and the
        key's version (0 if none), to pass to `save`."""
        ...

    def save(self, ctx: TenantContext, alarm: Alarm, expected_version: int) -> None:
        """Store the alarm as its key's latest (a new one replaces a closed one); raises
        `AlarmConflict` when the key's version is no longer `expected_version`, so two
        evaluations never both raise an alarm for the same condition."""
        ...

    def get(self, ctx: TenantContext, alarm_id: str) -> Alarm | None: ...

    def listing(self, ctx: TenantContext, query: AlarmQuery, after: str | None, limit: int) -> Page[Alarm]:
        """Matching alarms newest first (by first seen), `limit` a page, after the alarm id
        `after`; `next_cursor` is the last id when more may follow."""
        ...

    def active(self, ctx: TenantContext) -> list[Alarm]:
        """Every open or acknowledged alarm of the tenant (the sweep's closing pass)."""
        ...

    def of_meter(self, ctx: TenantContext, meter_id: str, since: datetime) -> list[Alarm]:
        """The meter's alarms last seen at or after `since` or still active (the theft score)."""
        ...


class AlarmSettingsStore(Protocol):
    def put_settings(self, ctx: TenantContext, settings: AlarmSettings) -> None: ...

    def settings(self, ctx: TenantContext) -> AlarmSettings | None:
        """The tenant's settings; None if it was never given any (the defaults apply)."""
        ...


class VeeTally(Protocol):
    """Which recent days of a meter failed VEE rules (fed by FinalDaysChanged)."""

    def note_vee_day(
        self, ctx: TenantContext, meter_id: str, local_day: date, failed_rules: Sequence[str]
    ) -> None:
        """Record the day's failed rules (empty: the day now passes, forget it)."""
        ...

    def vee_failed_days(
        self, ctx: TenantContext, meter_id: str, first: date, last: date
    ) -> dict[date, tuple[str, ...]]: ...


class AlarmAnnouncer(Protocol):
    def announce(self, transitions: Sequence[AlarmTransition]) -> None:
        """Put one `AlarmChanged` event per transition on the platform bus (raise on failure)."""
        ...
