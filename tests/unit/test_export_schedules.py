"""When a tenant's export schedule is due, and for which period (in the tenant's time zone)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hemera.adapters.exports_memory import MemoryExportSchedules
from hemera.adapters.memory import MemoryRegistry
from hemera.services.exports import due_period, due_runs, register_export_schedules, tenant_schedules
from hemera.services.onboarding import register_tenant
from hemera.tenants import ExportSchedule, load_tenant_dir
from tests.conftest import TENANTS_DIR

SYDNEY = ZoneInfo("Australia/Sydney")


def schedule(**fields: object) -> ExportSchedule:
    return ExportSchedule.model_validate({"id": "s", "format": "csv", **fields})


@pytest.mark.parametrize(
    ("fields", "as_of", "period"),
    [
        # previous month, run on the 1st at 02:00: before it, the month before is the latest due
        ({}, datetime(2026, 11, 1, 1, 59, tzinfo=SYDNEY), (date(2026, 9, 1), date(2026, 9, 30))),
        ({}, datetime(2026, 11, 1, 2, 0, tzinfo=SYDNEY), (date(2026, 10, 1), date(2026, 10, 31))),
        ({}, datetime(2027, 1, 20, tzinfo=SYDNEY), (date(2026, 12, 1), date(2026, 12, 31))),
        ({"day_of_month": 5}, datetime(2026, 3, 4, 12, tzinfo=SYDNEY), (date(2026, 1, 1), date(2026, 1, 31))),
        # billing cycle read on the 15th: the 15th of the month before to the 14th
        (
            {"period": "billing_cycle", "day_of_month": 15},
            datetime(2026, 3, 15, 3, tzinfo=SYDNEY),
            (date(2026, 2, 15), date(2026, 3, 14)),
        ),
        (
            {"period": "billing_cycle", "day_of_month": 15},
            datetime(2026, 3, 14, 23, tzinfo=SYDNEY),
            (date(2026, 1, 15), date(2026, 2, 14)),
        ),
        # previous day, at 06:00
        (
            {"period": "previous_day", "at_hour": 6},
            datetime(2026, 11, 22, 7, tzinfo=SYDNEY),
            (date(2026, 11, 21),) * 2,
        ),
        (
            {"period": "previous_day", "at_hour": 6},
            datetime(2026, 11, 22, 5, tzinfo=SYDNEY),
            (date(2026, 11, 20),) * 2,
        ),
    ],
)
def test_the_latest_due_period(fields, as_of, period):
    assert due_period(schedule(**fields), SYDNEY, as_of) == period


def test_the_time_zone_of_the_tenant_decides_the_day():
    # 2026-10-31 15:30 UTC is already November 1st 02:30 in Sydney (UTC+11): October is due there
    as_of = datetime.fromisoformat("2026-10-31T15:30:00+00:00")
    assert due_period(schedule(), SYDNEY, as_of) == (date(2026, 10, 1), date(2026, 10, 31))
    assert due_period(schedule(), ZoneInfo("America/Sao_Paulo"), as_of) == (
        date(2026, 9, 1),
        date(2026, 9, 30),
    )


def test_a_schedule_names_its_formats_one_way():
    assert schedule().all_formats == ("csv",)
    assert ExportSchedule.model_validate({"id": "s", "formats": ["nem12", "csv", "nem12"]}).all_formats == (
        "nem12",
        "csv",
    )
    with pytest.raises(ValueError, match="either format or formats"):
        ExportSchedule.model_validate({"id": "s"})
    with pytest.raises(ValueError, match="either format or formats"):
        ExportSchedule.model_validate({"id": "s", "format": "csv", "formats": ["txt"]})


def test_onboarding_stores_every_tenants_schedules_for_the_due_exports_job():
    # Given the demo tenants onboarded into the registry and the schedule store
    tenants = load_tenant_dir(TENANTS_DIR)
    registry, store = MemoryRegistry(), MemoryExportSchedules()
    for tenant in tenants:
        register_tenant(registry, tenant)
        register_export_schedules(store, tenant)
    # When the job reads them
    found = tenant_schedules(registry, store)
    # Then each tenant's schedules come back as its file declares them
    assert found == {t.id: t.exports for t in tenants if t.exports}
    assert tenant_schedules(registry, MemoryExportSchedules()) == {}


def test_a_schedule_may_name_only_the_tenants_meters_and_customers(tmp_path):
    import yaml

    from hemera.tenants import InvalidTenantFile, load_tenant_file

    document = yaml.safe_load((TENANTS_DIR / "sul-energia.yaml").read_text())
    document["exports"].append(
        {"id": "odd", "format": "csv", "meters": ["cp-m-2001"], "customers": ["nobody"]}
    )
    file = tmp_path / "sul-energia.yaml"
    file.write_text(yaml.safe_dump(document))
    with pytest.raises(InvalidTenantFile) as info:
        load_tenant_file(file)
    index = len(document["exports"]) - 1
    assert (f"exports[{index}].meters", "unknown meter cp-m-2001") in info.value.problems
    assert (f"exports[{index}].customers", "unknown customer nobody") in info.value.problems


SCHEDULES = st.builds(
    lambda period, day, hour: schedule(period=period, day_of_month=day, at_hour=hour),
    st.sampled_from(["previous_month", "billing_cycle", "previous_day"]),
    st.integers(1, 28),
    st.integers(0, 23),
)
INSTANTS = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
ZONES = st.sampled_from(
    [SYDNEY, ZoneInfo("America/Sao_Paulo"), ZoneInfo("America/New_York"), ZoneInfo("UTC")]
)


@given(SCHEDULES, ZONES, INSTANTS, st.integers(0, 24 * 90))
def test_a_due_period_is_closed_and_never_goes_back_in_time(export_schedule, zone, as_of, later_hours):
    first, last = due_period(export_schedule, zone, as_of)
    # a whole, closed period: it ended before the local day the job runs on
    assert first <= last < as_of.astimezone(zone).date()
    assert (last - first).days < 31
    # and a later run never exports an earlier period (at-least-once runs stay idempotent)
    later_first, _ = due_period(export_schedule, zone, as_of + timedelta(hours=later_hours))
    assert later_first >= first


def test_a_billing_cycle_schedule_exports_each_meters_cycle_on_its_reading_day():
    # Given Coastal Power with a billing-cycle schedule: Bayside Cold Store read on the 10th (its
    # own reading day), the other two customers' meters on their tariffs' day 1
    (tenant,) = [t for t in load_tenant_dir(TENANTS_DIR) if t.id == "coastal-power"]
    customers = [
        c.model_copy(update={"reading_day": 10}) if c.id == "bayside-cold-store" else c
        for c in tenant.customers
    ]
    cycle = ExportSchedule.model_validate({"id": "cycles", "format": "csv", "period": "billing_cycle"})
    tenant = tenant.model_copy(update={"customers": customers, "exports": (cycle,)})
    registry = MemoryRegistry()
    register_tenant(registry, tenant)

    # When the due runs are asked for on 12 March 2026, 09:00 in Sydney
    runs = due_runs(registry, {tenant.id: (cycle,)}, datetime(2026, 3, 12, 9, tzinfo=SYDNEY))

    # Then one run per reading day, each with its meters and its own cycle (the day-10 cycle
    # closed on the 9th; the day-1 cycle is February)
    assert [(r.export_id, r.first, r.last, r.meter_ids) for r in runs] == [
        ("20260201-cycles", date(2026, 2, 1), date(2026, 2, 28), ("cp-m-2001", "cp-m-2003")),
        ("20260210-cycles", date(2026, 2, 10), date(2026, 3, 9), ("cp-m-2002",)),
    ]
