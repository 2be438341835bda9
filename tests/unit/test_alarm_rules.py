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
from hemera.domain.billing.tariff import ALL_POSTS, BillingRules, MeterTariff
from hemera.domain.billing.tou import FORA_PONTA, PONTA, brazil_group_a
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


def test_a_phase_loss_is_an_alarm_per_phase():
    # Given L1 and L2 lost, then L2 restored
    def event(kind: EventType, phase: int, minutes: int) -> MeterEvent:
        at = T0 + timedelta(minutes=minutes)
        return MeterEvent(Subject.METER, "sul-m-1001", "rtu-poa-01", kind, at, detail={"phase": phase})

    observations = event_observations(
        [
            event(EventType.PHASE_LOSS, 1, 0),
            event(EventType.PHASE_LOSS, 2, 1),
            event(EventType.PHASE_RESTORED, 2, 5),
        ],
        SUL,
    )

    # Then each phase has its own key: restoring L2 clears L2's alarm only
    assert [(o.key.scope, o.active) for o in observations] == [
        ("phase-1", True),
        ("phase-2", True),
        ("phase-2", False),
    ]
    assert len({o.key.text for o in observations}) == 2


def _hour(start: datetime, kwh: str, kvarh: str, channel: Channel) -> tuple[list, list]:
    quarters = [start + timedelta(minutes=15 * i) for i in range(4)]
    return [interval(q, kwh) for q in quarters], [interval(q, kvarh, channel) for q in quarters]


def test_with_a_tariff_the_power_factor_is_judged_per_clock_hour_and_window():
    # Given Sao Paulo (UTC-3), the a4-azul capacitive window 00:00-06:00 local:
    # 02:00 local (05:00 UTC): P 25 x 4, R- 18.75 x 4 -> capacitive PF 0.80; its R+ is ignored
    # 10:00 local (13:00 UTC): P 25 x 4, R+ 5 x 4 -> PF 0.98 (fine)
    night_p, night_cap = _hour(datetime(2026, 11, 19, 5, tzinfo=UTC), "25", "18.75", Channel.REACTIVE_EXPORT)
    _, night_ind = _hour(datetime(2026, 11, 19, 5, tzinfo=UTC), "25", "0", Channel.REACTIVE_IMPORT)
    day_p, day_ind = _hour(datetime(2026, 11, 19, 13, tzinfo=UTC), "25", "5", Channel.REACTIVE_IMPORT)

    (observation,) = power_factor_observations(
        "sul-m-1001", night_p + day_p, night_ind + day_ind, SUL, _azul(), night_cap
    )

    # Then the night hour is the low one, named as the hour billing would charge
    assert observation.active
    assert (observation.facts["interval_start"], observation.facts["interval_end"]) == (
        "2026-11-19T05:00:00+00:00",
        "2026-11-19T06:00:00+00:00",
    )
    assert (observation.facts["power_factor"], observation.facts["reactive"]) == ("0.8000", "capacitive")
    assert observation.facts["intervals_below"] == 4
    # and the same capacitive energy outside the window does not count (R+ is judged there)
    (day,) = power_factor_observations(
        "sul-m-1001",
        day_p,
        day_ind,
        SUL,
        _azul(),
        _hour(day_p[0].start, "25", "18.75", Channel.REACTIVE_EXPORT)[1],
    )
    assert not day.active
    # and an hour with a missing interval is not judged at all
    assert power_factor_observations("sul-m-1001", day_p[:3], day_ind, SUL, _azul()) == []


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


def _azul(per_post: bool = True) -> MeterTariff:
    """A4 azul of the sample tenant: ponta 18-21 h on business days, contract ponta 600 / fora
    ponta 900 kW (verde: 900 kW for every hour)."""
    contract = (
        ((PONTA, Decimal(600)), (FORA_PONTA, Decimal(900))) if per_post else ((ALL_POSTS, Decimal(900)),)
    )
    return MeterTariff(
        "a4-azul", "A4 Azul", brazil_group_a(), BillingRules(demand_per_post=per_post), 1, contract
    )


def test_demand_is_held_to_the_contract_of_its_post():
    # Given Fri 2026-11-20 is a holiday, use Thu 19: 650 kW in ponta (19:00 local = 22:00 UTC)
    # and 650 kW in fora ponta (10:00 local)
    ponta = datetime(2026, 11, 19, 22, tzinfo=UTC)
    fora = datetime(2026, 11, 19, 13, tzinfo=UTC)
    active = [interval(fora, "162.5"), interval(ponta, "162.5")]  # 650 kW each

    # When the azul tariff judges them: ponta's 600 kW contract allows 630, fora ponta's 945
    (observation,) = demand_observations("sul-m-1001", active, SUL, _azul())

    # Then only the ponta block is an overrun, named with its post
    assert observation.active
    assert observation.facts["post"] == "ponta"
    assert observation.facts["interval_start"] == "2026-11-19T22:00:00+00:00"
    assert (observation.facts["contracted_kw"], observation.facts["limit_kw"]) == ("600", "630.00")
    assert observation.facts["intervals_over"] == 1
    # and verde (one 900 kW demand for every hour) sees no overrun in the same data
    (verde,) = demand_observations("sul-m-1001", active, SUL, _azul(per_post=False))
    assert not verde.active


def test_five_minute_data_is_integrated_into_fifteen_minute_blocks():
    # Given three 5-minute intervals at 13:00 UTC: 1,200 kW, then 600 and 600 -> 800 kW mean
    start = datetime(2026, 11, 19, 13, tzinfo=UTC)
    five = [
        IntervalReading(
            "sul-m-1001", Channel.ACTIVE_IMPORT, start + timedelta(minutes=5 * i), 5, Decimal(kwh), Unit.KWH
        )
        for i, kwh in enumerate(("100", "50", "50"))
    ]
    # Then the block (800 kW) is within fora ponta's 945 kW, though one 5-minute value is not
    (observation,) = demand_observations("sul-m-1001", five, SUL, _azul())
    assert not observation.active
    # and an incomplete block (two of three intervals) is not judged at all
    assert demand_observations("sul-m-1001", five[:2], SUL, _azul()) == []


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
