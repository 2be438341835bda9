"""Curated rows, their partition and object keys, and the curate service on the in-memory fakes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.adapters.curated_memory import MemoryCuratedWriter
from hemera.adapters.memory import MemoryReadingStore
from hemera.adapters.parquet import CURATED_SCHEMA, ROW_FIELDS, parquet_bytes, rows_of_parquet
from hemera.definitions import CURATED_INTERVALS
from hemera.domain.curated import (
    CuratedSeries,
    batch_digest,
    curated_object_key,
    curated_rows,
    curated_value,
    partition_path,
)
from hemera.domain.errors import InvalidTenantId
from hemera.domain.readings import Channel, IntervalReading, Source, Unit, VeeStatus
from hemera.domain.tenancy import TenantContext
from hemera.services.curate import (
    ChangeNotLanded,
    CuratePorts,
    DayChanged,
    MalformedChangeEvent,
    changes_of_detail,
    curate_changes,
)

DAY = date(2026, 11, 20)
CURATED_AT = datetime(2026, 11, 21, 3, tzinfo=UTC)


def day_of(meter: str, values: list[str], channel: Channel = Channel.ACTIVE_IMPORT) -> list[IntervalReading]:
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    return [
        IntervalReading(
            meter, channel, start + timedelta(minutes=15 * i), 15, Decimal(v), Unit.KWH, raw_value=i
        )
        for i, v in enumerate(values)
    ]


# --- rows ----------------------------------------------------------------------------------------
def test_rows_carry_value_provenance_and_version_in_interval_order():
    late = IntervalReading(
        "m-1",
        Channel.ACTIVE_IMPORT,
        datetime(2026, 11, 20, 0, 15, tzinfo=UTC),
        15,
        Decimal("2.5"),
        Unit.KWH,
        raw_value=2500,
        source=Source.ESTIMATED,
        status=VeeStatus.ESTIMATED,
        quality_flag="E",
        meter_flags=1,
    )
    first = day_of("m-1", ["1.125"])[0]

    rows = curated_rows([late, first], data_version=3, curated_at=CURATED_AT)

    assert [r.interval_start.minute for r in rows] == [0, 15]
    assert rows[1].value == Decimal("2.500000") and str(rows[1].value) == "2.500000"
    assert (rows[1].source, rows[1].status, rows[1].quality, rows[1].meter_flags) == (
        "estimated",
        "estimated",
        "E",
        1,
    )
    assert (rows[1].raw_value, rows[1].unit, rows[1].channel) == (2500, "kWh", "active_import")
    assert {r.data_version for r in rows} == {3}


def test_values_keep_six_places_and_an_overflow_is_refused():
    assert curated_value(Decimal("0.0000005")) == Decimal("0.000000")  # banker's rounding
    assert curated_value(Decimal("0.0000015")) == Decimal("0.000002")
    assert curated_value(Decimal("999999999999.999999")) == Decimal("999999999999.999999")
    with pytest.raises(ValueError):
        curated_value(Decimal("1000000000000"))


# --- partitions and keys -----------------------------------------------------------------------
def test_partition_is_hive_style_tenant_then_utc_date():
    assert partition_path("sul-energia", DAY) == "tenant=sul-energia/date=2026-11-20/"
    assert (
        curated_object_key(CURATED_INTERVALS.prefix, "sul-energia", DAY, "abc")
        == "curated/intervals/tenant=sul-energia/date=2026-11-20/abc.parquet"
    )


@pytest.mark.parametrize("tenant", ["acme/..", "acme=x", "ACME", ""])
def test_a_tenant_id_that_could_leave_its_partition_is_refused(tenant):
    with pytest.raises(InvalidTenantId):
        partition_path(tenant, DAY)


def test_batch_digest_depends_on_content_only():
    a = CuratedSeries("m-1", Channel.ACTIVE_IMPORT, DAY, 1)
    b = CuratedSeries("m-2", Channel.ACTIVE_IMPORT, DAY, 4)
    assert batch_digest("t", DAY, [a, b]) == batch_digest("t", DAY, [b, a])
    assert batch_digest("t", DAY, [a, b]) != batch_digest(
        "t", DAY, [a, CuratedSeries("m-2", b.channel, DAY, 5)]
    )
    assert batch_digest("t", DAY, [a]) != batch_digest("u", DAY, [a])


# --- Parquet schema = Glue columns ----------------------------------------------------------------
def test_parquet_schema_and_row_fields_are_the_glue_columns():
    assert tuple(CURATED_SCHEMA.names) == CURATED_INTERVALS.column_names == ROW_FIELDS
    types = {f.name: str(f.type) for f in CURATED_SCHEMA}
    assert types["value"] == "decimal128(18, 6)"
    assert types["interval_start"] == "timestamp[ms, tz=UTC]"
    # Partition keys are in the object key, never inside the file.
    assert not {k.name for k in CURATED_INTERVALS.partition_keys} & set(CURATED_SCHEMA.names)


def test_rows_round_trip_through_parquet_exactly():
    rows = curated_rows(day_of("m-1", ["0.001", "12.5", "123456.789"]), 2, CURATED_AT)
    assert rows_of_parquet(parquet_bytes(rows)) == rows


# --- the service on fakes ------------------------------------------------------------------------
def _ports_with(*days: tuple[str, str, list[IntervalReading]]) -> tuple[CuratePorts, MemoryReadingStore]:
    store = MemoryReadingStore()
    for tenant, _meter, readings in days:
        store.merge_intervals(TenantContext(tenant), readings)
    return CuratePorts(store=store, curated=MemoryCuratedWriter()), store


def _change(tenant: str, meter: str, version: int, day: date = DAY) -> tuple[DayChanged, ...]:
    """One announcement listing one change."""
    return (DayChanged(tenant, meter, Channel.ACTIVE_IMPORT, day, version, correlation_id="c-1"),)


def test_one_object_per_tenant_day_with_every_changed_meter_of_the_batch():
    ports, _ = _ports_with(
        ("acme", "m-1", day_of("m-1", ["1"] * 96)),
        ("acme", "m-2", day_of("m-2", ["2"] * 96)),
        ("acme-corp", "m-1", day_of("m-1", ["3"] * 4)),
    )
    changes = {
        "r1": _change("acme", "m-1", 1),
        "r2": _change("acme", "m-2", 1),
        "r3": _change("acme-corp", "m-1", 1),
    }

    outcome = curate_changes(changes, ports, CURATED_AT)

    assert outcome.failures == {}
    objects = ports.curated.objects  # type: ignore[attr-defined]
    by_partition = {key.rsplit("/", 1)[0]: rows for key, rows in objects.items()}
    assert set(by_partition) == {
        "curated/intervals/tenant=acme/date=2026-11-20",
        "curated/intervals/tenant=acme-corp/date=2026-11-20",
    }
    acme = by_partition["curated/intervals/tenant=acme/date=2026-11-20"]
    assert len(acme) == 192 and sum(r.value for r in acme) == 96 * 3
    assert sum(r.value for r in by_partition["curated/intervals/tenant=acme-corp/date=2026-11-20"]) == 12
    assert outcome.rows == 196


def test_a_change_whose_write_has_not_landed_fails_alone():
    ports, _ = _ports_with(
        ("acme", "m-1", day_of("m-1", ["1"] * 96)), ("acme", "m-2", day_of("m-2", ["2"] * 96))
    )
    changes = {
        "ok": _change("acme", "m-1", 1),
        "early": _change("acme", "m-2", 2),
        "none": _change("acme", "m-9", 1),
    }

    outcome = curate_changes(changes, ports, CURATED_AT)

    assert set(outcome.failures) == {"early", "none"}
    assert all(isinstance(e, ChangeNotLanded) for e in outcome.failures.values())
    (rows,) = ports.curated.objects.values()  # type: ignore[attr-defined]
    assert {r.meter_id for r in rows} == {"m-1"}


def test_repeated_announcements_of_a_day_curate_it_once_at_the_stored_version():
    ports, store = _ports_with(("acme", "m-1", day_of("m-1", ["1"] * 96)))
    store.merge_intervals(TenantContext("acme"), day_of("m-1", ["5"] * 96))  # version 2
    changes = {"v1": _change("acme", "m-1", 1), "v2": _change("acme", "m-1", 2)}

    outcome = curate_changes(changes, ports, CURATED_AT)

    (rows,) = ports.curated.objects.values()  # type: ignore[attr-defined]
    assert outcome.failures == {} and len(rows) == 96
    assert {(r.value, r.data_version) for r in rows} == {(Decimal("5.000000"), 2)}


def test_the_same_batch_again_writes_the_same_object():
    ports, _ = _ports_with(("acme", "m-1", day_of("m-1", ["1"] * 96)))
    first = curate_changes({"r": _change("acme", "m-1", 1)}, ports, CURATED_AT)
    again = curate_changes(
        {"r-redelivered": _change("acme", "m-1", 1)}, ports, CURATED_AT + timedelta(hours=1)
    )
    assert [o.key for o in first.objects] == [o.key for o in again.objects]
    assert len(ports.curated.objects) == 1  # type: ignore[attr-defined]


class _FailingWriter:
    def write(self, *_args: object) -> str:
        raise ConnectionError("S3 is down")


def test_a_failed_write_fails_every_record_of_its_tenant_day():
    _unused, store = _ports_with(
        ("acme", "m-1", day_of("m-1", ["1"] * 96)), ("acme", "m-2", day_of("m-2", ["1"] * 96))
    )
    failing = CuratePorts(store=store, curated=_FailingWriter())
    outcome = curate_changes(
        {"a": _change("acme", "m-1", 1), "b": _change("acme", "m-2", 1)}, failing, CURATED_AT
    )
    assert set(outcome.failures) == {"a", "b"} and outcome.objects == ()


def _detail(**change: object) -> dict[str, object]:
    good = {"meter": "m-1", "channel": "active_import", "day": "2026-11-20", "version": 1}
    return {"tenant": "acme", "correlation_id": "msg-1", "changes": [{**good, **change}]}


@pytest.mark.parametrize(
    "detail",
    [
        {},
        {"tenant": "acme", "changes": []},
        {"tenant": "ACME", "changes": _detail()["changes"]},
        {"tenant": "acme", "changes": "m-1"},
        _detail(version="1"),
        _detail(version=0),
        _detail(version=True),
        _detail(channel="volts"),
        _detail(day="20/11/2026"),
        _detail(meter="m/1"),
    ],
)
def test_a_malformed_announcement_is_refused(detail):
    with pytest.raises(MalformedChangeEvent):
        changes_of_detail(detail)


def test_an_announcement_lists_every_change_of_its_tenant():
    detail = _detail(channel="reactive_import", version=7)
    second = {"meter": "m-2", "channel": "active_import", "day": "2026-11-21", "version": 1}
    detail["changes"] = [*detail["changes"], second]  # type: ignore[misc]
    assert changes_of_detail(detail) == (
        DayChanged("acme", "m-1", Channel.REACTIVE_IMPORT, DAY, 7, "msg-1"),
        DayChanged("acme", "m-2", Channel.ACTIVE_IMPORT, date(2026, 11, 21), 1, "msg-1"),
    )


def test_a_record_listing_a_landed_and_an_early_day_fails_and_the_landed_day_is_still_curated():
    ports, _ = _ports_with(("acme", "m-1", day_of("m-1", ["1"] * 96)))
    both = (*_change("acme", "m-1", 1), *_change("acme", "m-2", 1))
    outcome = curate_changes({"r": both}, ports, CURATED_AT)
    assert set(outcome.failures) == {"r"}
    (rows,) = ports.curated.objects.values()  # type: ignore[attr-defined]
    assert {r.meter_id for r in rows} == {"m-1"}
