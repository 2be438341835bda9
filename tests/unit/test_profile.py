"""The deterministic C&I load model the simulators serve and the cloud's tests compare against."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hemera_agent.simulators.profile import IntervalEnergy, interval_energy, load_fraction, meter_seed

SP = "America/Sao_Paulo"  # UTC-3, no daylight saving
SYDNEY = "Australia/Sydney"  # UTC+11 in January, UTC+10 in July
SEED = meter_seed("sul-energia", "sul-m-1001")
PEAK = 400.0
QUARTER_AT_PEAK_WH = PEAK * 1000 / 4


def at_local(zone: str, *args: int) -> datetime:
    """Interval start in UTC for a local wall-clock time."""
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def kw(energy: IntervalEnergy) -> float:
    return energy.active_import_wh * 4 / 1000


def test_same_inputs_give_the_same_energy() -> None:
    start = at_local(SP, 2026, 3, 2, 10, 0)
    first = interval_energy(SEED, "industry", PEAK, SP, start)
    assert interval_energy(SEED, "industry", PEAK, SP, start) == first


def test_the_model_is_stable_across_releases() -> None:
    # A change here changes every simulated meter: the cloud's recorded fixtures would drift.
    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 11:00 in Sao Paulo
    assert interval_energy("sul-energia/sul-m-1001", "industry", 820, SP, start) == IntervalEnergy(
        active_import_wh=185954, active_export_wh=0, reactive_import_varh=46604, reactive_export_varh=0
    )


def test_industry_runs_two_shifts_on_weekdays_a_short_saturday_and_base_load_on_sunday() -> None:
    monday_10 = kw(interval_energy(SEED, "industry", PEAK, SP, at_local(SP, 2026, 3, 2, 10, 0)))
    monday_20 = kw(interval_energy(SEED, "industry", PEAK, SP, at_local(SP, 2026, 3, 2, 20, 0)))
    monday_03 = kw(interval_energy(SEED, "industry", PEAK, SP, at_local(SP, 2026, 3, 2, 3, 0)))
    saturday_10 = kw(interval_energy(SEED, "industry", PEAK, SP, at_local(SP, 2026, 3, 7, 10, 0)))
    saturday_18 = kw(interval_energy(SEED, "industry", PEAK, SP, at_local(SP, 2026, 3, 7, 18, 0)))
    sunday_10 = kw(interval_energy(SEED, "industry", PEAK, SP, at_local(SP, 2026, 3, 8, 10, 0)))

    assert monday_10 > 0.85 * PEAK and monday_20 > 0.85 * PEAK  # both shifts
    assert monday_03 < 0.30 * PEAK  # night base load
    assert 0.50 * PEAK < saturday_10 < 0.65 * PEAK  # reduced Saturday shift
    assert saturday_18 < 0.30 * PEAK and sunday_10 < 0.30 * PEAK


def test_commerce_opens_10_to_22_every_day() -> None:
    sunday_15 = kw(interval_energy(SEED, "commerce", PEAK, SP, at_local(SP, 2026, 3, 8, 15, 0)))
    sunday_05 = kw(interval_energy(SEED, "commerce", PEAK, SP, at_local(SP, 2026, 3, 8, 5, 0)))
    wednesday_23 = kw(interval_energy(SEED, "commerce", PEAK, SP, at_local(SP, 2026, 3, 4, 23, 30)))
    assert sunday_15 > 0.8 * PEAK
    assert sunday_05 < 0.25 * PEAK and wednesday_23 < 0.25 * PEAK


def test_an_office_works_08_to_18_on_weekdays_only() -> None:
    tuesday_11 = kw(interval_energy(SEED, "office", PEAK, SP, at_local(SP, 2026, 3, 3, 11, 0)))
    tuesday_21 = kw(interval_energy(SEED, "office", PEAK, SP, at_local(SP, 2026, 3, 3, 21, 0)))
    saturday_11 = kw(interval_energy(SEED, "office", PEAK, SP, at_local(SP, 2026, 3, 7, 11, 0)))
    assert tuesday_11 > 0.75 * PEAK
    assert tuesday_21 < 0.2 * PEAK and saturday_11 < 0.2 * PEAK


def test_the_shape_follows_local_time_including_daylight_saving() -> None:
    # 09:00 in Sydney is 22:00 UTC in January (AEDT) and 23:00 UTC in July (AEST): open both times
    january = at_local(SYDNEY, 2026, 1, 13, 9, 0)
    july = at_local(SYDNEY, 2026, 7, 14, 9, 0)
    assert (january.hour, july.hour) == (22, 23)
    assert kw(interval_energy(SEED, "office", PEAK, SYDNEY, january)) > 0.75 * PEAK
    assert kw(interval_energy(SEED, "office", PEAK, SYDNEY, july)) > 0.75 * PEAK
    # The same instant is 19:00 of the day before in Sao Paulo: the office there is closed
    assert kw(interval_energy(SEED, "office", PEAK, SP, january)) < 0.2 * PEAK


def test_the_working_day_ramps_up_smoothly() -> None:
    # Given a weekday of an office, interval by interval
    start = at_local(SP, 2026, 3, 3, 0, 0)
    energies = [
        interval_energy(SEED, "office", PEAK, SP, start + i * timedelta(minutes=15)).active_import_wh
        for i in range(96)
    ]
    steps = [abs(b - a) for a, b in itertools.pairwise(energies)]
    # Then no quarter hour jumps by more than a third of the peak, yet the day spans a wide range
    assert max(steps) < QUARTER_AT_PEAK_WH / 3
    assert max(energies) > 4 * min(energies)
    # And the opening ramp (07:30-08:30 local) passes through intermediate levels, not a step
    for ramp in energies[31:33]:  # 07:45 and 08:00
        assert 0.25 * QUARTER_AT_PEAK_WH < ramp < 0.75 * QUARTER_AT_PEAK_WH


def test_noise_is_small_and_differs_between_meters() -> None:
    start = at_local(SP, 2026, 3, 3, 11, 0)
    a = interval_energy(meter_seed("sul-energia", "m-1"), "industry", PEAK, SP, start).active_import_wh
    b = interval_energy(meter_seed("sul-energia", "m-2"), "industry", PEAK, SP, start).active_import_wh
    other_tenant = interval_energy(
        meter_seed("coastal-power", "m-1"), "industry", PEAK, SP, start
    ).active_import_wh
    assert len({a, b, other_tenant}) == 3
    assert 0.92 < a / b < 1.09


WEEK = [datetime(2026, 3, 2, tzinfo=UTC) + i * timedelta(minutes=15) for i in range(7 * 96)]


@pytest.mark.parametrize("load_class", ["industry", "commerce", "office"])
def test_power_factor_stays_between_0_86_and_0_97_and_rises_with_load(load_class: str) -> None:
    points = []
    for start in WEEK:
        energy = interval_energy(SEED, load_class, PEAK, SP, start)  # type: ignore[arg-type]
        reactive = energy.reactive_import_varh + energy.reactive_export_varh
        assert 0 in (energy.reactive_import_varh, energy.reactive_export_varh)  # one quadrant at a time
        pf = energy.active_import_wh / math.hypot(energy.active_import_wh, reactive)
        assert 0.859 <= pf <= 0.971
        points.append((energy.active_import_wh, pf))
    light = [pf for wh, pf in points if wh < 0.3 * QUARTER_AT_PEAK_WH]
    heavy = [pf for wh, pf in points if wh > 0.75 * QUARTER_AT_PEAK_WH]
    assert sum(light) / len(light) < sum(heavy) / len(heavy)


def test_industrial_base_load_is_capacitive_and_production_inductive() -> None:
    night = interval_energy(SEED, "industry", PEAK, SP, at_local(SP, 2026, 3, 3, 2, 0))
    day = interval_energy(SEED, "industry", PEAK, SP, at_local(SP, 2026, 3, 3, 11, 0))
    assert night.reactive_export_varh > 0 and night.reactive_import_varh == 0
    assert day.reactive_import_varh > 0 and day.reactive_export_varh == 0
    assert night.active_export_wh == day.active_export_wh == 0  # no on-site generation


@given(
    load_class=st.sampled_from(["industry", "commerce", "office"]),
    peak_kw=st.floats(min_value=1, max_value=50_000),
    quarter=st.integers(min_value=0, max_value=5 * 365 * 96),
    zone=st.sampled_from([SP, SYDNEY, "Europe/Berlin", "UTC"]),
    minutes=st.sampled_from([5, 15, 30, 60]),
)
def test_energies_are_whole_non_negative_and_never_above_peak(
    load_class: str, peak_kw: float, quarter: int, zone: str, minutes: int
) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC) + quarter * timedelta(minutes=15)
    energy = interval_energy("t/m", load_class, peak_kw, zone, start, minutes)  # type: ignore[arg-type]
    values = (
        energy.active_import_wh,
        energy.active_export_wh,
        energy.reactive_import_varh,
        energy.reactive_export_varh,
    )
    assert all(isinstance(v, int) and v >= 0 for v in values)
    assert energy.active_import_wh <= round(peak_kw * 1000 * minutes / 60)


@given(
    load_class=st.sampled_from(["industry", "commerce", "office"]),
    moment=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
)
def test_the_shape_is_a_fraction_of_peak(load_class: str, moment: datetime) -> None:
    assert 0.0 <= load_fraction(load_class, moment) <= 1.0  # type: ignore[arg-type]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        interval_energy(SEED, "industry", PEAK, SP, datetime(2026, 3, 2))
    with pytest.raises(ValueError, match="interval length"):
        interval_energy(SEED, "industry", PEAK, SP, datetime(2026, 3, 2, tzinfo=UTC), minutes=7)
    with pytest.raises(ValueError, match="peak"):
        interval_energy(SEED, "industry", 0, SP, datetime(2026, 3, 2, tzinfo=UTC))
