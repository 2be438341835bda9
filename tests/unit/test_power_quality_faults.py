"""Power-quality and energy-theft faults of the simulators (voltage sag/swell, an open voltage
link, a bypass) and what the cloud's instantaneous alarm rules make of the values they produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hemera.domain.alarms.catalog import AlarmType
from hemera.domain.alarms.rules import instantaneous_observations
from hemera.domain.alarms.thresholds import AlarmSettings
from hemera.domain.instantaneous import InstantaneousReading, Quantity
from hemera_agent.simulators.profile import Instantaneous, IntervalEnergy
from hemera_agent.simulators.scenario import (
    Bypass,
    EventKind,
    PhaseLoss,
    Scenario,
    VoltageLinkOpen,
    VoltageSag,
    VoltageSwell,
    faulted_instantaneous,
    meter_events,
    recorded_interval,
)

T0 = datetime(2026, 3, 2, tzinfo=UTC)
NOMINAL = 230.0
ENERGY = IntervalEnergy(
    active_import_wh=90_000, active_export_wh=0, reactive_import_varh=30_000, reactive_export_varh=0
)
HEALTHY = Instantaneous((231.2, 228.9, 230.4), (150.0, 149.0, 148.0), 95_000, 31_000, 0.95, 50.01)
SETTINGS = AlarmSettings("coastal-power", nominal_voltage_v=Decimal(230))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def reading_of(values: Instantaneous, captured_at: datetime = T0) -> InstantaneousReading:
    """The reading the cloud stores from these register values (decimal, as the map scales)."""
    quantities = {
        Quantity.VOLTAGE_L1: values.voltage_v[0],
        Quantity.VOLTAGE_L2: values.voltage_v[1],
        Quantity.VOLTAGE_L3: values.voltage_v[2],
        Quantity.CURRENT_L1: values.current_a[0],
        Quantity.CURRENT_L2: values.current_a[1],
        Quantity.CURRENT_L3: values.current_a[2],
        Quantity.ACTIVE_POWER: values.active_power_w,
        Quantity.REACTIVE_POWER: values.reactive_power_var,
        Quantity.POWER_FACTOR: values.power_factor,
    }
    return InstantaneousReading("m-1", captured_at, {q: Decimal(str(v)) for q, v in quantities.items()})


def recorded_energy(
    energy: IntervalEnergy, start: datetime, minutes: int, faults: list[object]
) -> IntervalEnergy:
    record = recorded_interval(energy, start, minutes, faults)
    assert record is not None  # a gap is not what these faults make
    return record.energy


def raised(values: Instantaneous) -> set[AlarmType]:
    """The alarm types the instantaneous rules see active in these values."""
    return {o.key.type for o in instantaneous_observations(reading_of(values), SETTINGS) if o.active}


def test_healthy_values_raise_nothing() -> None:
    assert raised(HEALTHY) == set()


def test_a_voltage_sag_puts_one_phase_at_its_share_of_the_nominal_and_leaves_the_rest() -> None:
    # Given a sag of L1 to 0.85 pu of 230 V
    sag = VoltageSag(phase=1, pu=0.85, start=at(1), end=at(2))
    # When the meter measures inside the window
    measured = faulted_instantaneous(HEALTHY, at(1.5), [sag], nominal_v=NOMINAL)
    # Then L1 reads 195.5 V; the other phases, the currents and the power are untouched
    assert measured.voltage_v == (195.5, 228.9, 230.4)
    assert measured.current_a == HEALTHY.current_a
    assert measured.active_power_w == HEALTHY.active_power_w
    # and the cloud raises undervoltage (and, with one phase 15 % down, voltage unbalance)
    assert raised(measured) == {AlarmType.UNDERVOLTAGE, AlarmType.VOLTAGE_UNBALANCE}
    observations = instantaneous_observations(reading_of(measured), SETTINGS)
    (under,) = [o for o in observations if o.key.type is AlarmType.UNDERVOLTAGE]
    assert under.facts["phases"] == {"L1": {"voltage_v": "195.5", "pu": "0.850"}}
    # Outside the window nothing changes, and neither the load profile nor the event log notice it
    assert faulted_instantaneous(HEALTHY, at(2), [sag], nominal_v=NOMINAL) == HEALTHY
    assert recorded_energy(ENERGY, at(1.5), 15, [sag]) == ENERGY
    assert meter_events([sag], until=at(3)) == []


def test_a_voltage_swell_raises_overvoltage() -> None:
    swell = VoltageSwell(phase=3, pu=1.1, start=at(1), end=at(2))
    measured = faulted_instantaneous(HEALTHY, at(1), [swell], nominal_v=NOMINAL)
    assert measured.voltage_v == (231.2, 228.9, 253.0)
    assert AlarmType.OVERVOLTAGE in raised(measured)
    assert AlarmType.UNDERVOLTAGE not in raised(measured)


def test_without_a_nominal_the_excursion_is_against_the_mean_healthy_voltage() -> None:
    sag = VoltageSag(phase=2, pu=0.5, start=at(1))
    measured = faulted_instantaneous(HEALTHY, at(1), [sag])
    assert measured.voltage_v[1] == round(sum(HEALTHY.voltage_v) / 3 * 0.5, 1)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "voltage_sag", "phase": 1, "pu": 1.0},
        {"kind": "voltage_sag", "phase": 1, "pu": 0},
        {"kind": "voltage_swell", "phase": 1, "pu": 0.95},
        {"kind": "voltage_swell", "phase": 4, "pu": 1.1},
        {"kind": "voltage_link_open", "phase": 0},
        {"kind": "bypass", "end": "2026-03-01T00:00:00Z"},
    ],
)
def test_a_scenario_refuses_an_impossible_power_quality_fault(fault: dict[str, object]) -> None:
    document = {"meters": [{"meter": "m-1", "faults": [{"start": "2026-03-02T00:00:00Z", **fault}]}]}
    with pytest.raises(ValidationError):
        Scenario.model_validate(document)


def test_a_scenario_file_lists_the_new_faults() -> None:
    scenario = Scenario.model_validate(
        {
            "meters": [
                {
                    "meter": "m-1",
                    "faults": [
                        {"kind": "voltage_sag", "phase": 1, "pu": 0.85, "start": "2026-03-02T08:00Z"},
                        {"kind": "voltage_swell", "phase": 2, "pu": 1.1, "start": "2026-03-02T09:00Z"},
                        {"kind": "voltage_link_open", "phase": 3, "start": "2026-03-02T10:00Z"},
                        {"kind": "bypass", "start": "2026-03-02T11:00Z", "end": "2026-03-02T12:00Z"},
                    ],
                }
            ]
        }
    )
    assert [type(f) for f in scenario.faults_for("t", "m-1")] == [
        VoltageSag,
        VoltageSwell,
        VoltageLinkOpen,
        Bypass,
    ]


def test_an_open_voltage_link_hides_the_phase_voltage_while_its_current_flows() -> None:
    link = VoltageLinkOpen(phase=3, start=at(1), end=at(2))
    measured = faulted_instantaneous(HEALTHY, at(1.5), [link], nominal_v=NOMINAL)
    assert measured.voltage_v == (231.2, 228.9, 0.0)
    assert measured.current_a == HEALTHY.current_a  # the load still draws through the meter
    assert measured.active_power_w == round(95_000 * 2 / 3)
    # The phase's third of the energy goes unregistered, and the meter logs a missing voltage
    assert recorded_energy(ENERGY, at(1), 15, [link]) == IntervalEnergy(60_000, 0, 20_000, 0)
    assert [(e.kind, e.detail) for e in meter_events([link], until=at(3))] == [
        (EventKind.PHASE_LOSS, "L3"),
        (EventKind.PHASE_RESTORED, "L3"),
    ]
    # The cloud sees energy with a phase at zero voltage (and the 0 V phase as undervoltage and
    # unbalance)
    assert raised(measured) == {
        AlarmType.ENERGY_WITHOUT_VOLTAGE,
        AlarmType.UNDERVOLTAGE,
        AlarmType.VOLTAGE_UNBALANCE,
    }


def test_a_supply_phase_loss_is_not_energy_without_voltage() -> None:
    # A lost phase carries no current either: the rules see a dead phase (undervoltage,
    # unbalance), not a tampered voltage link
    loss = PhaseLoss(phase=2, start=at(1), end=at(2))
    measured = faulted_instantaneous(HEALTHY, at(1), [loss], nominal_v=NOMINAL)
    assert raised(measured) == {AlarmType.UNDERVOLTAGE, AlarmType.VOLTAGE_UNBALANCE}


def test_a_bypass_keeps_the_currents_and_registers_no_energy() -> None:
    bypass = Bypass(start=at(1), end=at(2) + timedelta(minutes=7, seconds=30))
    measured = faulted_instantaneous(HEALTHY, at(1.5), [bypass], nominal_v=NOMINAL)
    assert measured.current_a == HEALTHY.current_a and measured.voltage_v == HEALTHY.voltage_v
    assert (measured.active_power_w, measured.reactive_power_var, measured.power_factor) == (0.0, 0.0, 1.0)
    # Whole intervals inside record nothing; the one half bypassed records half
    assert recorded_energy(ENERGY, at(1), 15, [bypass]) == IntervalEnergy(0, 0, 0, 0)
    assert recorded_energy(ENERGY, at(2), 15, [bypass]) == IntervalEnergy(45_000, 0, 15_000, 0)
    assert meter_events([bypass], until=at(3)) == []
    assert raised(measured) == {AlarmType.CURRENT_WITHOUT_ENERGY}


@given(
    voltages=st.tuples(*[st.floats(min_value=226.6, max_value=233.4)] * 3),
    phase=st.sampled_from([1, 2, 3]),
    pu=st.floats(min_value=0.2, max_value=0.92),
)
def test_any_sag_below_the_band_is_an_undervoltage_of_exactly_that_phase(
    voltages: tuple[float, float, float], phase: Literal[1, 2, 3], pu: float
) -> None:
    # Given healthy phases within the simulator's +-1.5 % of 230 V and a sag below 0.93 pu
    volts = (round(voltages[0], 1), round(voltages[1], 1), round(voltages[2], 1))
    healthy = Instantaneous(volts, (100.0, 100.0, 100.0), 60_000, 20_000, 0.95, 50.0)
    sag = VoltageSag(phase=phase, pu=pu, start=at(0))
    measured = faulted_instantaneous(healthy, at(1), [sag], nominal_v=NOMINAL)
    observations = instantaneous_observations(reading_of(measured), SETTINGS)
    (under,) = [o for o in observations if o.key.type is AlarmType.UNDERVOLTAGE]
    # Then the undervoltage names that phase alone, with the voltage the meter showed
    assert under.active
    assert set(under.facts["phases"]) == {f"L{phase}"}
    assert Decimal(under.facts["phases"][f"L{phase}"]["voltage_v"]) == Decimal(
        str(measured.voltage_v[phase - 1])
    )
