"""DynamoDB adapters (pynamodb). Storage records stay here; the services see domain objects.

Table names and endpoints are only known at cold start, so the pynamodb model classes are made by
a cached factory instead of being declared with a fixed `Meta`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar, cast

from pynamodb.attributes import Attribute, MapAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.constants import LIST, NULL, NUMBER
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from hemera.config import AwsTarget
from hemera.domain.errors import MalformedFrame
from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading, Unit
from hemera.domain.registry import Meter, Tenant
from hemera.domain.series import (
    SeriesColumns,
    from_columns,
    group_by_series,
    merge_slots,
    reading_of,
    to_columns,
)
from hemera.domain.tenancy import META_SK, TenantContext, series_sk
from hemera.ports import Announce, MergeStats, SeriesChange

# Optimistic locking: a concurrent writer of the same series makes our conditional put fail;
# we re-read and merge again. Three rounds are plenty for one writer per meter.
_MERGE_ATTEMPTS = 3


class NumberListAttribute(Attribute[list[Decimal | None]]):
    """A list of exact numbers with gaps: DynamoDB `L` of `N`/`NULL`, read back as Decimal.

    (pynamodb's NumberAttribute reads numbers through float, which would lose exactness.)
    """

    attr_type = LIST

    def serialize(self, value: list[Decimal | None]) -> list[dict[str, Any]]:
        return [{NULL: True} if v is None else {NUMBER: str(v)} for v in value]

    def deserialize(self, value: list[dict[str, Any]]) -> list[Decimal | None]:
        return [None if NULL in v else Decimal(v[NUMBER]) for v in value]


class SeriesDayRecord(Model):
    """One meter-channel-day in columns (see `hemera.domain.series.SeriesColumns`)."""

    class Meta:
        table_name = "unbound"  # bound at cold start by `readings_models`

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    meter = UnicodeAttribute()
    channel = UnicodeAttribute()
    day = UnicodeAttribute()
    unit = UnicodeAttribute()
    interval_minutes = NumberAttribute()
    values = NumberListAttribute()
    raw = NumberListAttribute()
    source = UnicodeAttribute()
    status = UnicodeAttribute()
    quality = UnicodeAttribute()
    meter_flags = MapAttribute[str, Any](default=dict)
    updated_at = UnicodeAttribute()
    # Increases each time the day's content changes: the series' data version, and the
    # optimistic lock of the merge.
    version = VersionAttribute()


class MeterRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    meter = UnicodeAttribute()
    model = UnicodeAttribute()
    protocol = UnicodeAttribute()
    device = UnicodeAttribute()
    customer = UnicodeAttribute()
    multiplier = UnicodeAttribute(default="1")  # a decimal string: exact


class TenantRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    name = UnicodeAttribute()
    country = UnicodeAttribute()
    timezone = UnicodeAttribute()


class ApiKeyRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # "KEY#<sha256 of the key>": keys are never stored
    tenant = UnicodeAttribute()
    name = UnicodeAttribute()
    created_at = UnicodeAttribute()


M = TypeVar("M", bound=Model)


def _bind(record: type[M], table_name: str, target: AwsTarget, host: str | None) -> type[M]:
    """A subclass of `record` bound to a table and endpoint only known at cold start."""
    meta = type("Meta", (), {"table_name": table_name, "region": target.region, "host": host})
    return cast(type[M], type(record.__name__, (record,), {"Meta": meta}))


@dataclass(frozen=True, slots=True)
class ReadingsModels:
    series: type[SeriesDayRecord]
    meter: type[MeterRecord]
    tenant: type[TenantRecord]


@cache
def readings_models(table_name: str, target: AwsTarget, host: str | None) -> ReadingsModels:
    """pynamodb models of the single readings table, bound to one table and endpoint."""
    return ReadingsModels(
        _bind(SeriesDayRecord, table_name, target, host),
        _bind(MeterRecord, table_name, target, host),
        _bind(TenantRecord, table_name, target, host),
    )


@cache
def api_key_model(table_name: str, target: AwsTarget, host: str | None) -> type[ApiKeyRecord]:
    return _bind(ApiKeyRecord, table_name, target, host)


class DynamoReadingStore:
    def __init__(self, models: ReadingsModels) -> None:
        self._series = models.series

    def merge_intervals(
        self, ctx: TenantContext, readings: Sequence[IntervalReading], announce: Announce | None = None
    ) -> MergeStats:
        totals = MergeStats()
        for (meter_id, channel, day), group in group_by_series(readings).items():
            totals += self._merge_series(ctx, meter_id, channel, day, group, announce)
        return totals

    def _merge_series(
        self,
        ctx: TenantContext,
        meter_id: str,
        channel: Channel,
        day: date,
        group: list[IntervalReading],
        announce: Announce | None,
    ) -> MergeStats:
        pk, sk = ctx.meter_pk(meter_id), series_sk(channel.value, day)
        lengths = {r.length_minutes for r in group}
        if len(lengths) != 1:
            raise ValueError(f"mixed interval lengths {sorted(lengths)} in one series")
        (minutes,) = lengths
        for attempt in range(_MERGE_ATTEMPTS):
            try:
                item = self._series.get(pk, sk, consistent_read=True)
                _same_length(item.interval_minutes, minutes, meter_id, day)
                existing = from_columns(_columns(item), minutes)
            except self._series.DoesNotExist:
                item = self._series(
                    pk,
                    sk,
                    tenant=ctx.tenant_id,
                    meter=meter_id,
                    channel=channel.value,
                    day=day.isoformat(),
                    unit=CHANNEL_UNITS[channel].value,
                    interval_minutes=minutes,
                )
                existing = {}
            merged = merge_slots(existing, group)
            if not merged.modified:
                return MergeStats(intervals_unchanged=merged.unchanged)
            columns = to_columns(merged.slots, minutes)
            item.values, item.raw = columns.values, [None if r is None else Decimal(r) for r in columns.raw]
            item.source, item.status, item.quality = columns.source, columns.status, columns.quality
            item.meter_flags = columns.meter_flags
            item.updated_at = datetime.now(UTC).isoformat()
            change = SeriesChange(meter_id, channel, day, int(item.version or 0) + 1)
            if announce is not None:
                announce([change])
            try:
                item.save()
            except PutError as exc:
                if (
                    exc.cause_response_code == "ConditionalCheckFailedException"
                    and attempt + 1 < _MERGE_ATTEMPTS
                ):
                    continue
                raise
            return MergeStats(1, merged.new, merged.changed, merged.unchanged, (change,))
        raise RuntimeError("unreachable")

    def load_profile(
        self, ctx: TenantContext, meter_id: str, channel: Channel, start: datetime, end: datetime
    ) -> list[IntervalReading]:
        first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
        readings: list[IntervalReading] = []
        for item in self._series.query(
            ctx.meter_pk(meter_id),
            self._series.sk.between(series_sk(channel.value, first), series_sk(channel.value, last)),
        ):
            day = date.fromisoformat(item.day)
            unit = Unit(item.unit)
            minutes = int(item.interval_minutes)
            for slot_key, slot in sorted(from_columns(_columns(item), minutes).items()):
                reading = reading_of(meter_id, channel, day, slot_key, slot, minutes, unit)
                if start <= reading.start < end:
                    readings.append(reading)
        return readings


def _same_length(stored: float, incoming: int, meter_id: str, day: date) -> None:
    """A day item keeps one interval length: slots of another length would land in wrong places."""
    if int(stored) != incoming:
        raise MalformedFrame(
            f"meter {meter_id} sent {incoming}-minute intervals for {day}, stored at {int(stored)} minutes"
        )


def _columns(item: SeriesDayRecord) -> SeriesColumns:
    flags = item.meter_flags.as_dict() if isinstance(item.meter_flags, MapAttribute) else item.meter_flags
    return SeriesColumns(
        values=list(item.values),
        raw=[None if r is None else int(r) for r in item.raw],
        source=item.source,
        status=item.status,
        quality=item.quality,
        meter_flags={k: int(v) for k, v in (flags or {}).items()},
    )


class DynamoRegistry:
    def __init__(self, models: ReadingsModels) -> None:
        self._meter = models.meter
        self._tenant = models.tenant

    def put_tenant(self, tenant: Tenant) -> None:
        ctx = TenantContext(tenant.id)
        self._tenant(
            ctx.tenant_pk(),
            META_SK,
            tenant=tenant.id,
            name=tenant.name,
            country=tenant.country,
            timezone=tenant.timezone,
        ).save()

    def get_tenant(self, ctx: TenantContext) -> Tenant | None:
        try:
            record = self._tenant.get(ctx.tenant_pk(), META_SK)
        except self._tenant.DoesNotExist:
            return None
        return Tenant(record.tenant, record.name, record.country, record.timezone)

    def put_meter(self, ctx: TenantContext, meter: Meter) -> None:
        if meter.tenant_id != ctx.tenant_id:
            raise ValueError("a meter is registered only under its own tenant")
        self._meter(
            ctx.meter_pk(meter.id),
            META_SK,
            tenant=ctx.tenant_id,
            meter=meter.id,
            model=meter.model,
            protocol=meter.protocol,
            device=meter.device_id,
            customer=meter.customer_id,
            multiplier=str(meter.multiplier),
        ).save()

    def get_meter(self, ctx: TenantContext, meter_id: str) -> Meter | None:
        try:
            record = self._meter.get(ctx.meter_pk(meter_id), META_SK)
        except self._meter.DoesNotExist:
            return None
        return Meter(
            record.tenant,
            record.meter,
            record.model,
            record.protocol,
            record.device,
            record.customer,
            Decimal(record.multiplier),
        )


class DynamoApiKeys:
    def __init__(self, model: type[ApiKeyRecord]) -> None:
        self._model = model

    def store(self, key_hash: str, tenant_id: str, name: str) -> None:
        self._model(
            f"KEY#{key_hash}", tenant=tenant_id, name=name, created_at=datetime.now(UTC).isoformat()
        ).save()

    def tenant_for(self, key_hash: str) -> str | None:
        try:
            return str(self._model.get(f"KEY#{key_hash}").tenant)
        except self._model.DoesNotExist:
            return None
