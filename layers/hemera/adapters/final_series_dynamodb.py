"""Final (VEE'd) days in the readings table (pynamodb), tenant-first like every item there:

- the current version of a meter-channel-local-day: `T#<tenant>#M#<meter>` / `FD#<channel>#<day>`;
- each earlier version, kept for restatements: `T#<tenant>#M#<meter>` / `FDV#<channel>#<day>#<version>`.

An item holds the whole day in columns (like the ingest items, `hemera.domain.series`): one string
per attribute of the intervals instead of a list of 96 maps; a 92-interval day with estimates
measured ~2.5 KB (three write units). Versions are immutable: storing version N first copies
version N-1 to its archive item (idempotent: N-1 is the same whoever copies it) and then replaces
the current item on the condition that it is still at N-1, so a concurrent writer gets
`VersionConflict`. A batch is checked whole before any write, but written day by day (no
transaction): a conflict found while writing leaves the days before it stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache

from pynamodb.attributes import Attribute, NumberAttribute, UnicodeAttribute
from pynamodb.constants import STRING
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from hemera.adapters.dynamodb import DecimalColumnAttribute, bind_model
from hemera.config import AwsTarget
from hemera.domain.errors import VersionConflict
from hemera.domain.final_series import FinalDay, FinalInterval, FinalStatus, QualityFlag
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext

# One character per interval status: a day's statuses are one short string.
_STATUS_CODES = {
    FinalStatus.ACTUAL: "a",
    FinalStatus.ESTIMATED: "e",
    FinalStatus.EDITED: "d",
    FinalStatus.FAILED: "f",
}
_STATUS_OF_CODE = {code: status for status, code in _STATUS_CODES.items()}


def final_day_sk(channel: Channel, local_day: date) -> str:
    return f"FD#{channel.value}#{local_day.isoformat()}"


def final_version_sk(channel: Channel, local_day: date, version: int) -> str:
    return f"FDV#{channel.value}#{local_day.isoformat()}#{version:06d}"


class IntColumnAttribute(Attribute[list[int | None]]):
    """A column of small integers with gaps as one string: `17,,14` (empty = none)."""

    attr_type = STRING

    def serialize(self, value: list[int | None]) -> str:
        return ",".join("" if v is None else str(v) for v in value)

    def deserialize(self, value: str) -> list[int | None]:
        return [int(v) if v else None for v in value.split(",")] if value else []


class FinalDayRecord(Model):
    """One version of a final day, in columns (index i of every column is interval i)."""

    class Meta:
        table_name = "unbound"  # bound at cold start by `final_series_model`

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#M#<meter>
    sk = UnicodeAttribute(range_key=True)  # FD#… (current) or FDV#… (an earlier version)
    tenant = UnicodeAttribute()
    meter = UnicodeAttribute()
    channel = UnicodeAttribute()
    day = UnicodeAttribute()  # the tenant-local day
    timezone = UnicodeAttribute()
    interval_minutes = NumberAttribute()
    version = NumberAttribute()
    computed_at = UnicodeAttribute()
    cause = UnicodeAttribute()
    edited_by = UnicodeAttribute(null=True)
    notes = UnicodeAttribute(default="[]")  # JSON list of strings
    source_versions = UnicodeAttribute(default="")  # `2026-03-08:3,2026-03-09:1` (UTC days)
    first_start = UnicodeAttribute(default="")  # UTC start of the first interval
    # Minutes of each interval after `first_start`; empty when they follow each other without gaps.
    offsets = IntColumnAttribute(default=list)
    values = DecimalColumnAttribute()
    raw = DecimalColumnAttribute()
    status = UnicodeAttribute(default="")  # one `_STATUS_CODES` character per interval
    quality = UnicodeAttribute(default="")  # one AEMO flag character per interval
    method = IntColumnAttribute(default=list)
    reason = IntColumnAttribute(default=list)
    espi = IntColumnAttribute(default=list)
    rules = UnicodeAttribute(default="[]")  # JSON list of the day's distinct [rule id, rule version]
    rule = IntColumnAttribute(default=list)  # per interval: index into `rules`, or none


@cache
def final_series_model(table_name: str, target: AwsTarget, host: str | None) -> type[FinalDayRecord]:
    return bind_model(FinalDayRecord, table_name, target, host)


class DynamoFinalSeries:
    def __init__(self, model: type[FinalDayRecord]) -> None:
        self._model = model

    def save(self, ctx: TenantContext, days: Sequence[FinalDay]) -> None:
        keys = [(ctx.meter_pk(d.meter_id), final_day_sk(d.channel, d.local_day)) for d in days]
        current = {(r.pk, r.sk): r for r in self._model.batch_get(keys, consistent_read=True)}
        for day, key in zip(days, keys, strict=True):  # every day checked before any write
            stored = int(current[key].version) if key in current else 0
            if day.version != stored + 1:
                raise VersionConflict(_conflict(day, stored))
        for day, key in zip(days, keys, strict=True):
            previous = current.get(key)
            if previous is not None:
                self._archive(previous)
            record = self._record(ctx, day, key[1])
            condition = (
                self._model.sk.does_not_exist()
                if previous is None
                else self._model.version == int(previous.version)
            )
            try:
                record.save(condition=condition)
            except PutError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
                raise VersionConflict(_conflict(day, None)) from exc

    def _archive(self, previous: FinalDayRecord) -> None:
        channel, local_day = Channel(previous.channel), date.fromisoformat(previous.day)
        copy = self._model(previous.pk, final_version_sk(channel, local_day, int(previous.version)))
        for name in _COPIED:
            setattr(copy, name, getattr(previous, name))
        copy.save()

    def _record(self, ctx: TenantContext, day: FinalDay, sk: str) -> FinalDayRecord:
        first = day.intervals[0].start if day.intervals else None
        offsets = [int((i.start - first) / timedelta(minutes=1)) for i in day.intervals] if first else []
        contiguous = all(o == n * day.interval_minutes for n, o in enumerate(offsets))
        rules = list(dict.fromkeys((i.rule_id, i.rule_version) for i in day.intervals if i.rule_id))
        index = {rule: n for n, rule in enumerate(rules)}
        return self._model(
            ctx.meter_pk(day.meter_id),
            sk,
            tenant=ctx.tenant_id,
            meter=day.meter_id,
            channel=day.channel.value,
            day=day.local_day.isoformat(),
            timezone=day.timezone,
            interval_minutes=day.interval_minutes,
            version=day.version,
            computed_at=day.computed_at.astimezone(UTC).isoformat(),
            cause=day.cause,
            edited_by=day.edited_by,
            notes=json.dumps(list(day.notes)),
            source_versions=",".join(f"{d.isoformat()}:{v}" for d, v in day.source_versions),
            first_start=first.astimezone(UTC).isoformat() if first else "",
            offsets=[] if contiguous else offsets,
            values=[i.value for i in day.intervals],
            raw=[i.raw_value for i in day.intervals],
            status="".join(_STATUS_CODES[i.status] for i in day.intervals),
            quality="".join(i.quality_flag.value for i in day.intervals),
            method=[i.method_flag for i in day.intervals],
            reason=[i.reason_code for i in day.intervals],
            espi=[i.espi_quality for i in day.intervals],
            rules=json.dumps([list(r) for r in rules]),
            rule=[index[(i.rule_id, i.rule_version)] if i.rule_id else None for i in day.intervals],
        )

    def final_days(
        self, ctx: TenantContext, meter_id: str, channel: Channel, first: date, last: date
    ) -> list[FinalDay]:
        if last < first:
            return []
        records = self._model.query(
            ctx.meter_pk(meter_id),
            self._model.sk.between(final_day_sk(channel, first), final_day_sk(channel, last)),
            consistent_read=True,
        )
        return [_final_day(r) for r in records]

    def final_day_version(
        self, ctx: TenantContext, meter_id: str, channel: Channel, local_day: date, version: int
    ) -> FinalDay | None:
        if version < 1:
            return None
        pk = ctx.meter_pk(meter_id)
        try:
            current = self._model.get(pk, final_day_sk(channel, local_day), consistent_read=True)
        except self._model.DoesNotExist:
            return None
        if int(current.version) == version:
            return _final_day(current)
        if version > int(current.version):
            return None
        try:
            return _final_day(self._model.get(pk, final_version_sk(channel, local_day, version)))
        except self._model.DoesNotExist:
            return None


def _conflict(day: FinalDay, stored: int | None) -> str:
    held = "another version" if stored is None else f"version {stored}"
    return (
        f"final day {day.meter_id}/{day.channel.value}/{day.local_day} is at {held}; "
        f"cannot store version {day.version}"
    )


_COPIED = (
    "tenant",
    "meter",
    "channel",
    "day",
    "timezone",
    "interval_minutes",
    "version",
    "computed_at",
    "cause",
    "edited_by",
    "notes",
    "source_versions",
    "first_start",
    "offsets",
    "values",
    "raw",
    "status",
    "quality",
    "method",
    "reason",
    "espi",
    "rules",
    "rule",
)


def _final_day(record: FinalDayRecord) -> FinalDay:
    minutes = int(record.interval_minutes)
    values = list(record.values)
    count = len(values)
    first = datetime.fromisoformat(record.first_start) if record.first_start else None
    offsets = list(record.offsets) or [n * minutes for n in range(count)]
    rules = [(str(r[0]), None if r[1] is None else int(r[1])) for r in json.loads(record.rules)]
    raw, method, reason, espi, rule = (
        list(record.raw),
        list(record.method),
        list(record.reason),
        list(record.espi),
        list(record.rule),
    )
    intervals = []
    for n in range(count):
        assert first is not None
        offset = offsets[n]
        rule_index = rule[n] if n < len(rule) else None
        rule_id, rule_version = rules[rule_index] if rule_index is not None else (None, None)
        espi_code = espi[n]
        intervals.append(
            FinalInterval(
                start=first + timedelta(minutes=offset if offset is not None else n * minutes),
                length_minutes=minutes,
                value=values[n],
                raw_value=raw[n] if n < len(raw) else None,
                status=_STATUS_OF_CODE[record.status[n]],
                quality_flag=QualityFlag(record.quality[n]),
                espi_quality=int(espi_code) if espi_code is not None else 0,
                method_flag=method[n] if n < len(method) else None,
                reason_code=reason[n] if n < len(reason) else None,
                rule_id=rule_id,
                rule_version=rule_version,
            )
        )
    return FinalDay(
        meter_id=record.meter,
        channel=Channel(record.channel),
        local_day=date.fromisoformat(record.day),
        timezone=record.timezone,
        interval_minutes=minutes,
        version=int(record.version),
        intervals=tuple(intervals),
        computed_at=datetime.fromisoformat(record.computed_at),
        source_versions=tuple(
            (date.fromisoformat(d), int(v))
            for d, v in (entry.split(":") for entry in record.source_versions.split(",") if entry)
        ),
        cause=record.cause,
        edited_by=record.edited_by,
        notes=tuple(str(n) for n in json.loads(record.notes)),
    )
