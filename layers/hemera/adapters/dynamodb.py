"""DynamoDB adapters (pynamodb). Storage records stay here; the services see domain objects.

Table names and endpoints are only known at cold start, so the pynamodb model classes are made by
a cached factory instead of being declared with a fixed `Meta`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, TypeVar, cast

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from hemera.config import AwsTarget
from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading, Unit
from hemera.domain.registry import Meter, Tenant
from hemera.domain.series import group_by_series, merge_slots, reading_of
from hemera.domain.tenancy import META_SK, TenantContext, series_sk
from hemera.ports import MergeStats

# Optimistic locking: a concurrent writer of the same series makes our conditional put fail;
# we re-read and merge again. Three rounds are plenty for one writer per meter.
_MERGE_ATTEMPTS = 3


class SeriesDayRecord(Model):
    """One meter-channel-day: up to 96 intervals keyed 'HHMM' (UTC) in `intervals`."""

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
    intervals = MapAttribute[str, Any]()
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

    def merge_intervals(self, ctx: TenantContext, readings: Sequence[IntervalReading]) -> MergeStats:
        totals = MergeStats()
        for (meter_id, channel, day), group in group_by_series(readings).items():
            stats = self._merge_series(ctx, meter_id, channel, day, group)
            totals = MergeStats(
                items_written=totals.items_written + stats.items_written,
                intervals_new=totals.intervals_new + stats.intervals_new,
                intervals_changed=totals.intervals_changed + stats.intervals_changed,
                intervals_unchanged=totals.intervals_unchanged + stats.intervals_unchanged,
            )
        return totals

    def _merge_series(
        self, ctx: TenantContext, meter_id: str, channel: Channel, day: date, group: list[IntervalReading]
    ) -> MergeStats:
        pk, sk = ctx.meter_pk(meter_id), series_sk(channel.value, day)
        lengths = {r.length_minutes for r in group}
        if len(lengths) != 1:
            raise ValueError(f"mixed interval lengths {sorted(lengths)} in one series")
        (minutes,) = lengths
        for attempt in range(_MERGE_ATTEMPTS):
            try:
                item = self._series.get(pk, sk, consistent_read=True)
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
                    intervals={},
                )
            merged = merge_slots(dict(item.intervals.as_dict() if item.intervals else {}), group)
            if not merged.modified:
                return MergeStats(intervals_unchanged=merged.unchanged)
            item.intervals = merged.slots
            item.updated_at = datetime.now(UTC).isoformat()
            try:
                item.save()
            except PutError as exc:
                if (
                    exc.cause_response_code == "ConditionalCheckFailedException"
                    and attempt + 1 < _MERGE_ATTEMPTS
                ):
                    continue
                raise
            return MergeStats(1, merged.new, merged.changed, merged.unchanged)
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
            for slot_key, slot in sorted(item.intervals.as_dict().items()):
                reading = reading_of(meter_id, channel, day, slot_key, slot, int(item.interval_minutes), unit)
                if start <= reading.start < end:
                    readings.append(reading)
        return readings


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
        ).save()

    def get_meter(self, ctx: TenantContext, meter_id: str) -> Meter | None:
        try:
            record = self._meter.get(ctx.meter_pk(meter_id), META_SK)
        except self._meter.DoesNotExist:
            return None
        return Meter(
            record.tenant, record.meter, record.model, record.protocol, record.device, record.customer
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
