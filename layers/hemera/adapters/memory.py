"""In-memory fakes of every port, with the same semantics as the AWS adapters.

The unit and functional suites run the services on these; the contract tests run the same cases
on both the fakes and the moto-backed adapters so the fakes cannot drift.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from hemera.adapters.s3 import (
    archive_document,
    checked_archive_key,
    checked_quarantine_key,
    envelopes_of_document,
    quarantine_key,
    quarantine_prefix,
)
from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading
from hemera.domain.registry import Customer, Meter, Tenant
from hemera.domain.series import (
    SeriesKey,
    Slot,
    check_series_length,
    group_by_series,
    merge_slots,
    reading_of,
)
from hemera.domain.tenancy import TenantContext, series_sk, validate_id
from hemera.ports import (
    Announce,
    ApiKeyGrant,
    ArchivedEnvelope,
    Consent,
    LedgerEntry,
    MergeStats,
    Page,
    QuarantineRecord,
    SeriesChange,
    SeriesDay,
)

_Listed = TypeVar("_Listed", Customer, Meter)


class MemoryReadingStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Slot]] = {}
        self.versions: dict[tuple[str, str], int] = {}
        self._minutes: dict[tuple[str, str], int] = {}

    def merge_intervals(
        self, ctx: TenantContext, readings: Sequence[IntervalReading], announce: Announce | None = None
    ) -> MergeStats:
        # Like the DynamoDB store: every series is checked before anything is written.
        groups = group_by_series(readings)
        for (meter_id, _channel, day), group in groups.items():
            key = _key(ctx, (meter_id, _channel, day))
            stored = self._minutes.get(key)
            check_series_length(group, stored, meter_id, day)
        totals = MergeStats()
        writes = []
        for series, group in groups.items():
            key = _key(ctx, series)
            merged = merge_slots(self.items.get(key, {}), group)
            if not merged.modified:
                totals += MergeStats(intervals_unchanged=merged.unchanged)
                continue
            meter_id, channel, day = series
            change = SeriesChange(meter_id, channel, day, self.versions.get(key, 0) + 1)
            writes.append((key, merged, change, group[0].length_minutes))
        if announce is not None and writes:
            announce([change for _, _, change, _ in writes])
        for key, merged, change, minutes in writes:
            self.items[key] = merged.slots
            self.versions[key] = change.version
            self._minutes[key] = minutes
            totals += MergeStats(1, merged.new, merged.changed, merged.unchanged, (change,))
        return totals

    def load_profile(
        self, ctx: TenantContext, meter_id: str, channel: Channel, start: datetime, end: datetime
    ) -> list[IntervalReading]:
        pk = ctx.meter_pk(meter_id)
        prefix = f"LP#{channel.value}#"
        readings = [
            reading_of(
                meter_id,
                channel,
                date.fromisoformat(sk[len(prefix) :]),
                slot_key,
                slot,
                self._minutes[(p, sk)],
                CHANNEL_UNITS[channel],
            )
            for (p, sk), slots in sorted(self.items.items())
            if p == pk and sk.startswith(prefix)
            for slot_key, slot in sorted(slots.items())
        ]
        return [r for r in readings if start <= r.start < end]

    def series_version(self, ctx: TenantContext, meter_id: str, channel: Channel, day: date) -> int | None:
        return self.versions.get((ctx.meter_pk(meter_id), series_sk(channel.value, day)))

    def read_series(self, ctx: TenantContext, keys: Sequence[SeriesKey]) -> dict[SeriesKey, SeriesDay]:
        found = {}
        for meter_id, channel, day in keys:
            key = _key(ctx, (meter_id, channel, day))
            if key in self.items:
                readings = [
                    reading_of(meter_id, channel, day, k, slot, self._minutes[key], CHANNEL_UNITS[channel])
                    for k, slot in sorted(self.items[key].items())
                ]
                found[(meter_id, channel, day)] = SeriesDay(self.versions[key], readings)
        return found


def _key(ctx: TenantContext, series: SeriesKey) -> tuple[str, str]:
    meter_id, channel, day = series
    return ctx.meter_pk(meter_id), series_sk(channel.value, day)


class MemoryRegistry:
    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.meters: dict[tuple[str, str], Meter] = {}
        self.customers: dict[tuple[str, str], Customer] = {}

    def put_customers(self, ctx: TenantContext, customers: Sequence[Customer]) -> None:
        for customer in customers:
            if customer.tenant_id != ctx.tenant_id:
                raise ValueError("a customer is registered only under its own tenant")
            ctx.customer_pk(customer.id)  # the same id check as the DynamoDB keys
        for customer in customers:
            self.customers[(ctx.tenant_id, customer.id)] = customer

    def get_customer(self, ctx: TenantContext, customer_id: str) -> Customer | None:
        return self.customers.get((ctx.tenant_id, customer_id))

    def list_customers(self, ctx: TenantContext, cursor: str | None, limit: int) -> Page[Customer]:
        return _page([c for (t, _), c in sorted(self.customers.items()) if t == ctx.tenant_id], cursor, limit)

    def list_meters(
        self, ctx: TenantContext, cursor: str | None, limit: int, customer_id: str | None = None
    ) -> Page[Meter]:
        meters = [
            m
            for (t, _), m in sorted(self.meters.items())
            if t == ctx.tenant_id and customer_id in (None, m.customer_id)
        ]
        return _page(meters, cursor, limit)

    def put_tenant(self, tenant: Tenant) -> None:
        self.tenants[tenant.id] = tenant

    def get_tenant(self, ctx: TenantContext) -> Tenant | None:
        return self.tenants.get(ctx.tenant_id)

    def list_tenants(self) -> list[Tenant]:
        return [self.tenants[t] for t in sorted(self.tenants)]

    def put_meter(self, ctx: TenantContext, meter: Meter) -> None:
        if meter.tenant_id != ctx.tenant_id:
            raise ValueError("a meter is registered only under its own tenant")
        self.meters[(ctx.tenant_id, meter.id)] = meter

    def put_meters(self, ctx: TenantContext, meters: Sequence[Meter]) -> None:
        for meter in meters:
            self.put_meter(ctx, meter)

    def get_meter(self, ctx: TenantContext, meter_id: str) -> Meter | None:
        return self.meters.get((ctx.tenant_id, meter_id))

    def get_meters(self, ctx: TenantContext, meter_ids: Iterable[str]) -> dict[str, Meter]:
        found = {m: self.meters.get((ctx.tenant_id, m)) for m in meter_ids}
        return {m: meter for m, meter in found.items() if meter is not None}


def _page(items: Sequence[_Listed], cursor: str | None, limit: int) -> Page[_Listed]:
    """`items` (in id order) after `cursor`, `limit` at most, like a DynamoDB Query page."""
    if cursor is not None:
        validate_id(cursor, "cursor")  # like the DynamoDB registry: a cursor is an id
    after = [i for i in items if cursor is None or i.id > cursor]
    page = after[:limit]
    return Page(page, page[-1].id if len(after) > limit else None)


class MemoryApiKeys:
    def __init__(self) -> None:
        # hash -> (grant, name, revoked)
        self.keys: dict[str, tuple[ApiKeyGrant, str, bool]] = {}

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
        self.keys[key_hash] = (ApiKeyGrant(tenant_id, customer_id, consent_id, scopes), name, False)

    def grant_for(self, key_hash: str) -> ApiKeyGrant | None:
        entry = self.keys.get(key_hash)
        return entry[0] if entry and not entry[2] else None

    def revoke(self, key_hash: str) -> bool:
        if key_hash not in self.keys:
            return False
        grant, name, _ = self.keys[key_hash]
        self.keys[key_hash] = (grant, name, True)
        return True


class MemoryConsents:
    def __init__(self) -> None:
        self.consents: dict[tuple[str, str], Consent] = {}

    def save(self, consent: Consent) -> None:
        self.consents[(consent.tenant_id, consent.consent_id)] = consent

    def get(self, tenant_id: str, consent_id: str) -> Consent | None:
        return self.consents.get((tenant_id, consent_id))

    def revoke(self, tenant_id: str, consent_id: str, at: datetime) -> bool:
        consent = self.consents.get((tenant_id, consent_id))
        if consent is None:
            return False
        if consent.revoked_at is None:
            self.consents[(tenant_id, consent_id)] = dataclasses.replace(consent, revoked_at=at)
        return True


class MemoryRawArchive:
    """Objects by key, encoded as the S3 adapter encodes them."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_batch(self, ctx: TenantContext, key: str, envelopes: Sequence[ArchivedEnvelope]) -> str:
        full_key = ctx.s3_prefix("raw") + key
        self.objects[full_key] = archive_document(envelopes)
        return full_key

    def read_batch(self, ctx: TenantContext, full_key: str) -> list[ArchivedEnvelope]:
        return envelopes_of_document(self.objects[checked_archive_key(ctx, full_key)])

    def envelopes(self) -> list[ArchivedEnvelope]:
        return [e for body in self.objects.values() for e in envelopes_of_document(body)]


class MemoryLedger:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str, int], str] = {}

    def seen(self, ctx: TenantContext, entries: Sequence[LedgerEntry]) -> set[LedgerEntry]:
        return {e for e in entries if self.entries.get((ctx.tenant_id, e.device_id, e.seq)) == e.sha256}

    def record(self, ctx: TenantContext, entries: Sequence[LedgerEntry]) -> None:
        for e in entries:
            self.entries[(ctx.tenant_id, e.device_id, e.seq)] = e.sha256


class MemoryQuarantine:
    """Records by key, with the S3 adapter's key scheme (a put to the same key overwrites)."""

    def __init__(self) -> None:
        self.records: dict[str, QuarantineRecord] = {}

    def put(self, record: QuarantineRecord) -> str:
        key = quarantine_key(record)
        self.records[key] = dataclasses.replace(record, key=key)
        return key

    def list(self, tenant_id: str | None) -> Iterator[QuarantineRecord]:
        prefix = quarantine_prefix(tenant_id)
        return iter([record for key, record in sorted(self.records.items()) if key.startswith(prefix)])

    def get(self, tenant_id: str | None, key: str) -> QuarantineRecord | None:
        return self.records.get(checked_quarantine_key(tenant_id, key))

    def remove(self, tenant_id: str | None, key: str) -> None:
        self.records.pop(checked_quarantine_key(tenant_id, key), None)

    def tenants(self) -> tuple[str | None, ...]:
        named = sorted({r.tenant_id for r in self.records.values() if r.tenant_id is not None})
        unattributed = any(r.tenant_id is None for r in self.records.values())
        return (*named, None) if unattributed else tuple(named)


class MemoryChangeEvents:
    def __init__(self) -> None:
        self.announced: list[tuple[str, SeriesChange]] = []

    def announce(self, ctx: TenantContext, changes: Sequence[SeriesChange]) -> None:
        self.announced.extend((ctx.tenant_id, change) for change in changes)


class MemoryPlatformEvents:
    """Platform events kept in order, for tests: (detail-type, detail) pairs."""

    def __init__(self) -> None:
        self.put_events: list[tuple[str, dict[str, Any]]] = []

    def put(self, detail_type: str, details: Sequence[dict[str, Any]]) -> None:
        if any("tenant" not in d for d in details):
            raise ValueError("every platform event names its tenant")
        self.put_events.extend((detail_type, dict(d)) for d in details)
