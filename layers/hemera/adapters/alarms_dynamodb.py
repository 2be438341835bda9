"""Alarms in the readings table (pynamodb), tenant-first like every item there, in one partition
per tenant (`T#<tenant>#ALARMS`; a tenant's alarms are few and written rarely):

- each alarm, kept after it closes: sk `A#<alarm id>` (ids are time-ordered: newest last);
- the *head* of each key (subject, subject id, type): sk `K#<subject>#<id>#<type>`, a copy of the
  key's latest alarm and the key's version. Every change of an alarm writes head and alarm in one
  transaction conditioned on the head's version, so two evaluations racing on one condition
  cannot both raise an alarm (the loser gets `AlarmConflict`, re-reads and applies again);
- the tenant's alarm settings: sk `SETTINGS` (JSON);
- days whose VEE rules failed: sk `VEE#<meter>#<local day>` (the failed rules, JSON).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from hemera.adapters.dynamodb import bind_model
from hemera.config import AwsTarget
from hemera.domain.alarms import (
    ACTIVE_STATES,
    Alarm,
    AlarmConflict,
    AlarmKey,
    AlarmSettings,
    AlarmState,
    AlarmThresholds,
    AlarmType,
)
from hemera.domain.meter_events import Subject
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.ports import Page
from hemera.ports.alarms import AlarmQuery

ALARM_SK_PREFIX = "A#"
HEAD_SK_PREFIX = "K#"
SETTINGS_SK = "SETTINGS"
VEE_SK_PREFIX = "VEE#"


def alarms_pk(ctx: TenantContext) -> str:
    return f"{ctx.key_prefix}ALARMS"


def _id_stamp(moment: datetime) -> str:
    """The time part of an alarm id (`new_alarm_id`): UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y%m%dt%H%M%S")


def head_sk(key: AlarmKey) -> str:
    head = f"{HEAD_SK_PREFIX}{key.subject.value}#{validate_id(key.subject_id, 'subject')}#{key.type.value}"
    return f"{head}#{validate_id(key.scope, 'scope')}" if key.scope else head


class AlarmRecord(Model):
    """An alarm (sk `A#…`) or a key's head (sk `K#…`): the alarm as JSON, and the attributes the
    listings filter on."""

    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    alarm = UnicodeAttribute()  # the alarm id
    state = UnicodeAttribute()
    doc = UnicodeAttribute()  # JSON (`alarm_document`)
    key_version = NumberAttribute(default=0)  # heads only


class AlarmDocRecord(Model):
    """Settings (sk `SETTINGS`) or a VEE-failed day (sk `VEE#…`): one JSON document."""

    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    doc = UnicodeAttribute()


@cache
def alarm_models(
    table_name: str, target: AwsTarget, host: str | None
) -> tuple[type[AlarmRecord], type[AlarmDocRecord]]:
    return (
        bind_model(AlarmRecord, table_name, target, host),
        bind_model(AlarmDocRecord, table_name, target, host),
    )


# --- JSON forms ---------------------------------------------------------------------------------
def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def alarm_document(alarm: Alarm) -> dict[str, Any]:
    return {
        "alarm_id": alarm.alarm_id,
        "tenant": alarm.tenant_id,
        "subject": alarm.key.subject.value,
        "subject_id": alarm.key.subject_id,
        "type": alarm.key.type.value,
        "scope": alarm.key.scope,
        "severity": alarm.severity,
        "state": alarm.state.value,
        "first_seen": alarm.first_seen.isoformat(),
        "last_seen": alarm.last_seen.isoformat(),
        "count": alarm.count,
        "facts": alarm.facts,
        "clear_count": alarm.clear_count,
        "last_clear": _time(alarm.last_clear),
        "transitions": alarm.transitions,
        "changed_at": _time(alarm.changed_at),
        "acknowledged_by": alarm.acknowledged_by,
        "acknowledged_at": _time(alarm.acknowledged_at),
        "closed_at": _time(alarm.closed_at),
        "close_reason": alarm.close_reason,
    }


def alarm_of_document(doc: dict[str, Any]) -> Alarm:
    first_seen, last_seen = _parse(doc["first_seen"]), _parse(doc["last_seen"])
    assert first_seen is not None and last_seen is not None
    return Alarm(
        alarm_id=doc["alarm_id"],
        tenant_id=doc["tenant"],
        key=AlarmKey(
            Subject(doc["subject"]), doc["subject_id"], AlarmType(doc["type"]), doc.get("scope", "")
        ),
        severity=doc["severity"],
        state=AlarmState(doc["state"]),
        first_seen=first_seen,
        last_seen=last_seen,
        count=int(doc["count"]),
        facts=dict(doc.get("facts") or {}),
        clear_count=int(doc.get("clear_count", 0)),
        last_clear=_parse(doc.get("last_clear")),
        transitions=int(doc.get("transitions", 1)),
        changed_at=_parse(doc.get("changed_at")),
        acknowledged_by=doc.get("acknowledged_by"),
        acknowledged_at=_parse(doc.get("acknowledged_at")),
        closed_at=_parse(doc.get("closed_at")),
        close_reason=doc.get("close_reason"),
    )


def settings_document(settings: AlarmSettings) -> dict[str, Any]:
    t = settings.thresholds
    return {
        "tenant": settings.tenant_id,
        "thresholds": {name: str(getattr(t, name)) for name in AlarmThresholds.__dataclass_fields__},
        "nominal_voltage_v": str(settings.nominal_voltage_v)
        if settings.nominal_voltage_v is not None
        else None,
        "contracted_demand_kw": {m: str(v) for m, v in sorted(settings.contracted_demand_kw.items())},
        "disabled": sorted(t.value for t in settings.disabled),
    }


def settings_of_document(doc: dict[str, Any]) -> AlarmSettings:
    defaults = AlarmThresholds()
    values: dict[str, Any] = {}
    for name, text in (doc.get("thresholds") or {}).items():
        if name in AlarmThresholds.__dataclass_fields__:
            kind = type(getattr(defaults, name))
            values[name] = int(text) if kind is int else Decimal(text)
    nominal = doc.get("nominal_voltage_v")
    return AlarmSettings(
        tenant_id=doc["tenant"],
        thresholds=AlarmThresholds(**values),
        nominal_voltage_v=Decimal(nominal) if nominal is not None else None,
        contracted_demand_kw={m: Decimal(v) for m, v in (doc.get("contracted_demand_kw") or {}).items()},
        disabled=frozenset(AlarmType(t) for t in doc.get("disabled") or ()),
    )


class DynamoAlarmStore:
    def __init__(self, models: tuple[type[AlarmRecord], type[AlarmDocRecord]]) -> None:
        self._record, self._doc = models

    def _connection(self) -> Connection:
        meta = self._record.Meta
        return Connection(region=getattr(meta, "region", None), host=getattr(meta, "host", None))

    def _to_record(self, ctx: TenantContext, sk: str, alarm: Alarm, version: int = 0) -> AlarmRecord:
        return self._record(
            alarms_pk(ctx),
            sk,
            tenant=ctx.tenant_id,
            alarm=alarm.alarm_id,
            state=alarm.state.value,
            doc=json.dumps(alarm_document(alarm), sort_keys=True, default=str),
            key_version=version,
        )

    # --- AlarmStore -------------------------------------------------------------------------
    def current(self, ctx: TenantContext, key: AlarmKey) -> tuple[Alarm | None, int]:
        try:
            head = self._record.get(alarms_pk(ctx), head_sk(key), consistent_read=True)
        except self._record.DoesNotExist:
            return None, 0
        return alarm_of_document(json.loads(head.doc)), int(head.key_version)

    def save(self, ctx: TenantContext, alarm: Alarm, expected_version: int) -> None:
        if alarm.tenant_id != ctx.tenant_id:
            raise ValueError("an alarm is stored only under its own tenant")
        validate_id(alarm.alarm_id, "alarm")
        head = self._to_record(ctx, head_sk(alarm.key), alarm, expected_version + 1)
        condition = (
            self._record.pk.does_not_exist()
            if expected_version == 0
            else self._record.key_version == expected_version
        )
        try:
            with TransactWrite(connection=self._connection()) as transaction:
                transaction.save(head, condition=condition)
                transaction.save(self._to_record(ctx, ALARM_SK_PREFIX + alarm.alarm_id, alarm))
        except TransactWriteError as exc:
            raise AlarmConflict(f"alarm key {alarm.key.text} changed under us") from exc

    def get(self, ctx: TenantContext, alarm_id: str) -> Alarm | None:
        try:
            record = self._record.get(alarms_pk(ctx), ALARM_SK_PREFIX + validate_id(alarm_id, "alarm"))
        except self._record.DoesNotExist:
            return None
        return alarm_of_document(json.loads(record.doc))

    def listing(self, ctx: TenantContext, query: AlarmQuery, after: str | None, limit: int) -> Page[Alarm]:
        """Newest first. Open and acknowledged alarms are read from the keys' heads (an active
        alarm is always its key's latest), so the common "what is open" listing costs the number of
        alarm keys, not the tenant's alarm history; otherwise alarm ids (time-ordered by first
        seen) are read down from `until` and the other filters applied here, reading on until one
        item past the page tells whether another page follows."""
        if after is not None:
            validate_id(after, "cursor")
        if query.state is not None and query.state in ACTIVE_STATES:
            heads = [a for a in self._heads(ctx, HEAD_SK_PREFIX) if query.matches(a)]
            found = sorted(
                (a for a in heads if after is None or a.alarm_id < after),
                key=lambda a: a.alarm_id,
                reverse=True,
            )
            page = found[:limit]
            return Page(page, page[-1].alarm_id if len(found) > limit else None)
        upper = ALARM_SK_PREFIX + (after if after is not None else "~")
        if query.until is not None:
            # ids start `al-<first seen, to the second>`: the next second bounds every earlier one
            upper = min(upper, ALARM_SK_PREFIX + "al-" + _id_stamp(query.until + timedelta(seconds=1)))
        condition: Condition = self._record.sk.between(ALARM_SK_PREFIX, upper)
        found_items: list[Alarm] = []
        for record in self._record.query(alarms_pk(ctx), condition, scan_index_forward=False, page_size=100):
            if after is not None and record.alarm >= after:
                continue
            alarm = alarm_of_document(json.loads(record.doc))
            if query.matches(alarm):
                found_items.append(alarm)
                if len(found_items) > limit:
                    break
        more = len(found_items) > limit
        page = found_items[:limit]
        return Page(page, page[-1].alarm_id if more else None)

    def _heads(self, ctx: TenantContext, prefix: str) -> list[Alarm]:
        records = self._record.query(alarms_pk(ctx), self._record.sk.startswith(prefix))
        return [alarm_of_document(json.loads(r.doc)) for r in records]

    def active(self, ctx: TenantContext) -> list[Alarm]:
        return [a for a in self._heads(ctx, HEAD_SK_PREFIX) if a.is_active]

    def of_meter(self, ctx: TenantContext, meter_id: str, since: datetime) -> list[Alarm]:
        prefix = f"{HEAD_SK_PREFIX}{Subject.METER.value}#{validate_id(meter_id, 'meter')}#"
        return [a for a in self._heads(ctx, prefix) if a.is_active or a.last_seen >= since]

    # --- AlarmSettingsStore -----------------------------------------------------------------
    def put_settings(self, ctx: TenantContext, settings: AlarmSettings) -> None:
        if settings.tenant_id != ctx.tenant_id:
            raise ValueError("settings are stored only under their own tenant")
        self._doc(
            alarms_pk(ctx), SETTINGS_SK, tenant=ctx.tenant_id, doc=json.dumps(settings_document(settings))
        ).save()

    def settings(self, ctx: TenantContext) -> AlarmSettings | None:
        try:
            record = self._doc.get(alarms_pk(ctx), SETTINGS_SK)
        except self._doc.DoesNotExist:
            return None
        return settings_of_document(json.loads(record.doc))

    # --- VeeTally ---------------------------------------------------------------------------
    def _vee_sk(self, meter_id: str, day: date) -> str:
        return f"{VEE_SK_PREFIX}{validate_id(meter_id, 'meter')}#{day.isoformat()}"

    def note_vee_day(
        self, ctx: TenantContext, meter_id: str, local_day: date, failed_rules: Sequence[str]
    ) -> None:
        sk = self._vee_sk(meter_id, local_day)
        if failed_rules:
            self._doc(
                alarms_pk(ctx), sk, tenant=ctx.tenant_id, doc=json.dumps(sorted(set(failed_rules)))
            ).save()
        else:
            self._doc(alarms_pk(ctx), sk, tenant=ctx.tenant_id, doc="[]").delete()

    def vee_failed_days(
        self, ctx: TenantContext, meter_id: str, first: date, last: date
    ) -> dict[date, tuple[str, ...]]:
        records = self._doc.query(
            alarms_pk(ctx), self._doc.sk.between(self._vee_sk(meter_id, first), self._vee_sk(meter_id, last))
        )
        return {date.fromisoformat(r.sk.rsplit("#", 1)[1]): tuple(json.loads(r.doc)) for r in records}
