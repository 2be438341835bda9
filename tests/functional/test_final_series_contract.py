"""The in-memory final series and the DynamoDB adapter (on moto) pass the same cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from hemera import aws
from hemera.adapters.final_series_dynamodb import DynamoFinalSeries, final_series_model
from hemera.adapters.final_series_memory import MemoryFinalSeries
from hemera.domain.errors import VersionConflict
from hemera.domain.final_series import (
    ESPI_EDITED,
    ESPI_LINEAR,
    ESPI_VALIDATED,
    FinalDay,
    FinalInterval,
    FinalStatus,
    QualityFlag,
)
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext

ACME, ACME_CORP = TenantContext("acme"), TenantContext("acme-corp")
DAY = date(2026, 3, 8)  # a US DST day: 23 hours in America/New_York
ZONE = "America/New_York"
FIRST = datetime(2026, 3, 8, 5, tzinfo=UTC)  # local midnight (EST, -05:00)


def interval(n: int, **changes: object) -> FinalInterval:
    base = FinalInterval(
        start=FIRST + timedelta(minutes=15 * n),
        length_minutes=15,
        value=Decimal(f"{n}.125"),
        raw_value=Decimal(n * 1000 + 125),
        status=FinalStatus.ACTUAL,
        quality_flag=QualityFlag.ACTUAL,
        espi_quality=ESPI_VALIDATED,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def final_day(version: int = 1, meter: str = "m-1", **changes: object) -> FinalDay:
    intervals = [interval(n) for n in range(92)]  # 23 hours
    intervals[10] = interval(
        10,
        value=Decimal("9.5"),
        raw_value=None,
        status=FinalStatus.ESTIMATED,
        quality_flag=QualityFlag.SUBSTITUTE,
        espi_quality=ESPI_LINEAR,
        method_flag=17,
        reason_code=76,
        rule_id="est.linear",
        rule_version=2,
    )
    intervals[11] = interval(
        11,
        value=None,
        raw_value=None,
        status=FinalStatus.FAILED,
        quality_flag=QualityFlag.NULL,
        espi_quality=10,
        rule_id="val.gap",
        rule_version=1,
    )
    day = FinalDay(
        meter_id=meter,
        channel=Channel.ACTIVE_IMPORT,
        local_day=DAY,
        timezone=ZONE,
        interval_minutes=15,
        version=version,
        intervals=tuple(intervals),
        computed_at=datetime(2026, 3, 9, 1, 2, 3, tzinfo=UTC),
        source_versions=((date(2026, 3, 8), 3), (date(2026, 3, 9), 1)),
        cause="ingest",
        notes=("register check skipped: no registers",),
    )
    return replace(day, **changes)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "aws"])
def store(request, moto_cloud):
    if request.param == "memory":
        return MemoryFinalSeries()
    host = aws.endpoint_url(moto_cloud.aws, "dynamodb")
    return DynamoFinalSeries(final_series_model(moto_cloud.readings_table, moto_cloud.aws, host))


def test_a_stored_day_comes_back_with_every_interval_and_its_provenance(store):
    # Given a 23-hour DST day with an estimated and a failed interval
    day = final_day()
    # When it is stored and read back
    store.save(ACME, [day])
    (back,) = store.final_days(ACME, "m-1", Channel.ACTIVE_IMPORT, DAY, DAY)
    # Then it is the same day: values, raw values, flags, rules, versions of its sources
    assert back == day
    assert len(back.intervals) == 92
    assert back.intervals[10].method_flag == 17 and back.intervals[10].rule_id == "est.linear"
    assert back.intervals[11].value is None and back.intervals[11].quality_flag is QualityFlag.NULL


def test_every_version_stays_retrievable_and_the_current_one_is_listed(store):
    # Given a day stored at version 1, then edited into version 2
    store.save(ACME, [final_day(1)])
    edited = final_day(2, cause="edit", edited_by="user:otto")
    changed = list(edited.intervals)
    changed[10] = replace(
        changed[10], value=Decimal("7"), status=FinalStatus.EDITED, espi_quality=ESPI_EDITED, method_flag=None
    )
    edited = replace(edited, intervals=tuple(changed))
    store.save(ACME, [edited])
    # Then the listing holds version 2, and version 1 is still there as it was
    (current,) = store.final_days(ACME, "m-1", Channel.ACTIVE_IMPORT, DAY, DAY)
    assert current.version == 2 and current.intervals[10].value == Decimal("7")
    first = store.final_day_version(ACME, "m-1", Channel.ACTIVE_IMPORT, DAY, 1)
    assert first is not None and first.intervals[10].value == Decimal("9.5") and first.cause == "ingest"
    assert store.final_day_version(ACME, "m-1", Channel.ACTIVE_IMPORT, DAY, 2) == edited
    assert store.final_day_version(ACME, "m-1", Channel.ACTIVE_IMPORT, DAY, 3) is None


def test_a_version_that_does_not_follow_the_stored_one_is_a_conflict(store):
    store.save(ACME, [final_day(1)])
    with pytest.raises(VersionConflict):
        store.save(ACME, [final_day(1)])  # a concurrent writer that also computed version 1
    with pytest.raises(VersionConflict):
        store.save(ACME, [final_day(3)])
    with pytest.raises(VersionConflict):
        store.save(ACME, [final_day(2, meter="m-2")])  # nothing stored for m-2 yet
    (current,) = store.final_days(ACME, "m-1", Channel.ACTIVE_IMPORT, DAY, DAY)
    assert current.version == 1


def test_days_are_listed_in_order_within_the_range_and_per_channel(store):
    days = [final_day(local_day=DAY + timedelta(days=n)) for n in (2, 0, 1)]
    store.save(ACME, days)
    store.save(ACME, [final_day(channel=Channel.ACTIVE_EXPORT)])
    listed = store.final_days(ACME, "m-1", Channel.ACTIVE_IMPORT, DAY, DAY + timedelta(days=1))
    assert [d.local_day for d in listed] == [DAY, DAY + timedelta(days=1)]
    assert [d.channel for d in store.final_days(ACME, "m-1", Channel.ACTIVE_EXPORT, DAY, DAY)] == [
        Channel.ACTIVE_EXPORT
    ]


def test_another_tenant_never_sees_the_day(store):
    store.save(ACME, [final_day()])
    assert store.final_days(ACME_CORP, "m-1", Channel.ACTIVE_IMPORT, DAY, DAY) == []
    assert store.final_day_version(ACME_CORP, "m-1", Channel.ACTIVE_IMPORT, DAY, 1) is None
