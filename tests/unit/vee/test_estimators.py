"""The estimation ladder with hand-computed values, edits, late data and versions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hemera.domain.final_series import (
    ESPI_EDITED,
    ESPI_LINEAR,
    ESPI_REFERENCE_DAY,
    FinalStatus,
    QualityFlag,
)
from hemera.domain.vee import IntervalEdit, VeeConfig
from hemera.domain.vee import catalog as c
from tests.unit.vee.builders import (
    MONDAY,
    day_registers,
    flat,
    grid,
    history_day,
    inputs,
    readings,
    rerun,
    run,
)

TUESDAY = date(2026, 3, 17)
G = grid()


def _gap(values: list, start: int, length: int) -> list:
    values = list(values)
    values[start : start + length] = [None] * length
    return values


def test_linear_interpolation_between_the_gaps_neighbours():
    # Given 10 before and 14 after a 45-minute gap
    values = _gap(flat(10), 40, 3)
    values[43] = 14
    outcome = run(inputs(readings(values)), VeeConfig(disabled_rules=("spike",)))
    # Then the three estimates step evenly: 11, 12, 13 (method 17, ESPI 9, quality S)
    gap = outcome.day.intervals[40:43]
    assert [i.value for i in gap] == [Decimal(11), Decimal(12), Decimal(13)]
    assert {(i.method_flag, i.espi_quality, i.quality_flag, i.rule_id) for i in gap} == {
        (17, ESPI_LINEAR, QualityFlag.SUBSTITUTE, c.LINEAR)
    }
    # And the next actual interval keeps its own value (the gap's energy is not moved into it)
    assert outcome.day.intervals[43].value == Decimal(14) and outcome.day.intervals[43].is_actual


def test_linear_rounds_to_the_configured_decimals():
    values = _gap(flat(10), 40, 2)
    values[42] = 11
    outcome = run(inputs(readings(values)))
    assert [i.value for i in outcome.day.intervals[40:42]] == [Decimal("10.333"), Decimal("10.667")]


def test_a_gap_longer_than_an_hour_is_not_interpolated():
    # Given a 75-minute gap and no history: nothing on the ladder can fill it
    outcome = run(inputs(readings(_gap(flat(10), 40, 5))))
    gap = outcome.day.intervals[40:45]
    assert {(i.value, i.status, i.quality_flag) for i in gap} == {
        (None, FinalStatus.FAILED, QualityFlag.NULL)
    }
    # A tenant allowing 90-minute interpolation gets estimates
    wider = run(inputs(readings(_gap(flat(10), 40, 5))), VeeConfig(linear_max_gap_minutes=90))
    assert {i.value for i in wider.day.intervals[40:45]} == {Decimal(10)}


def test_a_gap_at_midnight_interpolates_from_yesterdays_last_interval():
    yesterday = history_day(MONDAY - timedelta(days=1), 6)
    values = _gap(flat(10), 0, 1)
    outcome = run(inputs(readings(values), history=[yesterday]))
    assert outcome.day.intervals[0].value == Decimal(8)  # (6 + 10) / 2


def test_like_day_takes_the_nearest_like_day():
    # Given a Tuesday with a 2-hour gap; history: last Thursday (5 days back, 7 kWh) and last
    # Tuesday (7 days back, 9 kWh): Thursday is a like day of Tuesday and nearer
    history = [history_day(TUESDAY - timedelta(days=5), 7), history_day(TUESDAY - timedelta(days=7), 9)]
    values = _gap(flat(10, day=TUESDAY), 40, 8)
    outcome = run(inputs(readings(values, day=TUESDAY), day=TUESDAY, history=history))
    gap = outcome.day.intervals[40:48]
    assert {(i.value, i.method_flag, i.espi_quality, i.rule_id) for i in gap} == {
        (Decimal(7), 14, ESPI_REFERENCE_DAY, c.LIKE_DAY)
    }


def test_like_day_skips_outage_days_and_days_that_are_not_alike():
    # Given a Monday: the Tuesday before is not a like day, last Monday had an outage (reason 79),
    # the Monday before that is valid
    history = [
        history_day(MONDAY - timedelta(days=6), 1),
        history_day(MONDAY - timedelta(days=7), 2, reason=79),
        history_day(MONDAY - timedelta(days=14), 3),
    ]
    outcome = run(inputs(readings(_gap(flat(10), 40, 8)), history=history))
    assert outcome.day.intervals[40].value == Decimal(3)


def test_like_day_uses_only_actual_values_of_the_like_day():
    # Given last Monday's slot was itself an estimate: the Monday before is used for it
    estimated = history_day(MONDAY - timedelta(days=7), 2, status=FinalStatus.ESTIMATED)
    actual = history_day(MONDAY - timedelta(days=14), 3)
    outcome = run(inputs(readings(_gap(flat(10), 40, 8)), history=[estimated, actual]))
    assert outcome.day.intervals[40].value == Decimal(3)


def test_a_holiday_is_estimated_from_a_sunday():
    # Given Wednesday 2026-03-18 is a holiday; history: the Sunday before (4 kWh) and Tuesday (9)
    holiday = date(2026, 3, 18)
    history = [history_day(holiday - timedelta(days=1), 9), history_day(holiday - timedelta(days=3), 4)]
    outcome = run(
        inputs(
            readings(_gap(flat(5, day=holiday), 40, 8), day=holiday),
            day=holiday,
            history=history,
            holidays=frozenset({holiday}),
        )
    )
    assert outcome.day.intervals[40].value == Decimal(4)


def test_average_like_day_over_the_last_valid_like_days():
    # Given like_day beyond reach (max age 3 days) and five earlier Mondays: the last four
    # hold 8, 10, 12, 14 at the gap, the fifth 100
    history = [
        history_day(MONDAY - timedelta(weeks=w), v) for w, v in enumerate((8, 10, 12, 14, 100), start=1)
    ]
    config = VeeConfig(like_day_max_age_days=3)
    outcome = run(inputs(readings(_gap(flat(10), 40, 8)), history=history), config)
    gap = outcome.day.intervals[40:48]
    # Then the mean of the last four: (8 + 10 + 12 + 14) / 4 = 11, method 15
    assert {(i.value, i.method_flag, i.rule_id) for i in gap} == {(Decimal(11), 15, c.AVERAGE_LIKE_DAY)}


def test_average_like_day_needs_the_minimum_number_of_days():
    history = [history_day(MONDAY - timedelta(weeks=5), 8)]
    config = VeeConfig(like_day_max_age_days=3)
    outcome = run(inputs(readings(_gap(flat(10), 40, 8)), history=history), config)
    assert outcome.day.intervals[40].value is None


def test_previous_year_same_weekday():
    # Given only last year's data: 52 weeks back (a Monday, 6 kWh) and 51 weeks back (9 kWh)
    history = [history_day(MONDAY - timedelta(weeks=52), 6), history_day(MONDAY - timedelta(weeks=51), 9)]
    config = VeeConfig(average_like_day_window_days=56)
    outcome = run(inputs(readings(_gap(flat(10), 40, 8)), history=history), config)
    gap = outcome.day.intervals[40:48]
    assert {(i.value, i.method_flag, i.rule_id) for i in gap} == {(Decimal(6), 23, c.PREVIOUS_YEAR)}


def test_the_ladder_order_is_configurable():
    # Given like-day data AND a gap linear could fill: with like_day first, like day wins
    history = [history_day(MONDAY - timedelta(weeks=1), 7)]
    values = _gap(flat(10), 40, 2)
    default = run(inputs(readings(values), history=history))
    like_first = run(
        inputs(readings(values), history=history), VeeConfig(estimation_order=("like_day", "linear"))
    )
    assert default.day.intervals[40].value == Decimal(10)
    assert like_first.day.intervals[40].value == Decimal(7)


def test_a_gap_longer_than_the_estimation_limit_stays_missing():
    history = [history_day(MONDAY - timedelta(weeks=1), 7)]
    config = VeeConfig(max_estimated_gap_intervals=4)
    outcome = run(inputs(readings(_gap(flat(10), 40, 8)), history=history), config)
    assert outcome.day.intervals[40].value is None


def test_estimates_are_scaled_to_the_register_delta():
    # Given a 2-hour gap, like day 10 kWh each, actual 88 x 10 = 880 and a register delta of 1000
    history = [history_day(MONDAY - timedelta(weeks=1), 10)]
    outcome = run(
        inputs(readings(_gap(flat(10), 40, 8)), history=history, registers=day_registers(5000, 6000))
    )
    # Then the 8 estimates share the 120 kWh the register says: 15 each (method 24)
    gap = outcome.day.intervals[40:48]
    assert {(i.value, i.method_flag, i.rule_id, i.reason_code) for i in gap} == {
        (Decimal(15), 24, c.SCALE_TO_REGISTER, 76)
    }
    assert outcome.day.total() == Decimal(1000)
    assert all(i.value == Decimal(10) for i in outcome.day.intervals[:40] + outcome.day.intervals[48:])


def test_scaling_puts_the_rounding_residue_on_one_estimate():
    # Given a 3-interval gap estimated 10 each, 930 actual, delta 961: 31 / 3 does not divide
    values = _gap(flat(10), 40, 3)
    outcome = run(inputs(readings(values), registers=day_registers(0, 961)))
    gap = [i.value for i in outcome.day.intervals[40:43]]
    assert sorted(gap) == [Decimal("10.333"), Decimal("10.333"), Decimal("10.334")]
    assert outcome.day.total() == Decimal(961)


def test_no_scaling_when_actuals_alone_exceed_the_register():
    values = _gap(flat(10), 40, 2)
    outcome = run(inputs(readings(values), registers=day_registers(0, 900)))
    assert outcome.day.intervals[40].value == Decimal(10)
    assert outcome.day.intervals[40].method_flag == 17


def test_an_edit_wins_keeps_the_raw_value_and_the_latest_edit_counts():
    at = datetime(2026, 3, 20, 9, tzinfo=UTC)
    edits = [
        IntervalEdit(G[5], Decimal(7), "customer reading", "ana", at),
        IntervalEdit(G[5], Decimal(8), "corrected again", "bob", at + timedelta(hours=1)),
        IntervalEdit(G[6], Decimal(9), "missing", "ana", at),
    ]
    values = _gap(flat(10), 6, 1)
    outcome = run(inputs(readings(values), edits=edits), cause="edit")
    five, six = outcome.day.intervals[5:7]
    assert (five.value, five.raw_value, five.status, five.espi_quality, five.quality_flag) == (
        Decimal(8),
        Decimal(10),
        FinalStatus.EDITED,
        ESPI_EDITED,
        QualityFlag.FINAL_SUBSTITUTE,
    )
    assert (six.value, six.raw_value, six.status) == (Decimal(9), None, FinalStatus.EDITED)
    assert outcome.day.edited_by == "bob" and outcome.day.cause == "edit"
    assert any("corrected again" in note for note in outcome.day.notes)
    assert outcome.missing == ((G[6], G[7]),)  # still never sent by the meter


def test_edited_values_are_not_scaled():
    edits = [IntervalEdit(G[40], Decimal(50), "manual", "ana", datetime(2026, 3, 20, tzinfo=UTC))]
    values = _gap(flat(10), 40, 2)
    outcome = run(inputs(readings(values), edits=edits, registers=day_registers(0, 1000)))
    # 94 x 10 + 50 = 990 fixed; the one estimate takes the remaining 10
    assert outcome.day.intervals[40].value == Decimal(50)
    assert outcome.day.intervals[41].value == Decimal(10) and outcome.day.total() == Decimal(1000)


def test_late_actual_data_replaces_the_estimate_in_a_new_version():
    # Given a day stored with an estimate for a missing interval
    values = _gap(flat(10), 40, 1)
    values[41] = 12
    first = run(inputs(readings(values)))
    assert first.day.version == 1 and first.day.intervals[40].value == Decimal(11)
    # When the meter's value arrives late
    values[40] = 20
    late = run(inputs(readings(values), previous=first.day), cause="late_data")
    # Then the actual value wins, in version 2
    interval = late.day.intervals[40]
    assert (interval.value, interval.status, interval.raw_value) == (
        Decimal(20),
        FinalStatus.ACTUAL,
        Decimal(20),
    )
    assert late.changed and late.day.version == 2 and late.day.cause == "late_data"
    assert late.missing == ()


def test_same_inputs_again_change_nothing():
    given = inputs(readings(_gap(flat(10), 40, 2)))
    first = run(given)
    again = rerun(given, first)
    assert not again.changed and again.day is first.day


def test_a_provenance_change_alone_makes_a_new_version():
    # Given a stored day; then the tenant switches off the max-demand rule: values are equal but
    # the flagged interval is now actual
    values = flat(10)
    values[70] = 30
    given = inputs(readings(values), max_demand_kw=Decimal(100))
    config = VeeConfig(disabled_rules=("spike",))
    first = run(given, config)
    second = run(replace(given, previous=first.day), VeeConfig(disabled_rules=("spike", "max_demand")))
    assert second.changed and second.day.version == 2
    assert second.day.intervals[70].value == first.day.intervals[70].value


def test_the_outcome_describes_its_change_for_the_event():
    values = _gap(flat(10), 40, 1)
    first = run(inputs(readings(values)))
    change = first.change()
    assert (change.version, change.previous_version, change.estimated, change.missing) == (1, None, 1, 0)
    assert change.failed_rules == ("interval_count", "missing_interval")
    values[40] = 10
    second = run(inputs(readings(values), previous=first.day), cause="late_data").change()
    assert (second.version, second.previous_version, second.estimated, second.failed_rules) == (2, 1, 0, ())


def test_a_stored_meter_value_is_never_replaced_by_an_estimate_when_the_inputs_lack_it():
    # Given a stored day holding the meter's 12 kWh at interval 40
    values = flat(10)
    values[40] = 12
    first = run(inputs(readings(values)))
    # When a later run's inputs no longer carry that interval
    values[40] = None
    again = run(inputs(readings(values), previous=first.day))
    # Then the stored actual value stays; nothing changed
    assert not again.changed and again.day.intervals[40].value == Decimal(12)
