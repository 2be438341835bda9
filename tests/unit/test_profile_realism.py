"""Public holidays and instantaneous values of the C&I load model."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from hemera_agent.simulators.profile import (
    instantaneous,
    interval_energy,
    is_public_holiday,
    meter_seed,
    nominal_supply,
)

SP = "America/Sao_Paulo"
SYDNEY = "Australia/Sydney"
SEED = meter_seed("sul-energia", "sul-m-1001")
PEAK = 400.0


def at_local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def kw(wh: int) -> float:
    return wh * 4 / 1000


def test_a_brazilian_holiday_runs_like_a_sunday_only_for_a_brazilian_meter() -> None:
    # Given Tiradentes' Day, Tuesday 21 April 2026, 10:00 in Sao Paulo
    tiradentes = at_local(SP, 2026, 4, 21, 10, 0)
    assert is_public_holiday("BR", tiradentes.astimezone(ZoneInfo(SP)).date())

    on_holiday = interval_energy(SEED, "industry", PEAK, SP, tiradentes, country="BR")
    without_calendar = interval_energy(SEED, "industry", PEAK, SP, tiradentes)
    australian = interval_energy(SEED, "industry", PEAK, SP, tiradentes, country="AU")
    next_day = interval_energy(SEED, "industry", PEAK, SP, tiradentes + timedelta(days=1), country="BR")

    # Then the plant is at base load that day, and only for the country that has the holiday
    assert kw(on_holiday.active_import_wh) < 0.30 * PEAK
    assert kw(without_calendar.active_import_wh) > 0.85 * PEAK
    assert kw(australian.active_import_wh) > 0.85 * PEAK
    assert kw(next_day.active_import_wh) > 0.85 * PEAK


def test_an_office_is_closed_on_australia_day_in_local_time() -> None:
    # Australia Day 2026 is a Monday; 11:00 in Sydney is 00:00 UTC, still Sunday in UTC
    moment = at_local(SYDNEY, 2026, 1, 26, 11, 0)
    assert moment.weekday() == 0 and moment.hour == 0
    closed = interval_energy(SEED, "office", PEAK, SYDNEY, moment, country="AU")
    working = interval_energy(SEED, "office", PEAK, SYDNEY, moment + timedelta(days=1), country="AU")
    assert kw(closed.active_import_wh) < 0.2 * PEAK
    assert kw(working.active_import_wh) > 0.75 * PEAK


def test_a_normal_working_day_is_the_same_with_or_without_the_calendar() -> None:
    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert interval_energy(SEED, "industry", 820, SP, start, country="BR") == interval_energy(
        SEED, "industry", 820, SP, start
    )


def test_instantaneous_power_matches_the_interval_it_falls_in() -> None:
    # Given 10:07:30 local on a working Monday (inside the 10:00-10:15 interval)
    interval = at_local(SP, 2026, 3, 2, 10, 0)
    energy = interval_energy(SEED, "industry", PEAK, SP, interval, country="BR")
    values = instantaneous(
        SEED, "industry", PEAK, SP, interval + timedelta(minutes=7, seconds=30), country="BR"
    )

    mean_w = energy.active_import_wh * 4
    assert abs(values.active_power_w - mean_w) <= 0.021 * mean_w
    # And P, Q and PF agree with each other and with the interval's reactive energy
    assert math.isclose(
        values.power_factor,
        values.active_power_w / math.hypot(values.active_power_w, values.reactive_power_var),
        abs_tol=0.002,
    )
    interval_pf = energy.active_import_wh / math.hypot(energy.active_import_wh, energy.reactive_import_varh)
    assert math.isclose(values.power_factor, interval_pf, abs_tol=0.002)
    # And the three phase currents carry the apparent power at the measured voltages
    apparent = sum(v * i for v, i in zip(values.voltage_v, values.current_a, strict=True))
    assert math.isclose(apparent, math.hypot(values.active_power_w, values.reactive_power_var), rel_tol=0.002)


def test_capacitive_night_load_shows_negative_reactive_power() -> None:
    night = instantaneous(SEED, "industry", PEAK, SP, at_local(SP, 2026, 3, 3, 2, 5), country="BR")
    assert night.reactive_power_var < 0 < night.active_power_w


def test_nominal_voltage_and_frequency_follow_the_country() -> None:
    assert nominal_supply("BR") == (220.0, 60.0)
    assert nominal_supply("AU") == (230.0, 50.0)
    assert nominal_supply(None) == (230.0, 50.0)
    override = instantaneous(SEED, "office", PEAK, SP, at_local(SP, 2026, 3, 3, 9, 0), nominal_v=127.0)
    assert all(125 < v < 129 for v in override.voltage_v)


@given(
    load_class=st.sampled_from(["industry", "commerce", "office"]),
    second=st.integers(min_value=0, max_value=3 * 365 * 86400),
    country=st.sampled_from(["BR", "AU", None]),
)
def test_instantaneous_values_stay_physical_and_repeat(
    load_class: str, second: int, country: str | None
) -> None:
    moment = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=second)
    values = instantaneous("t/m", load_class, 500.0, SYDNEY, moment, country=country)  # type: ignore[arg-type]
    nominal, hertz = nominal_supply(country)
    assert all(abs(v - nominal) <= 0.0151 * nominal for v in values.voltage_v)
    assert all(i >= 0 for i in values.current_a)
    assert 0 <= values.active_power_w <= 500_000 * 1.021
    assert 0.85 <= values.power_factor <= 1.0
    assert abs(values.frequency_hz - hertz) <= 0.031
    assert instantaneous("t/m", load_class, 500.0, SYDNEY, moment, country=country) == values  # type: ignore[arg-type]
