"""Time-of-use calendars, billing cycles and the tariff's rules (REN 414/1000 posts, the
capacitive window inside 23:30-06:30)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hemera.domain.billing.cycle import billing_cycle, parse_period
from hemera.domain.billing.tariff import BillingRules, MeterTariff
from hemera.domain.billing.tou import (
    FORA_PONTA,
    PONTA,
    PostWindow,
    TouCalendar,
    aneel_ponta_holidays,
    brazil_group_a,
    easter_sunday,
    is_business_day,
    post_of,
)
from tests.unit.billing.builders import SAO_PAULO, azul_tariff

CALENDAR = brazil_group_a("America/Sao_Paulo", time(18), 3)


@pytest.mark.parametrize(
    ("local", "post"),
    [
        ("2026-11-19T17:45", FORA_PONTA),  # Thursday, before ponta
        ("2026-11-19T18:00", PONTA),
        ("2026-11-19T20:45", PONTA),
        ("2026-11-19T21:00", FORA_PONTA),
        ("2026-11-20T19:00", FORA_PONTA),  # Consciencia Negra, national holiday
        ("2026-11-02T19:00", FORA_PONTA),  # Finados
        ("2026-11-21T19:00", FORA_PONTA),  # Saturday
        ("2026-11-22T19:00", FORA_PONTA),  # Sunday
        ("2026-11-23T19:00", PONTA),  # Monday
    ],
)
def test_ponta_is_three_hours_on_business_days_only(local, post):
    assert post_of(datetime.fromisoformat(local).replace(tzinfo=SAO_PAULO), CALENDAR) == post


def test_post_of_reads_a_utc_start_in_the_tenants_zone():
    """21:00 UTC is 18:00 in Sao Paulo: ponta on a Thursday."""
    assert post_of(datetime(2026, 11, 19, 21, tzinfo=UTC), CALENDAR) == PONTA
    with pytest.raises(ValueError, match="tz-aware"):
        post_of(datetime(2026, 11, 19, 21), CALENDAR)


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2024, date(2024, 3, 31)),
        (2026, date(2026, 4, 5)),
        (2028, date(2028, 4, 16)),
        (2285, date(2285, 3, 22)),
    ],
)
def test_easter_sunday_of_known_years(year, easter):
    """Published Easter dates, 2285 the earliest possible (22 March)."""
    assert easter_sunday(year) == easter


def test_brazilian_ponta_holidays_are_anels_list_every_year():
    """REN 1.000 Art. 2 XXXVIII a): the fixed days plus Carnival Tuesday, Good Friday and Corpus
    Christi, computed from Easter for any year (no per-year list for a tariff to keep)."""
    assert sorted(aneel_ponta_holidays(2028)) == [
        date(2028, 1, 1),
        date(2028, 2, 29),  # Carnival Tuesday: Easter 16 April - 47 days
        date(2028, 4, 14),  # Good Friday
        date(2028, 4, 21),
        date(2028, 5, 1),
        date(2028, 6, 15),  # Corpus Christi: Easter + 60 days
        date(2028, 9, 7),
        date(2028, 10, 12),
        date(2028, 11, 2),
        date(2028, 11, 15),
        date(2028, 11, 20),
        date(2028, 12, 25),
    ]
    assert date(2023, 11, 20) not in aneel_ponta_holidays(2023)  # a national holiday from 2024
    carnival = datetime(2026, 2, 17, 19, tzinfo=SAO_PAULO)  # a Tuesday, 19:00
    assert not is_business_day(carnival.date(), CALENDAR)
    assert post_of(carnival, CALENDAR) == FORA_PONTA


def test_no_state_holiday_exempts_brazilian_ponta():
    with pytest.raises(ValueError, match="ANEEL"):
        brazil_group_a(subdivision="RS")


def test_a_calendar_with_shoulder_and_peak_windows():
    """An Australian-style calendar: peak 14-20h and shoulder 07-14h on business days."""
    calendar = TouCalendar(
        timezone="Australia/Sydney",
        windows=(PostWindow("peak", time(14), 6), PostWindow("shoulder", time(7), 7)),
        default_post="off_peak",
        holiday_country="AU",
        holiday_subdivision="NSW",
    )
    sydney = calendar.zone
    assert calendar.posts == ("peak", "shoulder", "off_peak")
    assert post_of(datetime(2026, 11, 19, 8, tzinfo=sydney), calendar) == "shoulder"
    assert post_of(datetime(2026, 11, 19, 15, tzinfo=sydney), calendar) == "peak"
    assert post_of(datetime(2026, 12, 25, 15, tzinfo=sydney), calendar) == "off_peak"


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ((PostWindow("a", time(14), 6), PostWindow("b", time(18), 2)), "overlap"),
        ((PostWindow(FORA_PONTA, time(14), 2),), "default post"),
    ],
)
def test_inconsistent_calendars_are_refused(windows, message):
    with pytest.raises(ValueError, match=message):
        TouCalendar("America/Sao_Paulo", windows)


def test_a_window_ends_by_midnight():
    with pytest.raises(ValueError, match="midnight"):
        PostWindow(PONTA, time(22), 3)


@pytest.mark.parametrize(
    ("period", "reading_day", "first", "last"),
    [
        ("2026-11", 1, date(2026, 11, 1), date(2026, 11, 30)),
        ("2026-02", 1, date(2026, 2, 1), date(2026, 2, 28)),
        ("2026-11", 15, date(2026, 10, 15), date(2026, 11, 14)),
        ("2027-01", 15, date(2026, 12, 15), date(2027, 1, 14)),
        ("2026-03", 28, date(2026, 2, 28), date(2026, 3, 27)),
    ],
)
def test_the_cycle_of_a_period_is_the_one_its_reading_day_closes(period, reading_day, first, last):
    cycle = billing_cycle(period, reading_day, "America/Sao_Paulo")
    assert (cycle.first, cycle.last) == (first, last)
    assert cycle.start == datetime(first.year, first.month, first.day, 3, tzinfo=UTC)


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "26-11", "2026-11-01", ""])
def test_a_period_is_yyyy_mm(period):
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_period(period)


@pytest.mark.parametrize(
    ("start", "hours"),
    [(time(23, 30), 6), (time(0), 6), (time(0, 30), 6), (time(1), 5)],
)
def test_capacitive_windows_inside_2330_0630_are_accepted(start, hours):
    rules = BillingRules(capacitive_start=start, capacitive_hours=hours)
    counted = [h for h in range(24) if rules.is_capacitive_hour(time(h))]
    assert len(counted) == hours


@pytest.mark.parametrize(("start", "hours"), [(time(1), 6), (time(23), 6), (time(22), 2), (time(0), 8)])
def test_capacitive_windows_outside_2330_0630_are_refused(start, hours):
    with pytest.raises(ValueError, match="23:30-06:30"):
        BillingRules(capacitive_start=start, capacitive_hours=hours)


def test_a_half_hour_window_counts_the_hours_whose_middle_it_holds():
    """23:30-05:30 holds the hours 23h, 0h … 4h (their middles 23:30 … 04:30), not 5h."""
    rules = BillingRules(capacitive_start=time(23, 30))
    assert [h for h in range(24) if rules.is_capacitive_hour(time(h))] == [0, 1, 2, 3, 4, 23]


def test_a_meter_tariff_survives_its_stored_form():
    tariff = azul_tariff(reading_day=15)
    tariff = MeterTariff(
        tariff.tariff_id,
        tariff.name,
        brazil_group_a(extra_holidays=frozenset({date(2026, 3, 19)})),
        BillingRules(capacitive_start=time(0, 30), pf_reference=Decimal("0.92")),
        15,
        tariff.contracted_demand_kw,
    )
    assert MeterTariff.from_document(tariff.document()) == tariff


@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)))
def test_every_instant_has_exactly_one_post_and_ponta_only_on_business_days(naive):
    local = naive.replace(tzinfo=SAO_PAULO)
    post = post_of(local, CALENDAR)
    assert post in CALENDAR.posts
    if post == PONTA:
        assert is_business_day(local.date(), CALENDAR) and 18 <= local.hour < 21
