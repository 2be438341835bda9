"""Alarm rules: each rule raises on its condition, names the facts (interval, phase, event) that
triggered it, observes "cleared" when the condition is gone, and stays silent without inputs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.domain.alarms import AlarmSettings, AlarmThresholds, AlarmType
from hemera.domain.alarms.rules import (
    ReadsExhausted,
    demand_observations,
    event_observations,
    instantaneous_observations,
    power_factor,
    power_factor_observations,
    reads_exhausted_observation,
    silence_observations,
    vee_failure_observation,
    voltage_unbalance_pct,
)
from hemera.domain.instantaneous import InstantaneousReading, Quantity
from hemera.domain.meter_events import EventType, MeterEvent, Subject
from hemera.domain.readings import Channel, IntervalReading, Unit

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
SUL = AlarmSettings(
    "sul-energia", nominal_voltage_v=Decimal(127), contracted_demand_kw={"sul-m-1001": Decimal(900)}
)


def interval(start: datetime, kwh: str, channel: Channel = Channel.ACTIVE_IMPORT) -> IntervalReading:
    unit = Unit.KWH if channel in (Channel.ACTIVE_IMPORT, Channel.ACTIVE_EXPORT) else Unit.KVARH
    return IntervalReading("sul-m-1001", channel, start, 15, Decimal(kwh), unit)


def reading(**values: str) -> InstantaneousReading:
    return InstantaneousReading("sul-m-1001", T0, {Quantity(k): Decimal(v) for k, v in values.items()})


def by_type(observations):
    return {o.key.type: o for o in observations}


# --- device events ---------------------------------------------------------------------------------
def test_power_down_raises_an_outage_and_power_up_ends_it():
    down = MeterEvent(Subject.METER, "sul-m-1001", "rtu-poa-01", EventType.POWER_DOWN, T0, code=1)
    up = MeterEvent(
        Subject.METER, "sul-m-1001", "rtu-poa-01", EventType.POWER_UP, T0 + timedelta(minutes=45),
        detail={"duration_s": 2700},
    )  # fmt: skip

    observations = event_observations([up, down], SUL)

    # (the power up's reported duration implies the same start as the last gasp)
    assert [(o.key.type, o.active, o.at, o.implied) for o in observations] == [
        (AlarmType.OUTAGE, True, T0, False),
        (AlarmType.OUTAGE, True, T0, True),
        (AlarmType.OUTAGE, False, T0 + timedelta(minutes=45), False),
    ]
    assert observations[0].facts["event"] == "power_down" and observations[0].facts["code"] == 1
    assert observations[2].facts["detail"] == {"duration_s": 2700}


def test_a_power_up_with_its_duration_implies_the_outage_start():
    up = MeterEvent(
        Subject.METER, "sul-m-1001", "rtu-poa-01", EventType.POWER_UP, T0, detail={"duration_s": 600}
    )

    implied, cleared = event_observations([up], SUL)

    assert (implied.active, implied.implied, implied.at) == (True, True, T0 - timedelta(minutes=10))
    assert implied.facts["implied_by"] == "power_up"
    assert (cleared.active, cleared.at) == (False, T0)


def test_rtu_events_are_about_the_rtu_and_disabled_types_raise_nothing():
    overflow = MeterEvent(Subject.RTU, "rtu-poa-01", "rtu-poa-01", EventType.RTU_BUFFER_OVERFLOW, T0)
    cover = MeterEvent(Subject.METER, "sul-m-1001", "rtu-poa-01", EventType.COVER_OPEN, T0)
    settings = AlarmSettings("sul-energia", disabled=frozenset({AlarmType.COVER_OPEN}))

    (observation,) = event_observations([overflow, cover], settings)

    assert (observation.key.subject, observation.key.subject_id, observation.key.type) == (
        Subject.RTU,
        "rtu-poa-01",
        AlarmType.RTU_BUFFER_OVERFLOW,
    )


def test_clock_adjustments_raise_nothing():
    adjusted = MeterEvent(Subject.METER, "sul-m-1001", "rtu-poa-01", EventType.CLOCK_ADJUSTED, T0)
    assert event_observations([adjusted], SUL) == []


# --- voltage (PRODIST Módulo 8 band against the nominal voltage) -------------------------------------
def test_a_phase_below_the_adequate_band_is_undervoltage_with_the_phase_named():
    # 127 V nominal: 0.93 pu = 118.11 V, so 117.0 V on L2 is low; 1.05 pu = 133.35 V.
    observations = by_type(
        instantaneous_observations(reading(voltage_l1="127.0", voltage_l2="117.0", voltage_l3="128.0"), SUL)
    )

    under = observations[AlarmType.UNDERVOLTAGE]
    assert under.active
    assert under.facts["phases"] == {"L2": {"voltage_v": "117.0", "pu": "0.921"}}
    assert not observations[AlarmType.OVERVOLTAGE].active


def test_a_phase_above_the_band_is_overvoltage_and_the_band_edges_are_adequate():
    inside = by_type(
        instantaneous_observations(reading(voltage_l1="133.35", voltage_l2="118.11", voltage_l3="127"), SUL)
    )
    above = by_type(instantaneous_observations(reading(voltage_l1="134.0"), SUL))

    assert not inside[AlarmType.OVERVOLTAGE].active and not inside[AlarmType.UNDERVOLTAGE].active
    assert above[AlarmType.OVERVOLTAGE].active
    assert above[AlarmType.OVERVOLTAGE].facts["phases"]["L1"]["pu"] == "1.055"


def test_tenant_thresholds_replace_the_defaults():
    australian = AlarmSettings(
        "coastal-power",
        thresholds=AlarmThresholds(voltage_min_pu=Decimal("0.94"), voltage_max_pu=Decimal("1.10")),
        nominal_voltage_v=Decimal(230),
    )
    # 250 V is 1.087 pu: over PRODIST's 1.05, inside the tenant's 1.10.
    observations = by_type(instantaneous_observations(reading(voltage_l1="250"), australian))
    assert not observations[AlarmType.OVERVOLTAGE].active


def test_without_a_nominal_voltage_the_voltage_band_is_not_judged():
    observations = by_type(instantaneous_observations(reading(voltage_l1="50"), AlarmSettings("t")))
    assert AlarmType.UNDERVOLTAGE not in observations


def test_voltage_unbalance_above_three_percent_raises():
    assert voltage_unbalance_pct([Decimal(127), Decimal(127), Decimal(127)]) == 0
    balanced = by_type(
        instantaneous_observations(reading(voltage_l1="127", voltage_l2="126", voltage_l3="128"), SUL)
    )
    # mean 125.33, largest deviation 5.33: 4.26 %
    unbalanced = by_type(
        instantaneous_observations(reading(voltage_l1="130", voltage_l2="126", voltage_l3="120"), SUL)
    )

    assert not balanced[AlarmType.VOLTAGE_UNBALANCE].active
    assert unbalanced[AlarmType.VOLTAGE_UNBALANCE].active
    assert unbalanced[AlarmType.VOLTAGE_UNBALANCE].facts["unbalance_pct"] == "4.26"


# --- current without energy, energy without voltage ---------------------------------------------------
def test_current_on_a_phase_while_no_active_power_is_metered():
    observations = by_type(
        instantaneous_observations(
            reading(voltage_l1="127", current_l1="35.2", current_l2="0.1", active_power="0"), SUL
        )
    )

    found = observations[AlarmType.CURRENT_WITHOUT_ENERGY]
    assert found.active
    assert found.facts["currents_a"] == {"L1": "35.2"}


def test_current_with_metered_power_is_normal():
    observations = by_type(
        instantaneous_observations(reading(voltage_l1="127", current_l1="35.2", active_power="4200"), SUL)
    )
    assert not observations[AlarmType.CURRENT_WITHOUT_ENERGY].active


def test_energy_metered_with_a_phase_at_zero_voltage_that_carries_current():
    observations = by_type(
        instantaneous_observations(
            reading(
                voltage_l1="127", voltage_l2="0.4", voltage_l3="126",
                current_l1="40", current_l2="38.5", current_l3="41", active_power="10000",
            ),
            SUL,
        )
    )  # fmt: skip

    found = observations[AlarmType.ENERGY_WITHOUT_VOLTAGE]
    assert found.active
    assert found.facts["phases"] == {"L2": {"voltage_v": "0.4", "current_a": "38.5"}}


def test_a_supply_phase_loss_without_current_is_not_energy_without_voltage():
    observations = by_type(
        instantaneous_observations(
            reading(
                voltage_l1="127", voltage_l2="0", voltage_l3="126",
                current_l1="40", current_l2="0", current_l3="41", active_power="10000",
            ),
            SUL,
        )
    )  # fmt: skip
    assert not observations[AlarmType.ENERGY_WITHOUT_VOLTAGE].active


def test_without_phase_currents_energy_with_a_dead_phase_raises():
    observations = by_type(
        instantaneous_observations(
            reading(voltage_l1="127", voltage_l2="0.4", voltage_l3="126", active_power="52000"), SUL
        )
    )
    assert observations[AlarmType.ENERGY_WITHOUT_VOLTAGE].facts["phases"] == {"L2": {"voltage_v": "0.4"}}


# --- power factor and demand on intervals -------------------------------------------------------------
def test_power_factor_of_an_interval_from_its_energies():
    assert power_factor(Decimal(3), Decimal(4)) == Decimal("0.6")
    assert power_factor(Decimal(0), Decimal(4)) is None


def test_low_power_factor_names_the_worst_interval():
    starts = [T0 + timedelta(minutes=15 * i) for i in range(3)]
    active = [interval(s, "100") for s in starts]
    # PF 0.98, 0.80 (100 / √(100² + 75²)), 0.95
    reactive = [
        interval(starts[0], "20.3", Channel.REACTIVE_IMPORT),
        interval(starts[1], "75", Channel.REACTIVE_IMPORT),
        interval(starts[2], "32.9", Channel.REACTIVE_IMPORT),
    ]

    (observation,) = power_factor_observations("sul-m-1001", active, reactive, SUL)

    assert observation.active
    assert observation.facts["interval_start"] == "2026-11-20T14:15:00+00:00"
    assert observation.facts["interval_end"] == "2026-11-20T14:30:00+00:00"
    assert observation.facts["power_factor"] == "0.8000"
    assert observation.facts["intervals_below"] == 1
    assert observation.facts["reference"] == "0.92"


def test_power_factor_at_the_reference_is_clear():
    active = [interval(T0, "100")]
    reactive = [interval(T0, "42.6", Channel.REACTIVE_IMPORT)]  # PF 0.9200
    (observation,) = power_factor_observations("sul-m-1001", active, reactive, SUL)
    assert not observation.active


def test_demand_above_contracted_plus_five_percent_names_the_interval():
    # 900 kW contracted: the limit is 945 kW, 236.25 kWh in 15 minutes.
    active = [
        interval(T0, "236.25"),  # 945 kW: at the limit, not over
        interval(T0 + timedelta(minutes=15), "240"),  # 960 kW: 6.7 % over
    ]

    (observation,) = demand_observations("sul-m-1001", active, SUL)

    assert observation.active
    assert observation.facts["interval_start"] == "2026-11-20T14:15:00+00:00"
    assert observation.facts["demand_kw"] == "960.000"
    assert observation.facts["limit_kw"] == "945.00"
    assert observation.facts["overrun_pct"] == "6.7"


def test_demand_within_the_tolerance_is_clear_and_meters_without_contract_are_not_judged():
    (observation,) = demand_observations("sul-m-1001", [interval(T0, "236.25")], SUL)
    assert not observation.active
    assert demand_observations("sul-m-9999", [interval(T0, "9999")], SUL) == []


# --- silence, reads exhausted, VEE failures -----------------------------------------------------------
def test_silence_longer_than_the_limit_is_a_communication_failure():
    now = T0 + timedelta(hours=10)
    seen = {(Subject.RTU, "rtu-poa-01"): T0, (Subject.METER, "sul-m-1001"): now - timedelta(hours=1)}

    observations = {o.key.subject_id: o for o in silence_observations(seen, now, SUL)}

    assert observations["rtu-poa-01"].active
    assert observations["rtu-poa-01"].facts["silent_hours"] == 10.0
    assert not observations["sul-m-1001"].active


def test_a_silent_rtu_is_the_one_alarm_for_its_silent_meters():
    now = T0 + timedelta(hours=10)
    seen = {
        (Subject.RTU, "rtu-poa-01"): T0,
        (Subject.METER, "sul-m-1001"): T0,
        (Subject.METER, "sul-m-1002"): T0,
        (Subject.METER, "sul-m-2001"): T0,  # behind another RTU, which still talks
        (Subject.RTU, "rtu-poa-02"): now,
    }
    rtu_of = {"sul-m-1001": "rtu-poa-01", "sul-m-1002": "rtu-poa-01", "sul-m-2001": "rtu-poa-02"}

    observations = {o.key.subject_id: o for o in silence_observations(seen, now, SUL, rtu_of)}

    assert set(observations) == {"rtu-poa-01", "rtu-poa-02", "sul-m-2001"}
    assert observations["rtu-poa-01"].facts["silent_meters"] == ["sul-m-1001", "sul-m-1002"]
    assert observations["sul-m-2001"].active and not observations["rtu-poa-02"].active


def test_reads_exhausted_raises_with_the_gap():
    event = ReadsExhausted("sul-m-1001", "rtu-poa-01", "active_import", T0, T0 + timedelta(hours=2), 5)
    (observation,) = reads_exhausted_observation(event, T0 + timedelta(days=1), SUL)
    assert observation.active and observation.facts["gap_start"] == T0.isoformat()
    assert observation.facts["attempts"] == 5


@pytest.mark.parametrize(("failed_days", "active"), [(2, False), (3, True)])
def test_vee_failures_on_three_of_seven_days_raise(failed_days: int, active: bool):
    latest = date(2026, 11, 20)
    days = {latest - timedelta(days=2 * i): ("spike",) for i in range(failed_days)}
    days[latest - timedelta(days=9)] = ("gap",)  # outside the window

    (observation,) = vee_failure_observation("sul-m-1001", days, latest, T0, SUL)

    assert observation.active is active
    assert len(observation.facts["failed_days"]) == failed_days
