"""The in-memory fakes and the DynamoDB/S3 adapters pass the same cases, so the fakes cannot drift."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.adapters.memory import MemoryApiKeys, MemoryQuarantine, MemoryReadingStore, MemoryRegistry
from hemera.domain.errors import QuarantineKeyOutsideTenant
from hemera.domain.readings import Channel, IntervalReading, Unit
from hemera.domain.registry import Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.ports import QuarantineRecord
from hemera.services.access import authenticate, issue_api_key
from hemera.wiring import ingest_ports, portal_ports

START = datetime(2026, 11, 20, 22, tzinfo=UTC)  # the 16 readings below cross midnight UTC


def readings(meter: str = "m-1", offset: str = "0") -> list[IntervalReading]:
    return [
        IntervalReading(
            meter,
            Channel.ACTIVE_IMPORT,
            START + timedelta(minutes=15 * i),
            15,
            Decimal(f"{i}.125") + Decimal(offset),
            Unit.KWH,
            raw_value=i * 1000 + 125,
        )
        for i in range(16)
    ]


@pytest.fixture(params=["memory", "aws"])
def ports(request, moto_cloud):
    if request.param == "memory":
        return MemoryReadingStore(), MemoryRegistry(), MemoryApiKeys(), MemoryQuarantine()
    ingest, portal = ingest_ports(moto_cloud), portal_ports(moto_cloud)
    return ingest.store, ingest.registry, portal.keys, ingest.quarantine


def test_merge_is_idempotent_and_counts_items_per_utc_day(ports):
    store, *_ = ports
    ctx = TenantContext("acme")
    first = store.merge_intervals(ctx, readings())
    again = store.merge_intervals(ctx, readings())
    assert (first.items_written, first.intervals_new) == (2, 16)
    assert (again.items_written, again.intervals_new, again.intervals_unchanged) == (0, 0, 16)


def test_a_correction_changes_one_value_and_the_range_query_is_exact(ports):
    store, *_ = ports
    ctx = TenantContext("acme")
    store.merge_intervals(ctx, readings())
    stats = store.merge_intervals(ctx, readings(offset="0.5")[3:4])
    assert stats.intervals_changed == 1
    got = store.load_profile(
        ctx, "m-1", Channel.ACTIVE_IMPORT, START + timedelta(minutes=30), START + timedelta(hours=3)
    )
    assert [r.value for r in got] == [
        Decimal("2.125"),
        Decimal("3.625"),
        *[Decimal(f"{i}.125") for i in range(4, 12)],
    ]
    assert got[0].raw_value == 2125


def test_tenants_do_not_see_each_others_series_or_meters(ports):
    store, registry, *_ = ports
    acme, corp = TenantContext("acme"), TenantContext("acme-corp")
    store.merge_intervals(acme, readings())
    registry.put_meter(acme, Meter("acme", "m-1", "hx300", "modbus", "rtu-1", "c-1"))
    assert store.load_profile(corp, "m-1", Channel.ACTIVE_IMPORT, START, START + timedelta(days=1)) == []
    assert registry.get_meter(corp, "m-1") is None
    assert registry.get_meter(acme, "m-1") == Meter("acme", "m-1", "hx300", "modbus", "rtu-1", "c-1")


def test_a_meter_cannot_be_registered_under_another_tenant(ports):
    _, registry, *_ = ports
    with pytest.raises(ValueError):
        registry.put_meter(TenantContext("acme"), Meter("other", "m-1", "hx300", "modbus", "rtu-1", "c-1"))


def test_tenant_records_round_trip(ports):
    _, registry, *_ = ports
    registry.put_tenant(Tenant("acme", "Acme", "BR", "America/Sao_Paulo"))
    assert registry.get_tenant(TenantContext("acme")).zone.key == "America/Sao_Paulo"
    assert registry.get_tenant(TenantContext("nobody")) is None


def test_api_keys_are_stored_as_hashes_and_resolve_to_their_tenant(ports):
    *_, keys, _ = ports
    key = issue_api_key(keys, "acme", "portal")
    assert authenticate(keys, key).tenant_id == "acme"
    stored = getattr(keys, "keys", None)
    if stored is not None:  # the fake exposes what it holds: the hash, never the key
        assert key not in stored


def test_quarantine_lists_only_the_tenants_records(ports):
    *_, quarantine = ports
    when = datetime(2026, 11, 20, tzinfo=UTC)
    for tenant, mid in (("acme", "a1"), ("acme-corp", "c1"), (None, "u1")):
        quarantine.put(QuarantineRecord(tenant, "malformed_envelope", "bad", None, mid, when, b"\x00\x01"))
    assert [(r.message_id, r.original) for r in quarantine.list("acme")] == [("a1", b"\x00\x01")]
    assert [r.message_id for r in quarantine.list(None)] == ["u1"]


def test_a_quarantined_record_is_read_back_by_its_key_and_removed(ports):
    *_, quarantine = ports
    when = datetime(2026, 11, 20, 5, tzinfo=UTC)
    key = quarantine.put(
        QuarantineRecord("acme", "unknown_meter", "m-9", "hemera/acme/rtu-1/up/t", "a1", when, b"{}")
    )
    assert key == "tenants/acme/quarantine/2026-11-20/a1.json"
    (listed,) = quarantine.list("acme")
    assert listed.key == key and quarantine.get("acme", key) == listed
    assert (listed.reason, listed.topic, listed.received_at, listed.original) == (
        "unknown_meter",
        "hemera/acme/rtu-1/up/t",
        when,
        b"{}",
    )
    quarantine.remove("acme", key)
    quarantine.remove("acme", key)  # already gone: not an error
    assert quarantine.get("acme", key) is None and list(quarantine.list("acme")) == []


def test_a_record_put_with_its_key_is_updated_in_place(ports):
    *_, quarantine = ports
    when = datetime(2026, 11, 20, tzinfo=UTC)
    key = quarantine.put(QuarantineRecord("acme", "unknown_meter", "old", None, "a1", when, b"x"))
    (record,) = quarantine.list("acme")
    quarantine.put(replace(record, reason="unknown_meter_model", detail="new"))
    assert [(r.key, r.reason, r.detail) for r in quarantine.list("acme")] == [
        (key, "unknown_meter_model", "new")
    ]


@pytest.mark.parametrize(
    ("tenant", "key"),
    [
        ("acme", "tenants/acme-corp/quarantine/2026-11-20/c1.json"),  # a tenant whose id extends acme's
        ("acme-corp", "tenants/acme/quarantine/2026-11-20/a1.json"),
        ("acme", "tenants/acme/quarantine/../../acme-corp/quarantine/2026-11-20/c1.json"),
        ("acme", "unattributed/quarantine/2026-11-20/u1.json"),
        (None, "tenants/acme/quarantine/2026-11-20/a1.json"),
    ],
)
def test_a_key_outside_the_tenant_is_refused(ports, tenant, key):
    *_, quarantine = ports
    when = datetime(2026, 11, 20, tzinfo=UTC)
    for owner, mid in (("acme", "a1"), ("acme-corp", "c1"), (None, "u1")):
        quarantine.put(QuarantineRecord(owner, "malformed_envelope", "bad", None, mid, when, b"\x00"))
    with pytest.raises(QuarantineKeyOutsideTenant):
        quarantine.get(tenant, key)
    with pytest.raises(QuarantineKeyOutsideTenant):
        quarantine.remove(tenant, key)
    assert len(list(quarantine.list("acme-corp"))) == 1 and len(list(quarantine.list("acme"))) == 1


def test_the_quarantine_names_the_tenants_that_have_records(ports):
    *_, quarantine = ports
    assert list(quarantine.tenants()) == []
    when = datetime(2026, 11, 20, tzinfo=UTC)
    for tenant, mid in (("acme-corp", "c1"), (None, "u1"), ("acme", "a1"), ("acme", "a2")):
        quarantine.put(QuarantineRecord(tenant, "malformed_envelope", "bad", None, mid, when, b"\x00"))
    assert list(quarantine.tenants()) == ["acme", "acme-corp", None]


def test_every_change_is_announced_before_it_is_written_and_only_changes(ports):
    store, *_ = ports
    ctx = TenantContext("acme")
    heard: list = []
    first = store.merge_intervals(ctx, readings(), heard.extend)
    again = store.merge_intervals(ctx, readings(), heard.extend)
    corrected = store.merge_intervals(ctx, readings(offset="0.5")[3:4], heard.extend)
    days = sorted({c.day.isoformat() for c in first.changes})
    assert days == ["2026-11-20", "2026-11-21"] and [c.version for c in first.changes] == [1, 1]
    assert again.changes == ()
    assert [(c.day.isoformat(), c.version) for c in corrected.changes] == [("2026-11-20", 2)]
    assert heard == [*first.changes, *corrected.changes]


def test_a_failed_announcement_writes_nothing(ports):
    store, *_ = ports
    ctx = TenantContext("acme")

    def unreachable(changes):
        raise RuntimeError("event bus unavailable")

    with pytest.raises(RuntimeError):
        store.merge_intervals(ctx, readings(), unreachable)
    assert store.load_profile(ctx, "m-1", Channel.ACTIVE_IMPORT, START, START + timedelta(days=2)) == []
