"""Each validation rule with hand-computed data: what fails, what happens to the value, which
flags the interval gets (Given/When/Then). Days are São Paulo Mondays of 96 x 15 minutes; 10 kWh
in 15 minutes is 40 kW of demand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hemera.domain.final_series import ESPI_QUESTIONABLE, ESPI_VALID, FinalStatus, QualityFlag
from hemera.domain.meter_events import EventType, MeterEvent, Outage, OutageSource, Subject
from hemera.domain.readings import (
    METER_FLAG_CLOCK_ADJUSTED,
    METER_FLAG_POWER_OUTAGE,
    Channel,
    IntervalReading,
    Unit,
)
from hemera.domain.registers import RegisterReading
from hemera.domain.vee import VeeConfig
from hemera.domain.vee import catalog as c
from tests.unit.vee.builders import (
    CHANNEL,
    METER,
    MONDAY,
    day_registers,
    failure,
    flat,
    grid,
    history_day,
    inputs,
    readings,
    run,
)

G = grid()


def test_missing_intervals_are_reported_as_ranges_and_estimated():
    # Given a day with intervals 10-11 and 50 missing
    values = flat(10)
    values[10] = values[11] = values[50] = None
    # When VEE runs
    outcome = run(inputs(readings(values)))
    # Then the rule names them, the ranges are for re-reads, and each is estimated (comms fault 76)
    missing = failure(outcome, c.MISSING_INTERVAL)
    assert missing is not None and missing.starts == (G[10], G[11], G[50])
    assert outcome.missing == ((G[10], G[12]), (G[50], G[51]))
    interval = outcome.day.intervals[10]
    assert (interval.status, interval.raw_value, interval.reason_code) == (FinalStatus.ESTIMATED, None, 76)


def test_a_reading_that_fits_no_interval_fails_the_count():
    # Given a full day plus a 5-minute reading at 00:05 on a 15-minute meter
    odd = IntervalReading(METER, CHANNEL, G[0] + timedelta(minutes=5), 5, Decimal(1), Unit.KWH)
    outcome = run(inputs([*readings(flat(10)), odd]))
    count = failure(outcome, c.INTERVAL_COUNT)
    assert count is not None and count.starts == (odd.start,)
    assert "received 96 of 96" in count.message
    assert outcome.day.total() == Decimal(960)  # the stray reading is not counted


def test_readings_of_another_meter_channel_or_day_are_ignored():
    other = IntervalReading("m-2", CHANNEL, G[3], 15, Decimal(99), Unit.KWH)
    export = IntervalReading(METER, Channel.ACTIVE_EXPORT, G[3], 15, Decimal(99), Unit.KWH)
    before = IntervalReading(METER, CHANNEL, G[0] - timedelta(minutes=15), 15, Decimal(99), Unit.KWH)
    outcome = run(inputs([*readings(flat(10)), other, export, before]))
    assert outcome.failures == () and outcome.day.total() == Decimal(960)


def test_a_negative_value_is_substituted_by_interpolation():
    # Given -3 kWh between 10 and 12
    values = flat(10)
    values[40], values[41] = "-3", 12
    outcome = run(inputs(readings(values)))
    # Then it fails and becomes the linear estimate (10 + 12) / 2, keeping the raw value
    assert failure(outcome, c.NEGATIVE_VALUE).starts == (G[40],)
    interval = outcome.day.intervals[40]
    assert interval.value == Decimal(11) and interval.raw_value == Decimal(-3)
    assert (interval.status, interval.method_flag, interval.reason_code) == (FinalStatus.ESTIMATED, 17, 73)


def test_an_implausible_value_above_three_times_the_demand_limit_is_substituted():
    # Given a 100 kW limit: 3 x 100 kW = 300 kW = 75 kWh in 15 minutes
    values = flat(10)
    values[20], values[30] = 76, 75
    outcome = run(inputs(readings(values), max_demand_kw=Decimal(100)), VeeConfig(disabled_rules=("spike",)))
    # Then 76 kWh (304 kW) is substituted, 75 kWh (300 kW) is not implausible (only above the limit)
    assert failure(outcome, c.IMPLAUSIBLE_VALUE).starts == (G[20],)
    assert outcome.day.intervals[20].value == Decimal(10)
    assert outcome.day.intervals[30].value == Decimal(75)
    assert outcome.day.intervals[30].rule_id == c.MAX_DEMAND


def test_a_spike_against_its_neighbours_is_substituted_and_a_moderate_rise_is_not():
    # Given neighbours at 10 kWh (40 kW): 40 kWh (160 kW) > 3 x 40 kW and 120 kW above it
    values = flat(10)
    values[30] = 40
    values[60] = 25  # 100 kW: below 3 x 40 kW
    outcome = run(inputs(readings(values)))
    spike = failure(outcome, c.SPIKE)
    assert spike is not None and spike.starts == (G[30],)
    spiked = outcome.day.intervals[30]
    assert (spiked.value, spiked.raw_value, spiked.status) == (
        Decimal(10),
        Decimal(40),
        FinalStatus.ESTIMATED,
    )
    assert (spiked.quality_flag, spiked.reason_code) == (QualityFlag.SUBSTITUTE, 74)
    assert outcome.day.intervals[60].status is FinalStatus.ACTUAL


def test_a_spike_on_a_near_idle_load_needs_the_minimum_delta():
    # Given 0.1 kWh neighbours (0.4 kW): 1 kWh (4 kW) is 10x but only 3.6 kW above (< 5 kW)
    values = flat("0.1")
    values[30] = 1
    outcome = run(inputs(readings(values)))
    assert failure(outcome, c.SPIKE) is None
    # A tenant with a 1 kW floor sees it as a spike
    strict = run(inputs(readings(values)), VeeConfig(spike_min_delta_kw=Decimal(1)))
    assert failure(strict, c.SPIKE).starts == (G[30],)


def test_a_spike_that_cannot_be_estimated_is_kept_as_validation_failed():
    # Given a spike at the first interval (no left anchor) and no history
    values = flat(10)
    values[0] = 100
    outcome = run(inputs(readings(values)))
    interval = outcome.day.intervals[0]
    assert (interval.value, interval.status, interval.espi_quality) == (
        Decimal(100),
        FinalStatus.FAILED,
        ESPI_QUESTIONABLE,
    )
    assert (interval.quality_flag, interval.rule_id, interval.reason_code) == (
        QualityFlag.ACTUAL,
        c.SPIKE,
        74,
    )


def test_zero_consumption_while_the_register_advanced_is_substituted():
    # Given 4 zeros (1 hour) and a register that advanced 928 over the day: the 92 other
    # intervals hold 920, so 8 kWh are unexplained (> 0.5)
    values = flat(10)
    values[40:44] = [0, 0, 0, 0]
    outcome = run(inputs(readings(values), registers=day_registers(1000, 1928)))
    # Then the run fails and is estimated: linear gives 10 each, scaled to the register: 8/4 = 2
    assert failure(outcome, c.ZERO_WITH_REGISTER_ADVANCE).starts == tuple(G[40:44])
    estimated = outcome.day.intervals[40:44]
    assert [i.value for i in estimated] == [Decimal(2)] * 4
    assert {(i.method_flag, i.reason_code, i.raw_value) for i in estimated} == {(24, 68, Decimal(0))}
    assert outcome.day.total() == Decimal(928)


def test_zeros_the_register_confirms_are_valid():
    values = flat(10)
    values[40:44] = [0, 0, 0, 0]
    outcome = run(inputs(readings(values), registers=day_registers(1000, 1920)))
    assert failure(outcome, c.ZERO_WITH_REGISTER_ADVANCE) is None
    assert outcome.day.intervals[40].status is FinalStatus.ACTUAL
    # ...and three zeros are too short a run to check (default 4)
    values[43] = 10
    short = run(inputs(readings(values), registers=day_registers(1000, 1938)))
    assert failure(short, c.ZERO_WITH_REGISTER_ADVANCE) is None


def test_a_zero_run_is_checked_against_the_registers_that_bracket_it():
    # Given hourly register readings: 3 and 4 o'clock (local) advanced 40 while the hour read 0
    values = flat(10)
    values[12:16] = [0, 0, 0, 0]
    registers = [
        RegisterReading(METER, CHANNEL, G[12], Decimal(500)),
        RegisterReading(METER, CHANNEL, G[16], Decimal(540)),
    ]
    outcome = run(inputs(readings(values), registers=registers))
    assert failure(outcome, c.ZERO_WITH_REGISTER_ADVANCE).starts == tuple(G[12:16])


def test_demand_above_the_limit_is_kept_and_flagged():
    # Given a 100 kW limit and 30 kWh in 15 minutes = 120 kW
    values = flat(10)
    values[70] = 30
    outcome = run(inputs(readings(values), max_demand_kw=Decimal(100)), VeeConfig(disabled_rules=("spike",)))
    # Then the metered value stays (billing charges the overrun) but is flagged for review
    assert failure(outcome, c.MAX_DEMAND).starts == (G[70],)
    interval = outcome.day.intervals[70]
    assert (interval.value, interval.status, interval.quality_flag, interval.espi_quality) == (
        Decimal(30),
        FinalStatus.FAILED,
        QualityFlag.ACTUAL,
        ESPI_QUESTIONABLE,
    )


def test_intervals_around_a_clock_adjustment_are_suspect():
    # Given the meter's clock was adjusted during interval 40
    event = MeterEvent(Subject.METER, METER, "rtu-1", EventType.CLOCK_ADJUSTED, G[40] + timedelta(minutes=3))
    values = flat(10)
    values[40] = 13  # the stretched interval: 30 % more energy, not a spike
    outcome = run(inputs(readings(values), events=[event]))
    # Then intervals 39-41 are flagged with reason 89, values kept
    assert failure(outcome, c.CLOCK_EVENT).starts == tuple(G[39:42])
    flagged = outcome.day.intervals[39:42]
    assert [i.value for i in flagged] == [Decimal(10), Decimal(13), Decimal(10)]
    assert {(i.status, i.reason_code, i.rule_id) for i in flagged} == {
        (FinalStatus.FAILED, 89, c.CLOCK_EVENT)
    }
    assert outcome.day.intervals[38].status is FinalStatus.ACTUAL


def test_the_meters_clock_adjusted_bit_marks_suspect_intervals_and_other_meters_events_do_not():
    foreign = MeterEvent(Subject.METER, "m-2", "rtu-1", EventType.CLOCK_RESET, G[10])
    outcome = run(
        inputs(readings(flat(10), flags={70: METER_FLAG_CLOCK_ADJUSTED}), events=[foreign]),
        VeeConfig(clock_suspect_intervals=0),
    )
    assert failure(outcome, c.CLOCK_EVENT).starts == (G[70],)


def test_outage_intervals_are_valid_data_and_unrecorded_ones_are_zero():
    # Given an outage from interval 20 to 26 (exclusive): the meter recorded 0 for 20-21 and
    # nothing for 22-25
    values = flat(10)
    values[20:26] = [0, 0, None, None, None, None]
    outage = Outage(METER, G[20], G[26], OutageSource.LAST_GASP)
    outcome = run(inputs(readings(values), outages=[outage]))
    recorded, unrecorded = outcome.day.intervals[20:22], outcome.day.intervals[22:26]
    # Then recorded zeros stay actual with the outage alarm reason (79), not zero-consumption failures
    assert {(i.status, i.value, i.reason_code, i.espi_quality) for i in recorded} == {
        (FinalStatus.ACTUAL, Decimal(0), 79, ESPI_VALID)
    }
    # And unrecorded intervals are zero (method 19, reason 43) - still reported as never sent
    assert {(i.value, i.method_flag, i.reason_code) for i in unrecorded} == {(Decimal(0), 19, 43)}
    assert outcome.missing == ((G[22], G[26]),)
    assert failure(outcome, c.ZERO_WITH_REGISTER_ADVANCE) is None and failure(outcome, c.SPIKE) is None


def test_an_interval_half_inside_an_outage_gets_half_an_estimate():
    # Given interval 31 missing, an outage starting half way through it and lasting past 33
    values = flat(10)
    values[31:34] = [None, 0, 0]
    outage = Outage(METER, G[31] + timedelta(minutes=7, seconds=30), G[34], OutageSource.LAST_GASP)
    outcome = run(inputs(readings(values), outages=[outage]))
    # Then linear (10 -> 0, one interval): 5, x 0.5 powered share = 2.5, reason 43
    interval = outcome.day.intervals[31]
    assert (interval.value, interval.method_flag, interval.reason_code) == (Decimal("2.5"), 17, 43)


def test_the_meters_outage_bit_makes_an_interval_valid_outage_data():
    values = flat(10)
    values[50] = 0
    outcome = run(inputs(readings(values, flags={50: METER_FLAG_POWER_OUTAGE})))
    interval = outcome.day.intervals[50]
    assert (interval.status, interval.reason_code, interval.rule_id) == (FinalStatus.ACTUAL, 79, c.OUTAGE)


def test_register_sum_fails_beyond_tolerance_and_passes_within():
    # Given 96 x 10 = 960 kWh; tolerance max(1, 1 % of delta)
    sent = readings(flat(10))
    off = run(inputs(sent, registers=day_registers(0, 1000)))
    assert "interval total 960 differs from register delta 1000" in failure(off, c.REGISTER_SUM).message
    within = run(inputs(sent, registers=day_registers(0, 969)))  # 9 <= 9.69
    assert failure(within, c.REGISTER_SUM) is None
    backwards = run(inputs(sent, registers=day_registers(1000, 10)))
    assert "went backwards by 990" in failure(backwards, c.REGISTER_SUM).message


def test_a_register_reading_away_from_midnight_does_not_count():
    registers = day_registers(0, 1000)
    late = RegisterReading(METER, CHANNEL, registers[1].at + timedelta(minutes=6), Decimal(1000))
    outcome = run(inputs(readings(flat(10)), registers=[registers[0], late]))
    assert failure(outcome, c.REGISTER_SUM) is None  # 6 min > the 5-minute window: no delta


def test_usage_against_the_same_weekdays_history():
    # Given four earlier Mondays of 960 kWh
    history = [history_day(MONDAY - timedelta(weeks=w), 10) for w in range(1, 5)]
    high = run(inputs(readings(flat(21)), history=history))  # 2016 > 2 x 960
    assert failure(high, c.USAGE_VS_HISTORY).message.startswith("high usage: 2016 against a mean of 960")
    low = run(inputs(readings(flat(2)), history=history))  # 192 < 0.25 x 960 = 240
    assert failure(low, c.USAGE_VS_HISTORY).message.startswith("low usage: 192")
    normal = run(inputs(readings(flat(15)), history=history))
    assert failure(normal, c.USAGE_VS_HISTORY) is None
    # Tuesdays are not the same weekday: no history, no verdict
    tuesdays = [history_day(MONDAY - timedelta(days=6 + 7 * w), 10) for w in range(4)]
    assert failure(run(inputs(readings(flat(21)), history=tuesdays)), c.USAGE_VS_HISTORY) is None


def test_a_disabled_rule_does_not_run():
    values = flat(10)
    values[30] = 40
    outcome = run(inputs(readings(values)), VeeConfig(disabled_rules=("spike",)))
    assert failure(outcome, c.SPIKE) is None and outcome.day.intervals[30].value == Decimal(40)


def test_a_flagged_value_is_no_anchor_for_interpolation():
    # Given a kept max-demand value (120 kW) right before a missing interval, no history
    values = flat(10)
    values[39], values[40] = 30, None
    outcome = run(inputs(readings(values), max_demand_kw=Decimal(100)), VeeConfig(disabled_rules=("spike",)))
    # Then linear interpolation does not build on it: the gap stays unestimated
    assert outcome.day.intervals[40].value is None
    assert outcome.day.intervals[40].quality_flag is QualityFlag.NULL


def test_demand_is_energy_times_sixty_over_the_interval_length():
    # Given 5-minute data: 9 kWh in 5 minutes = 108 kW, 8 kWh = 96 kW, against a 100 kW limit
    values = flat(8, minutes=5)
    values[100] = 9
    outcome = run(inputs(readings(values, minutes=5), minutes=5, max_demand_kw=Decimal(100)))
    assert failure(outcome, c.MAX_DEMAND).starts == (grid(minutes=5)[100],)
    assert len(outcome.day.intervals) == 288
