"""The in-memory fakes and the DynamoDB/S3 adapters pass the same cases, so the fakes cannot drift."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.adapters.memory import (
    MemoryApiKeys,
    MemoryLedger,
    MemoryQuarantine,
    MemoryRawArchive,
    MemoryReadingStore,
    MemoryRegistry,
)
from hemera.domain.errors import MalformedFrame, QuarantineKeyOutsideTenant
from hemera.domain.readings import Channel, IntervalReading, Unit
from hemera.domain.registry import Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.ports import ArchivedEnvelope, LedgerEntry, QuarantineRecord
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


@pytest.fixture(params=["memory", "aws"])
def batch_ports(request, moto_cloud):
    """The ledger, raw archive and registry of either kind."""
    if request.param == "memory":
        return MemoryLedger(), MemoryRawArchive(), MemoryRegistry()
    ingest = ingest_ports(moto_cloud)
    return ingest.ledger, ingest.archive, ingest.registry


def test_the_ledger_knows_an_envelope_by_device_sequence_and_digest(batch_ports):
    ledger, *_ = batch_ports
    ctx, other = TenantContext("acme"), TenantContext("acme-corp")
    stored = LedgerEntry("rtu-1", 42, "a" * 64)
    ledger.record(ctx, [stored])
    assert ledger.seen(ctx, [stored, LedgerEntry("rtu-1", 43, "a" * 64)]) == {stored}
    # the same number with other bytes (the RTU's sequence restarted) is not a duplicate
    assert ledger.seen(ctx, [LedgerEntry("rtu-1", 42, "b" * 64)]) == set()
    # nor is the same device id under another tenant
    assert ledger.seen(other, [stored]) == set()


def test_the_archive_keeps_a_batch_byte_for_byte_and_only_under_its_tenant(batch_ports):
    _, archive, _ = batch_ports
    ctx = TenantContext("acme")
    envelopes = [
        ArchivedEnvelope(
            f"m{i}", "hemera/acme/rtu-1/up/telemetry", START, "rtu-1", "m-1", i, f"{i:064d}", payload
        )
        for i, payload in enumerate([b'{"v":1}', '{"name":"São Paulo"}'.encode()])
    ]
    key = archive.put_batch(ctx, "2026/11/20/22/batch.jsonl.gz", envelopes)
    assert key == "tenants/acme/raw/2026/11/20/22/batch.jsonl.gz"
    assert archive.read_batch(ctx, key) == envelopes
    with pytest.raises(ValueError):
        archive.read_batch(TenantContext("acme-corp"), key)


def test_meters_are_looked_up_together_within_the_tenant(batch_ports):
    *_, registry = batch_ports
    ctx = TenantContext("acme")
    for meter_id in ("m-1", "m-2"):
        registry.put_meter(ctx, Meter("acme", meter_id, "hx300", "modbus", "rtu-1", "c-1"))
    registry.put_meter(
        TenantContext("acme-corp"), Meter("acme-corp", "m-3", "hx300", "modbus", "rtu-9", "c-9")
    )
    assert set(registry.get_meters(ctx, ["m-1", "m-2", "m-3", "m-4"])) == {"m-1", "m-2"}


def test_a_batch_with_one_contradicting_series_writes_nothing(ports):
    store, *_ = ports
    ctx = TenantContext("acme")
    store.merge_intervals(ctx, readings("m-1"))
    half_hourly = [
        replace(r, length_minutes=30, start=START + timedelta(minutes=30 * i))
        for i, r in enumerate(readings("m-1")[:2])
    ]
    with pytest.raises(MalformedFrame):
        store.merge_intervals(ctx, readings("m-2") + half_hourly)
    # m-2 was valid, but the batch was checked whole before any write
    assert store.load_profile(ctx, "m-2", Channel.ACTIVE_IMPORT, START, START + timedelta(days=1)) == []


def test_a_concurrent_writer_between_read_and_write_is_merged_not_overwritten(moto_cloud):
    ingest = ingest_ports(moto_cloud)
    store, ctx = ingest.store, TenantContext("acme")
    first_half, second_half = readings()[:3], readings()[3:6]
    store.merge_intervals(ctx, first_half)
    announced = []

    def concurrent_writer(changes):
        # Another invocation writes the same day while this one is between its read and write
        if not announced:
            store.merge_intervals(ctx, readings()[6:8])
        announced.append(changes)

    stats = store.merge_intervals(ctx, second_half, concurrent_writer)
    day = store.load_profile(ctx, "m-1", Channel.ACTIVE_IMPORT, START, START + timedelta(hours=2))
    # Then nothing is lost: the first intervals, the other writer's and ours are all there
    assert [r.value for r in day] == [r.value for r in readings()[:8]] and stats.items_written == 1
    assert len(announced) == 2  # the retry announced the version it really wrote
    assert announced[-1][0].version == store.series_version(ctx, "m-1", Channel.ACTIVE_IMPORT, START.date())


def test_many_days_are_read_at_once_with_their_versions(ports):
    store, *_ = ports
    ctx = TenantContext("acme")
    store.merge_intervals(ctx, readings("m-1") + readings("m-2"))
    store.merge_intervals(ctx, readings("m-1", offset="1")[:1])
    day1, day2 = START.date(), START.date() + timedelta(days=1)
    found = store.read_series(
        ctx,
        [
            ("m-1", Channel.ACTIVE_IMPORT, day1),
            ("m-2", Channel.ACTIVE_IMPORT, day2),
            ("m-3", Channel.ACTIVE_IMPORT, day1),
        ],
    )
    assert set(found) == {("m-1", Channel.ACTIVE_IMPORT, day1), ("m-2", Channel.ACTIVE_IMPORT, day2)}
    m1 = found[("m-1", Channel.ACTIVE_IMPORT, day1)]
    assert m1.version == 2 and [r.value for r in m1.readings] == [
        r.value for r in readings("m-1", offset="1")[:1]
    ] + [r.value for r in readings("m-1")[1:8]]
    assert found[("m-2", Channel.ACTIVE_IMPORT, day2)].readings == readings("m-2")[8:]
