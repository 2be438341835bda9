"""DynamoDB adapters (pynamodb). Storage records stay here; the services see domain objects.

Table names and endpoints are only known at cold start, so the pynamodb model classes are made by
a cached factory instead of being declared with a fixed `Meta`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar, cast

from pynamodb.attributes import (
    Attribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.constants import STRING
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from hemera.aws import credential_args
from hemera.config import AwsTarget
from hemera.domain.billing.tariff import MeterTariff
from hemera.domain.errors import ConcurrentUpdate
from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading, Unit
from hemera.domain.registry import Customer, Meter, Tenant
from hemera.domain.series import (
    SeriesColumns,
    SeriesKey,
    SlotMerge,
    check_series_length,
    from_columns,
    group_by_series,
    merge_slots,
    reading_of,
    to_columns,
)
from hemera.domain.tenancy import (
    META_SK,
    TENANTS_PK,
    TenantContext,
    series_sk,
    tenant_listing_sk,
    validate_id,
)
from hemera.ports import (
    Announce,
    ApiKeyGrant,
    Consent,
    LedgerEntry,
    MergeStats,
    Page,
    SeriesChange,
    SeriesDay,
)

# Optimistic locking: a concurrent writer of the same series makes our conditional put fail;
# we re-read and merge again. Three rounds are plenty for one writer per meter.
_MERGE_ATTEMPTS = 3


class DecimalColumnAttribute(Attribute[list[Decimal | None]]):
    """A column of exact numbers with gaps as one string: `1.25,,0.75` (empty = no value).

    One `S` instead of a DynamoDB list of 96 `N` values: about half the bytes (write units are per
    KB) and one value to (de)serialise instead of 96 typed ones. Decimal strings keep values exact
    (pynamodb's NumberAttribute goes through float).
    """

    attr_type = STRING

    def serialize(self, value: list[Decimal | None]) -> str:
        return ",".join("" if v is None else str(v) for v in value)

    def deserialize(self, value: str) -> list[Decimal | None]:
        return [Decimal(v) if v else None for v in value.split(",")] if value else []


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
    values = DecimalColumnAttribute()
    raw = DecimalColumnAttribute()
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
    tariff = UnicodeAttribute(null=True)  # MeterTariff.document() as JSON (billing)
    nmi = UnicodeAttribute(null=True)  # 10 characters, no checksum digit (absent: no NMI)
    serial = UnicodeAttribute(null=True)


class CustomerRecord(Model):
    """A customer (`T#<t>#C#<customer>` / `META`) or its listing item (`T#<t>#INDEX` / `C#<customer>`)."""

    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    customer = UnicodeAttribute()
    name = UnicodeAttribute()
    load_class = UnicodeAttribute()
    tax_id = UnicodeAttribute(null=True)
    reading_day = NumberAttribute(null=True)  # overrides the tariffs' reading day (absent: none)


class TenantRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    name = UnicodeAttribute()
    country = UnicodeAttribute()
    timezone = UnicodeAttribute()


class LedgerRecord(Model):
    """An envelope that was stored: (device, seq) and the digest of its bytes, until `expires_at`
    (DynamoDB TTL) — past the longest redelivery (SQS retention) plus a margin."""

    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#D#<device>
    sk = UnicodeAttribute(range_key=True)  # SEQ#<seq, zero-padded>
    sha256 = UnicodeAttribute()
    expires_at = NumberAttribute()


class ApiKeyRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # "KEY#<sha256 of the key>": keys are never stored
    tenant = UnicodeAttribute()
    name = UnicodeAttribute()
    created_at = UnicodeAttribute()
    customer = UnicodeAttribute(null=True)  # scope `customer:<id>`; absent = the whole tenant
    revoked_at = UnicodeAttribute(null=True)
    consent = UnicodeAttribute(null=True)  # a third party's key: the consent it is bound to
    scopes = UnicodeSetAttribute(null=True)  # absent = {"read"}


class ConsentRecord(Model):
    """A customer's consent for a third party, in the API keys table (tenant-first key)."""

    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # "CONSENT#<tenant>#<consent id>"
    tenant = UnicodeAttribute()
    customer = UnicodeAttribute()
    third_party = UnicodeAttribute()
    scopes = UnicodeSetAttribute()
    expires_at = UnicodeAttribute()
    revoked_at = UnicodeAttribute(null=True)


M = TypeVar("M", bound=Model)
R = TypeVar("R", CustomerRecord, MeterRecord)
L = TypeVar("L", Customer, Meter)


def bind_model(record: type[M], table_name: str, target: AwsTarget, host: str | None) -> type[M]:
    """A subclass of `record` bound to a table and endpoint only known at cold start (and, for a
    tenant-scoped target, to that tenant's temporary credentials)."""
    attributes = {"table_name": table_name, "region": target.region, "host": host, **credential_args(target)}
    meta = type("Meta", (), attributes)
    return cast(type[M], type(record.__name__, (record,), {"Meta": meta}))


@dataclass(frozen=True, slots=True)
class ReadingsModels:
    series: type[SeriesDayRecord]
    meter: type[MeterRecord]
    tenant: type[TenantRecord]
    ledger: type[LedgerRecord]
    customer: type[CustomerRecord]


@cache
def readings_models(table_name: str, target: AwsTarget, host: str | None) -> ReadingsModels:
    """pynamodb models of the single readings table, bound to one table and endpoint."""
    return ReadingsModels(
        bind_model(SeriesDayRecord, table_name, target, host),
        bind_model(MeterRecord, table_name, target, host),
        bind_model(TenantRecord, table_name, target, host),
        bind_model(LedgerRecord, table_name, target, host),
        bind_model(CustomerRecord, table_name, target, host),
    )


@cache
def api_key_model(table_name: str, target: AwsTarget, host: str | None) -> type[ApiKeyRecord]:
    return bind_model(ApiKeyRecord, table_name, target, host)


@cache
def consent_model(table_name: str, target: AwsTarget, host: str | None) -> type[ConsentRecord]:
    return bind_model(ConsentRecord, table_name, target, host)


class DynamoReadingStore:
    def __init__(self, models: ReadingsModels) -> None:
        self._series = models.series

    def merge_intervals(
        self, ctx: TenantContext, readings: Sequence[IntervalReading], announce: Announce | None = None
    ) -> MergeStats:
        """Merge a batch of readings: the days are read in BatchGetItem calls and every day is
        checked before anything is written; each changed day is then written with a condition on
        the version it was read at (optimistic locking), and a day another writer changed in
        between is read and merged again."""
        pending = group_by_series(readings)
        totals = MergeStats()
        for _attempt in range(_MERGE_ATTEMPTS):
            items = self._get_many(ctx, list(pending))
            minutes = {
                series: check_series_length(
                    group,
                    int(items[series].interval_minutes) if series in items else None,
                    series[0],
                    series[2],
                )
                for series, group in pending.items()
            }
            writes: list[tuple[SeriesKey, SeriesDayRecord, SlotMerge, SeriesChange]] = []
            for series, group in pending.items():
                item = items.get(series) or self._new_item(ctx, series, minutes[series])
                existing = from_columns(_columns(item), minutes[series]) if series in items else {}
                merged = merge_slots(existing, group)
                if not merged.modified:
                    totals += MergeStats(intervals_unchanged=merged.unchanged)
                    continue
                _fill(item, to_columns(merged.slots, minutes[series]))
                writes.append((series, item, merged, SeriesChange(*series, int(item.version or 0) + 1)))
            if announce is not None and writes:
                announce([change for *_, change in writes])
            conflicts: dict[SeriesKey, list[IntervalReading]] = {}
            for series, item, merged, change in writes:
                try:
                    item.save()
                except PutError as exc:
                    if exc.cause_response_code != "ConditionalCheckFailedException":
                        raise
                    conflicts[series] = pending[series]
                    continue
                totals += MergeStats(1, merged.new, merged.changed, merged.unchanged, (change,))
            if not conflicts:
                return totals
            pending = conflicts
        raise ConcurrentUpdate(f"{len(pending)} series kept changing under the merge; retry the batch")

    def _new_item(self, ctx: TenantContext, series: SeriesKey, minutes: int) -> SeriesDayRecord:
        meter_id, channel, day = series
        return self._series(
            ctx.meter_pk(meter_id),
            series_sk(channel.value, day),
            tenant=ctx.tenant_id,
            meter=meter_id,
            channel=channel.value,
            day=day.isoformat(),
            unit=CHANNEL_UNITS[channel].value,
            interval_minutes=minutes,
        )

    def _get_many(self, ctx: TenantContext, keys: Sequence[SeriesKey]) -> dict[SeriesKey, SeriesDayRecord]:
        """Current items of these series (BatchGetItem, 100 keys a call, strongly consistent)."""
        by_key = {(ctx.meter_pk(m), series_sk(c.value, d)): (m, c, d) for m, c, d in keys}
        return {
            by_key[(item.pk, item.sk)]: item
            for item in self._series.batch_get(list(by_key), consistent_read=True)
        }

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

    def read_series(self, ctx: TenantContext, keys: Sequence[SeriesKey]) -> dict[SeriesKey, SeriesDay]:
        found = {}
        for series, item in self._get_many(ctx, keys).items():
            meter_id, channel, day = series
            minutes = int(item.interval_minutes)
            readings = [
                reading_of(meter_id, channel, day, slot_key, slot, minutes, Unit(item.unit))
                for slot_key, slot in sorted(from_columns(_columns(item), minutes).items())
            ]
            found[series] = SeriesDay(int(item.version or 0), readings)
        return found

    def series_version(self, ctx: TenantContext, meter_id: str, channel: Channel, day: date) -> int | None:
        try:
            item = self._series.get(
                ctx.meter_pk(meter_id),
                series_sk(channel.value, day),
                consistent_read=True,
                attributes_to_get=["version"],
            )
        except self._series.DoesNotExist:
            return None
        return int(item.version or 0)


def _fill(item: SeriesDayRecord, columns: SeriesColumns) -> None:
    item.values, item.raw = columns.values, [None if r is None else Decimal(r) for r in columns.raw]
    item.source, item.status, item.quality = columns.source, columns.status, columns.quality
    item.meter_flags = columns.meter_flags
    item.updated_at = datetime.now(UTC).isoformat()


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


# Listing items. A GSI would do, but the table has none and listing a tenant's customers and
# meters is rare (portal pages, onboarding): so each customer and meter also gets a small copy in
# the tenant's `T#<t>#INDEX` partition, and a listing is one Query on it, in id order, with
# DynamoDB's own pagination. `CM#<customer>#M#<meter>` lists one customer's meters the same way
# (a `#` ends the customer id, so `acme` never matches `acme-corp`).
_CUSTOMER_INDEX = "C#"
_METER_INDEX = "M#"


def _customer_meter_index(customer_id: str) -> str:
    return f"CM#{validate_id(customer_id, 'customer')}#M#"


class DynamoRegistry:
    def __init__(self, models: ReadingsModels) -> None:
        self._meter = models.meter
        self._tenant = models.tenant
        self._customer = models.customer

    def put_customers(self, ctx: TenantContext, customers: Sequence[Customer]) -> None:
        records = []
        for customer in customers:  # all checked before any write
            if customer.tenant_id != ctx.tenant_id:
                raise ValueError("a customer is registered only under its own tenant")
            for pk, sk in (
                (ctx.customer_pk(customer.id), META_SK),
                (ctx.index_pk(), _CUSTOMER_INDEX + customer.id),
            ):
                records.append(
                    self._customer(
                        pk,
                        sk,
                        tenant=ctx.tenant_id,
                        customer=customer.id,
                        name=customer.name,
                        load_class=customer.load_class,
                        tax_id=customer.tax_id,
                        reading_day=customer.reading_day,
                    )
                )
        with self._customer.batch_write() as batch:
            for record in records:
                batch.save(record)

    def get_customer(self, ctx: TenantContext, customer_id: str) -> Customer | None:
        try:
            return _customer(self._customer.get(ctx.customer_pk(customer_id), META_SK))
        except self._customer.DoesNotExist:
            return None

    def list_customers(self, ctx: TenantContext, cursor: str | None, limit: int) -> Page[Customer]:
        records = self._query_index(self._customer, ctx, _CUSTOMER_INDEX, cursor, limit)
        return _page([_customer(r) for r in records], limit)

    def list_meters(
        self, ctx: TenantContext, cursor: str | None, limit: int, customer_id: str | None = None
    ) -> Page[Meter]:
        prefix = _METER_INDEX if customer_id is None else _customer_meter_index(customer_id)
        records = self._query_index(self._meter, ctx, prefix, cursor, limit)
        return _page([_meter(r) for r in records], limit)

    def _query_index(
        self, model: type[R], ctx: TenantContext, prefix: str, cursor: str | None, limit: int
    ) -> list[R]:
        """Up to limit + 1 listing items after `cursor` (the extra one tells if a page follows)."""
        start = None
        if cursor is not None:
            start = {"pk": {"S": ctx.index_pk()}, "sk": {"S": prefix + validate_id(cursor, "cursor")}}
        return list(
            model.query(
                ctx.index_pk(),
                model.sk.startswith(prefix),
                limit=limit + 1,
                page_size=limit + 1,
                last_evaluated_key=start,
            )
        )

    def put_tenant(self, tenant: Tenant) -> None:
        ctx = TenantContext(tenant.id)
        with self._tenant.batch_write() as batch:
            for pk, sk in ((ctx.tenant_pk(), META_SK), (TENANTS_PK, tenant_listing_sk(tenant.id))):
                batch.save(
                    self._tenant(
                        pk,
                        sk,
                        tenant=tenant.id,
                        name=tenant.name,
                        country=tenant.country,
                        timezone=tenant.timezone,
                    )
                )

    def list_tenants(self) -> list[Tenant]:
        return [
            Tenant(r.tenant, r.name, r.country, r.timezone)
            for r in self._tenant.query(TENANTS_PK, self._tenant.sk.startswith("T#"))
        ]

    def get_tenant(self, ctx: TenantContext) -> Tenant | None:
        try:
            record = self._tenant.get(ctx.tenant_pk(), META_SK)
        except self._tenant.DoesNotExist:
            return None
        return Tenant(record.tenant, record.name, record.country, record.timezone)

    def put_meter(self, ctx: TenantContext, meter: Meter) -> None:
        self.put_meters(ctx, [meter])

    def put_meters(self, ctx: TenantContext, meters: Sequence[Meter]) -> None:
        records = [  # all checked before any write
            self._record(ctx, meter, pk, sk)
            for meter in meters
            for pk, sk in (
                (ctx.meter_pk(meter.id), META_SK),
                (ctx.index_pk(), _METER_INDEX + meter.id),
                (ctx.index_pk(), _customer_meter_index(meter.customer_id) + meter.id),
            )
        ]
        # A meter moved to another customer leaves its old customer's listing.
        before = self.get_meters(ctx, [m.id for m in meters])
        moved = [
            (before[m.id].customer_id, m.id)
            for m in meters
            if m.id in before and before[m.id].customer_id != m.customer_id
        ]
        with self._meter.batch_write() as batch:
            for record in records:
                batch.save(record)
            for old_customer, meter_id in moved:
                batch.delete(self._meter(ctx.index_pk(), _customer_meter_index(old_customer) + meter_id))

    def _record(self, ctx: TenantContext, meter: Meter, pk: str, sk: str) -> MeterRecord:
        if meter.tenant_id != ctx.tenant_id:
            raise ValueError("a meter is registered only under its own tenant")
        return self._meter(
            pk,
            sk,
            tenant=ctx.tenant_id,
            meter=meter.id,
            model=meter.model,
            protocol=meter.protocol,
            device=meter.device_id,
            customer=meter.customer_id,
            multiplier=str(meter.multiplier),
            tariff=None if meter.tariff is None else json.dumps(meter.tariff.document(), sort_keys=True),
            nmi=meter.nmi,
            serial=meter.serial,
        )

    def get_meter(self, ctx: TenantContext, meter_id: str) -> Meter | None:
        try:
            return _meter(self._meter.get(ctx.meter_pk(meter_id), META_SK))
        except self._meter.DoesNotExist:
            return None

    def get_meters(self, ctx: TenantContext, meter_ids: Iterable[str]) -> dict[str, Meter]:
        keys = [(ctx.meter_pk(m), META_SK) for m in sorted(set(meter_ids))]
        return {record.meter: _meter(record) for record in self._meter.batch_get(keys)}


# Ledger entries outlive any redelivery: SQS keeps a message at most 14 days.
LEDGER_RETENTION = timedelta(days=21)


class DynamoLedger:
    def __init__(self, models: ReadingsModels) -> None:
        self._ledger = models.ledger

    def seen(self, ctx: TenantContext, entries: Sequence[LedgerEntry]) -> set[LedgerEntry]:
        wanted = {(ctx.device_pk(e.device_id), _ledger_sk(e.seq)): e for e in entries}
        return {
            wanted[(r.pk, r.sk)]
            for r in self._ledger.batch_get(list(wanted))
            if r.sha256 == wanted[(r.pk, r.sk)].sha256
        }

    def record(self, ctx: TenantContext, entries: Sequence[LedgerEntry]) -> None:
        expires_at = int((datetime.now(UTC) + LEDGER_RETENTION).timestamp())
        with self._ledger.batch_write() as batch:
            for e in entries:
                batch.save(
                    self._ledger(
                        ctx.device_pk(e.device_id), _ledger_sk(e.seq), sha256=e.sha256, expires_at=expires_at
                    )
                )


def _ledger_sk(seq: int) -> str:
    return f"SEQ#{seq:012d}"


def _customer(record: CustomerRecord) -> Customer:
    return Customer(
        record.tenant,
        record.customer,
        record.name,
        record.load_class,
        record.tax_id,
        None if record.reading_day is None else int(record.reading_day),
    )


def _page(items: list[L], limit: int) -> Page[L]:
    page = items[:limit]
    return Page(page, page[-1].id if len(items) > limit else None)


def _meter(record: MeterRecord) -> Meter:
    return Meter(
        record.tenant,
        record.meter,
        record.model,
        record.protocol,
        record.device,
        record.customer,
        Decimal(record.multiplier),
        None if record.tariff is None else MeterTariff.from_document(json.loads(record.tariff)),
        record.nmi,
        record.serial,
    )


class DynamoApiKeys:
    def __init__(self, model: type[ApiKeyRecord]) -> None:
        self._model = model

    def store(
        self,
        key_hash: str,
        tenant_id: str,
        name: str,
        customer_id: str | None = None,
        *,
        consent_id: str | None = None,
        scopes: frozenset[str] = frozenset({"read"}),
    ) -> None:
        self._model(
            f"KEY#{key_hash}",
            tenant=tenant_id,
            name=name,
            created_at=datetime.now(UTC).isoformat(),
            customer=customer_id,
            consent=consent_id,
            scopes=set(scopes),
        ).save()

    def grant_for(self, key_hash: str) -> ApiKeyGrant | None:
        try:
            record = self._model.get(f"KEY#{key_hash}", consistent_read=True)
        except self._model.DoesNotExist:
            return None
        if record.revoked_at is not None:
            return None
        scopes = frozenset(record.scopes or {"read"})
        return ApiKeyGrant(str(record.tenant), record.customer, record.consent, scopes)

    def revoke(self, key_hash: str) -> bool:
        try:
            record = self._model.get(f"KEY#{key_hash}", consistent_read=True)
        except self._model.DoesNotExist:
            return False
        if record.revoked_at is None:
            record.update(actions=[ApiKeyRecord.revoked_at.set(datetime.now(UTC).isoformat())])
        return True


class DynamoConsents:
    def __init__(self, model: type[ConsentRecord]) -> None:
        self._model = model

    @staticmethod
    def _pk(tenant_id: str, consent_id: str) -> str:
        return f"CONSENT#{tenant_id}#{consent_id}"

    def save(self, consent: Consent) -> None:
        self._model(
            self._pk(consent.tenant_id, consent.consent_id),
            tenant=consent.tenant_id,
            customer=consent.customer_id,
            third_party=consent.third_party_id,
            scopes=set(consent.scopes),
            expires_at=consent.expires_at.isoformat(),
            revoked_at=consent.revoked_at.isoformat() if consent.revoked_at else None,
        ).save()

    def get(self, tenant_id: str, consent_id: str) -> Consent | None:
        try:
            record = self._model.get(self._pk(tenant_id, consent_id), consistent_read=True)
        except self._model.DoesNotExist:
            return None
        return Consent(
            tenant_id=str(record.tenant),
            customer_id=str(record.customer),
            consent_id=consent_id,
            third_party_id=str(record.third_party),
            scopes=frozenset(record.scopes),
            expires_at=datetime.fromisoformat(str(record.expires_at)),
            revoked_at=datetime.fromisoformat(record.revoked_at) if record.revoked_at else None,
        )

    def revoke(self, tenant_id: str, consent_id: str, at: datetime) -> bool:
        try:
            record = self._model.get(self._pk(tenant_id, consent_id), consistent_read=True)
        except self._model.DoesNotExist:
            return False
        if record.revoked_at is None:
            record.update(actions=[ConsentRecord.revoked_at.set(at.isoformat())])
        return True
