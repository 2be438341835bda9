"""Hypothesis properties of the VEE engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hemera.domain.final_series import FinalStatus
from hemera.domain.vee import VeeConfig
from hemera.domain.vee.calendar import day_bounds
from tests.unit.vee.builders import MONDAY, day_registers, flat, grid, history_day, inputs, readings, run

ENERGY = st.decimals(min_value=0, max_value=100, places=3)
PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZONES = st.sampled_from(["America/Sao_Paulo", "America/New_York", "Australia/Sydney", "Europe/Berlin", "UTC"])


@st.composite
def meter_days(draw: st.DrawFn) -> tuple[list, list]:
    """A day of values with random gaps (None), spikes and zero runs, plus like-day history."""
    n = len(grid())
    values: list = draw(st.lists(st.one_of(st.none(), ENERGY), min_size=n, max_size=n))
    history = [history_day(MONDAY - timedelta(weeks=1), draw(ENERGY))] if draw(st.booleans()) else []
    return values, history


@PROFILE
@given(
    before=ENERGY,
    after=ENERGY,
    length=st.integers(min_value=1, max_value=4),
    at=st.integers(min_value=1, max_value=80),
)
def test_linear_estimates_lie_between_the_endpoints(before, after, length, at):
    values = flat(10)
    values[at - 1] = before
    values[at : at + length] = [None] * length
    values[at + length] = after
    outcome = run(inputs(readings(values)), VeeConfig(disabled_rules=("spike", "zero_with_register_advance")))
    for interval in outcome.day.intervals[at : at + length]:
        assert interval.status is FinalStatus.ESTIMATED and interval.method_flag == 17
        assert min(before, after) <= interval.value <= max(before, after)


@PROFILE
@given(day=meter_days(), extra=st.decimals(min_value=0, max_value=500, places=3))
def test_a_reconciled_day_matches_the_register_delta(day, extra):
    # Given any day whose estimated intervals can be reconciled (history fills long gaps)
    values, _ = day
    history = [history_day(MONDAY - timedelta(weeks=1), 1)]
    actual_total = sum((Decimal(v) for v in values if v is not None), Decimal(0))
    registers = day_registers(1000, 1000 + actual_total + extra)
    outcome = run(
        inputs(readings(values), history=history, registers=registers),
        VeeConfig(disabled_rules=("spike", "zero_with_register_advance", "negative_value")),
    )
    # Then a day with any estimate totals exactly the register delta (3 decimals: the register,
    # the actual values and the estimates all carry at most 3)
    if any(i.status is FinalStatus.ESTIMATED for i in outcome.day.intervals):
        assert outcome.day.total() == actual_total + extra


@PROFILE
@given(day=meter_days())
def test_no_estimate_overwrites_an_actual_value(day):
    values, history = day
    sent = readings(values)
    outcome = run(inputs(sent, history=history, registers=day_registers(0, 2000)))
    flagged = {start for f in outcome.failures if f.rule_id != "interval_count" for start in f.starts}
    for reading, interval in zip(
        sorted(sent, key=lambda r: r.start),
        [i for i in outcome.day.intervals if i.raw_value is not None],
        strict=True,
    ):
        assert interval.start == reading.start and interval.raw_value == reading.value
        if interval.status is not FinalStatus.ACTUAL:
            assert interval.start in flagged  # only a value that failed a rule is ever replaced
        else:
            assert interval.value == reading.value


@PROFILE
@given(day=meter_days(), with_registers=st.booleans())
def test_running_again_on_its_own_output_is_idempotent(day, with_registers):
    values, history = day
    given_inputs = inputs(
        readings(values), history=history, registers=day_registers(0, 2000) if with_registers else ()
    )
    first = run(given_inputs)
    again = run(replace(given_inputs, previous=first.day))
    assert not again.changed and again.day is first.day
    assert again.failures == first.failures and again.missing == first.missing


@PROFILE
@given(
    zone=ZONES,
    day=st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31)),
    minutes=st.sampled_from([5, 15, 30, 60]),
    keep=st.floats(min_value=0, max_value=1),
)
def test_every_interval_of_the_day_is_present_exactly_once(zone, day, minutes, keep):
    starts = grid(day, zone, minutes)
    values = [10 if (i * 7919 % 100) / 100 < keep else None for i in range(len(starts))]
    outcome = run(
        inputs(readings(values, day=day, zone=zone, minutes=minutes), day=day, zone=zone, minutes=minutes)
    )
    got = [i.start for i in outcome.day.intervals]
    start, end = day_bounds(day, zone)
    assert got == sorted(set(got)) and len(got) == (end - start) // timedelta(minutes=minutes)
    assert got[0] == start and got[-1] + timedelta(minutes=minutes) == end
