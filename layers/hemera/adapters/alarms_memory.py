"""In-memory alarm store, settings and VEE tally (tests); same contract as the DynamoDB adapter,
including the conditional write on the key's version."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date, datetime

from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.alarms import Alarm, AlarmConflict, AlarmKey, AlarmSettings
from hemera.domain.meter_events import Subject
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.ports import Page
from hemera.ports.alarms import AlarmQuery


class MemoryAlarmStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heads: dict[tuple[str, AlarmKey], tuple[Alarm, int]] = {}
        self._alarms: dict[tuple[str, str], Alarm] = {}
        self._settings: dict[str, AlarmSettings] = {}
        self._vee: dict[tuple[str, str, date], tuple[str, ...]] = {}

    def current(self, ctx: TenantContext, key: AlarmKey) -> tuple[Alarm | None, int]:
        head = self._heads.get((ctx.tenant_id, key))
        return (None, 0) if head is None else head

    def save(self, ctx: TenantContext, alarm: Alarm, expected_version: int) -> None:
        if alarm.tenant_id != ctx.tenant_id:
            raise ValueError("an alarm is stored only under its own tenant")
        validate_id(alarm.alarm_id, "alarm")
        validate_id(alarm.key.subject_id, "subject")
        with self._lock:
            _, version = self._heads.get((ctx.tenant_id, alarm.key), (None, 0))
            if version != expected_version:
                raise AlarmConflict(f"alarm key {alarm.key.text} changed under us")
            self._heads[(ctx.tenant_id, alarm.key)] = (alarm, version + 1)
            self._alarms[(ctx.tenant_id, alarm.alarm_id)] = alarm

    def get(self, ctx: TenantContext, alarm_id: str) -> Alarm | None:
        return self._alarms.get((ctx.tenant_id, validate_id(alarm_id, "alarm")))

    def listing(self, ctx: TenantContext, query: AlarmQuery, after: str | None, limit: int) -> Page[Alarm]:
        if after is not None:
            validate_id(after, "cursor")
        ids = sorted((i for t, i in self._alarms if t == ctx.tenant_id), reverse=True)
        found = [
            self._alarms[(ctx.tenant_id, i)]
            for i in ids
            if (after is None or i < after) and query.matches(self._alarms[(ctx.tenant_id, i)])
        ]
        page = found[:limit]
        return Page(page, page[-1].alarm_id if len(found) > limit else None)

    def active(self, ctx: TenantContext) -> list[Alarm]:
        return [a for (t, _), (a, _) in self._heads.items() if t == ctx.tenant_id and a.is_active]

    def of_meter(self, ctx: TenantContext, meter_id: str, since: datetime) -> list[Alarm]:
        return [
            a
            for (t, key), (a, _) in self._heads.items()
            if t == ctx.tenant_id
            and key.subject is Subject.METER
            and key.subject_id == meter_id
            and (a.is_active or a.last_seen >= since)
        ]

    def put_settings(self, ctx: TenantContext, settings: AlarmSettings) -> None:
        if settings.tenant_id != ctx.tenant_id:
            raise ValueError("settings are stored only under their own tenant")
        self._settings[ctx.tenant_id] = settings

    def settings(self, ctx: TenantContext) -> AlarmSettings | None:
        return self._settings.get(ctx.tenant_id)

    def note_vee_day(
        self, ctx: TenantContext, meter_id: str, local_day: date, failed_rules: Sequence[str]
    ) -> None:
        key = (ctx.tenant_id, validate_id(meter_id, "meter"), local_day)
        if failed_rules:
            self._vee[key] = tuple(sorted(set(failed_rules)))
        else:
            self._vee.pop(key, None)

    def vee_failed_days(
        self, ctx: TenantContext, meter_id: str, first: date, last: date
    ) -> dict[date, tuple[str, ...]]:
        return {
            d: rules
            for (t, m, d), rules in sorted(self._vee.items())
            if t == ctx.tenant_id and m == meter_id and first <= d <= last
        }


class MemoryAlarmAnnouncer:
    """Collects the announced transitions (tests read `detail()` of each)."""

    def __init__(self) -> None:
        self.announced: list[AlarmTransition] = []

    def announce(self, transitions: Sequence[AlarmTransition]) -> None:
        self.announced.extend(transitions)
