"""In-memory fakes of every port, with the same semantics as the AWS adapters.

The unit and functional suites run the services on these; the contract tests run the same cases
on both the fakes and the moto-backed adapters so the fakes cannot drift.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import date, datetime

from hemera.adapters.s3 import checked_quarantine_key, quarantine_key, quarantine_prefix
from hemera.domain.errors import MalformedFrame
from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading
from hemera.domain.registry import Meter, Tenant
from hemera.domain.series import Slot, group_by_series, merge_slots, reading_of
from hemera.domain.tenancy import TenantContext, series_sk
from hemera.ports import Announce, MergeStats, QuarantineRecord, SeriesChange


class MemoryReadingStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Slot]] = {}
        self.versions: dict[tuple[str, str], int] = {}
        self._minutes: dict[tuple[str, str], int] = {}

    def merge_intervals(
        self, ctx: TenantContext, readings: Sequence[IntervalReading], announce: Announce | None = None
    ) -> MergeStats:
        totals = MergeStats()
        for (meter_id, channel, day), group in group_by_series(readings).items():
            key = (ctx.meter_pk(meter_id), series_sk(channel.value, day))
            if key in self._minutes and self._minutes[key] != group[0].length_minutes:
                raise MalformedFrame(
                    f"meter {meter_id} sent {group[0].length_minutes}-minute intervals for {day}, "
                    f"stored at {self._minutes[key]} minutes"
                )
            merged = merge_slots(self.items.get(key, {}), group)
            if not merged.modified:
                totals += MergeStats(intervals_unchanged=merged.unchanged)
                continue
            change = SeriesChange(meter_id, channel, day, self.versions.get(key, 0) + 1)
            if announce is not None:
                announce([change])
            self.items[key] = merged.slots
            self.versions[key] = change.version
            self._minutes[key] = group[0].length_minutes
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


class MemoryRegistry:
    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.meters: dict[tuple[str, str], Meter] = {}

    def put_tenant(self, tenant: Tenant) -> None:
        self.tenants[tenant.id] = tenant

    def get_tenant(self, ctx: TenantContext) -> Tenant | None:
        return self.tenants.get(ctx.tenant_id)

    def put_meter(self, ctx: TenantContext, meter: Meter) -> None:
        if meter.tenant_id != ctx.tenant_id:
            raise ValueError("a meter is registered only under its own tenant")
        self.meters[(ctx.tenant_id, meter.id)] = meter

    def get_meter(self, ctx: TenantContext, meter_id: str) -> Meter | None:
        return self.meters.get((ctx.tenant_id, meter_id))


class MemoryApiKeys:
    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, str]] = {}

    def store(self, key_hash: str, tenant_id: str, name: str) -> None:
        self.keys[key_hash] = (tenant_id, name)

    def tenant_for(self, key_hash: str) -> str | None:
        entry = self.keys.get(key_hash)
        return entry[0] if entry else None


class MemoryRawArchive:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, ctx: TenantContext, key: str, body: bytes) -> str:
        full_key = ctx.s3_prefix("raw") + key
        self.objects[full_key] = body
        return full_key


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
