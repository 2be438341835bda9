"""Faults on demand: the scenario schema and the pure functions the simulators apply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hemera.domain.readings import METER_FLAG_CLOCK_ADJUSTED, METER_FLAG_POWER_OUTAGE
from hemera_agent.simulators.profile import Instantaneous, IntervalEnergy
from hemera_agent.simulators.scenario import (
    ClockDrift,
    ClockReset,
    ClockSync,
    CommLoss,
    EventKind,
    InvalidScenario,
    MeterOff,
    Outage,
    PhaseLoss,
    RelayOpen,
    ReverseEnergy,
    Spike,
    Tamper,
    comm_state,
    faulted_instantaneous,
    load_scenario,
    meter_clock,
    meter_events,
    recorded_interval,
    relay_connected,
)

T0 = datetime(2026, 3, 2, tzinfo=UTC)
Q = timedelta(minutes=15)
ENERGY = IntervalEnergy(
    active_import_wh=90_000, active_export_wh=0, reactive_import_varh=30_000, reactive_export_varh=0
)
INSTANT = Instantaneous((220.1, 219.8, 221.0), (150.0, 149.0, 148.0), 95_000, 31_000, 0.95, 60.01)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def record(start: datetime, *faults: object) -> tuple[IntervalEnergy, int] | None:
    got = recorded_interval(ENERGY, start, 15, faults)
    return None if got is None else (got.energy, got.flags)


def test_no_fault_records_the_load_as_it_is() -> None:
    assert record(at(1)) == (ENERGY, 0)


def test_meter_off_leaves_a_gap_and_flags_the_first_record_after_it() -> None:
    off = MeterOff(start=at(2), end=at(2.5))
    assert record(at(1.75), off) == (ENERGY, 0)
    assert record(at(2), off) is None and record(at(2.25), off) is None
    assert record(at(2.5), off) == (ENERGY, METER_FLAG_POWER_OUTAGE)
    # A window that only touches part of an interval still loses the whole record
    assert (
        record(at(3), MeterOff(start=at(3) + timedelta(minutes=5), end=at(3) + timedelta(minutes=6))) is None
    )


def test_an_outage_keeps_the_powered_part_of_the_edge_intervals_and_logs_last_gasp_and_power_up() -> None:
    outage = Outage(start=at(4) + timedelta(minutes=5), end=at(4.75) + timedelta(minutes=10))
    # 04:00-04:15 powered 5 of 15 minutes; 04:15 and 04:30 dark; 04:45 powered the last 5 minutes
    first = record(at(4), outage)
    assert first == (IntervalEnergy(30_000, 0, 10_000, 0), METER_FLAG_POWER_OUTAGE)
    assert record(at(4.25), outage) is None and record(at(4.5), outage) is None
    assert record(at(4.75), outage) == (IntervalEnergy(30_000, 0, 10_000, 0), METER_FLAG_POWER_OUTAGE)

    events = meter_events([outage], until=at(6))
    assert [(e.kind, e.at) for e in events] == [
        (EventKind.POWER_DOWN, outage.start),
        (EventKind.POWER_UP, outage.end),
    ]
    assert events[0].detail == "last gasp"
    # And before power came back only the last gasp is in the log
    assert [e.kind for e in meter_events([outage], until=at(4.5))] == [EventKind.POWER_DOWN]


def test_a_spike_multiplies_only_the_interval_holding_it() -> None:
    spike = Spike(at=at(5) + timedelta(minutes=7), factor=10)
    assert record(at(5), spike) == (IntervalEnergy(900_000, 0, 300_000, 0), 0)
    assert record(at(5.25), spike) == (ENERGY, 0)


def test_reverse_energy_moves_import_to_export() -> None:
    reverse = ReverseEnergy(start=at(6), end=at(7))
    assert record(at(6), reverse) == (IntervalEnergy(0, 90_000, 0, 30_000), 0)
    assert record(at(7), reverse) == (ENERGY, 0)
    half = ReverseEnergy(start=at(8) + timedelta(seconds=450), end=at(9))  # half of 08:00-08:15
    assert record(at(8), half) == (IntervalEnergy(45_000, 45_000, 15_000, 15_000), 0)
    flipped = faulted_instantaneous(INSTANT, at(6.5), [reverse])
    assert flipped.active_power_w < 0 and flipped.reactive_power_var < 0 and flipped.power_factor < 0


def test_phase_loss_zeroes_one_voltage_and_a_third_of_the_energy() -> None:
    loss = PhaseLoss(start=at(1), end=at(2), phase=2)
    assert record(at(1), loss) == (IntervalEnergy(60_000, 0, 20_000, 0), 0)
    measured = faulted_instantaneous(INSTANT, at(1.5), [loss])
    assert measured.voltage_v == (220.1, 0.0, 221.0)
    assert measured.current_a[1] == 0.0
    assert [e.kind for e in meter_events([loss], until=at(3))] == [
        EventKind.PHASE_LOSS,
        EventKind.PHASE_RESTORED,
    ]
    assert meter_events([loss], until=at(3))[0].detail == "L2"


def test_an_open_relay_records_zero_consumption_not_a_gap() -> None:
    relay = RelayOpen(start=at(10))  # open until commanded closed
    assert record(at(10), relay) == (IntervalEnergy(0, 0, 0, 0), 0)
    assert not relay_connected(at(30), [relay]) and relay_connected(at(9), [relay])
    measured = faulted_instantaneous(INSTANT, at(11), [relay])
    assert measured.current_a == (0.0, 0.0, 0.0) and measured.active_power_w == 0
    assert measured.voltage_v == INSTANT.voltage_v  # the supply side is still live
    assert [e.kind for e in meter_events([relay], until=at(11))] == [EventKind.RELAY_DISCONNECTED]


def test_clock_drift_accumulates_seconds_per_day() -> None:
    drift = ClockDrift(start=at(0), end=at(48), seconds_per_day=40)
    assert meter_clock(at(24), [drift]) == at(24) + timedelta(seconds=40)
    assert meter_clock(at(72), [drift]) == at(72) + timedelta(seconds=80)  # stopped drifting at 48 h
    slow = ClockDrift(start=at(0), seconds_per_day=-10)
    assert meter_clock(at(12), [slow]) == at(12) - timedelta(seconds=5)


def test_a_clock_reset_runs_from_the_wrong_time_until_synchronised() -> None:
    reset = ClockReset(at=at(3), synced_at=at(5))
    assert meter_clock(at(2), [reset]) == at(2)
    assert meter_clock(at(4), [reset]) == datetime(2000, 1, 1, 1, tzinfo=UTC)
    assert meter_clock(at(6), [reset]) == at(6)
    # The first interval starting after the sync carries the clock-adjusted bit
    assert record(at(5), reset) == (ENERGY, METER_FLAG_CLOCK_ADJUSTED)
    assert record(at(5.25), reset) == (ENERGY, 0)
    events = meter_events([reset], until=at(6))
    assert [(e.kind, e.meter_time) for e in events] == [
        (EventKind.CLOCK_RESET, datetime(2000, 1, 1, tzinfo=UTC)),
        (EventKind.CLOCK_ADJUSTED, at(5)),
    ]


def test_writing_the_clock_register_sets_the_meter_clock() -> None:
    reset = ClockReset(at=at(3))  # never synchronised by the scenario
    sync = ClockSync(at=at(4), set_to=at(4) + timedelta(seconds=2))
    assert meter_clock(at(3.5), [reset], [sync]).year == 2000
    assert meter_clock(at(5), [reset], [sync]) == at(5) + timedelta(seconds=2)
    assert EventKind.CLOCK_ADJUSTED in [e.kind for e in meter_events([reset], at(5), [sync])]


def test_communication_loss_and_an_unpowered_meter_do_not_answer() -> None:
    loss = CommLoss(start=at(1), end=at(2), mode="silent", silence_seconds=3)
    assert comm_state(at(1.5), [loss]) == ("silent", 3)
    assert comm_state(at(2), [loss]) == ("answering", 0.0)
    assert comm_state(at(1.5), [MeterOff(start=at(1), end=at(2))])[0] == "gateway_exception"
    assert comm_state(at(1.5), [Outage(start=at(1), end=at(2))])[0] == "gateway_exception"


def test_tamper_events_and_events_lost_while_the_meter_is_off() -> None:
    cover = Tamper(type="cover_open", at=at(1), end=at(2))
    magnet = Tamper(type="magnetic", at=at(3))
    lost = Tamper(type="magnetic", at=at(5))
    off = MeterOff(start=at(4.5), end=at(6))
    kinds = [e.kind for e in meter_events([cover, magnet, lost, off], until=at(10))]
    assert kinds == [EventKind.COVER_OPEN, EventKind.COVER_CLOSED, EventKind.MAGNETIC_TAMPER]


@given(
    wh=st.integers(min_value=0, max_value=10**7),
    varh=st.integers(min_value=0, max_value=10**7),
    reverse_minutes=st.integers(min_value=0, max_value=15),
    outage_minutes=st.integers(min_value=0, max_value=14),
)
def test_faults_never_create_energy_or_negative_values(
    wh: int, varh: int, reverse_minutes: int, outage_minutes: int
) -> None:
    energy = IntervalEnergy(wh, 0, varh, 0)
    faults: list[object] = []
    if reverse_minutes:
        faults.append(ReverseEnergy(start=T0, end=T0 + timedelta(minutes=reverse_minutes)))
    if outage_minutes:
        faults.append(Outage(start=T0 + timedelta(minutes=15 - outage_minutes), end=at(1)))
    got = recorded_interval(energy, T0, 15, faults)
    assert got is not None
    values = (got.energy.active_import_wh, got.energy.active_export_wh)
    assert min(values) >= 0 and min(got.energy.reactive_import_varh, got.energy.reactive_export_varh) >= 0
    assert sum(values) <= wh + 1  # rounding of two parts


SCENARIO = """
schema: hemera.scenario/1
start: 2026-03-02T00:00:00Z
speed: 500
tenant_files: [tenants/acme.yaml]
fleet: {tenants: 2, rtus_per_tenant: 1, meters_per_rtu: 2}
meters:
  - meter: m-1
    tenant: acme
    faults:
      - {kind: meter_off, start: 2026-03-02T10:00Z, end: 2026-03-02T12:00Z}
      - {kind: comm_loss, start: 2026-03-02T14:00Z, end: 2026-03-02T15:00Z, mode: silent}
      - {kind: spike, at: 2026-03-02T16:15Z, factor: 12}
      - {kind: clock_drift, start: 2026-03-02T00:00Z, seconds_per_day: 40}
      - {kind: clock_reset, at: 2026-03-02T18:00Z, synced_at: 2026-03-02T19:00Z}
      - {kind: outage, start: 2026-03-02T20:05Z, end: 2026-03-02T20:50Z}
      - {kind: phase_loss, phase: 2, start: 2026-03-02T21:00Z, end: 2026-03-02T22:00Z}
      - {kind: reverse_energy, start: 2026-03-02T22:00Z, end: 2026-03-02T23:00Z}
      - {kind: tamper, type: cover_open, at: 2026-03-02T23:10Z}
      - {kind: relay_open, start: 2026-03-02T23:30Z}
  - meter: m-2
    faults: [{kind: spike, at: 2026-03-02T01:00Z, factor: 3}]
"""


def test_a_scenario_file_loads_with_every_fault_kind(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)

    scenario = load_scenario(path)

    assert scenario.speed == 500 and scenario.start == T0
    assert scenario.tenant_files == (tmp_path / "tenants" / "acme.yaml",)  # relative to the file
    kinds = [f.kind for f in scenario.faults_for("acme", "m-1")]
    assert len(kinds) == 10 and len(set(kinds)) == 10
    assert scenario.faults_for("other", "m-1") == ()
    assert [f.kind for f in scenario.faults_for("any-tenant", "m-2")] == ["spike"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{kind: earthquake, at: 2026-03-02T01:00Z}", "does not match any of the expected tags"),
        ("{kind: meter_off, start: 2026-03-02T02:00Z, end: 2026-03-02T01:00Z}", "end must be after start"),
        ("{kind: spike, at: 2026-03-02T01:00, factor: 2}", "timezone"),
        ("{kind: phase_loss, phase: 4, start: 2026-03-02T01:00Z}", "phase"),
    ],
)
def test_a_bad_fault_is_refused_with_the_place_and_the_reason(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"schema: hemera.scenario/1\nmeters:\n  - meter: m-1\n    faults: [{bad}]\n")
    with pytest.raises(InvalidScenario, match=message) as caught:
        load_scenario(path)
    assert "meters.0.faults.0" in str(caught.value)
