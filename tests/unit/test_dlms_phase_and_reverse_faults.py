"""The DLMS meter simulator under `phase_loss` and `reverse_energy` scenario faults: the entries
its power quality and fraud logs gain (IDIS 82-87 per phase, the HD-500's 231/232), and the
instantaneous values it serves while a fault lasts and after it ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hemera_agent.simulators.dlms_meter import (
    CURRENT,
    FRAUD_LOG,
    POWER_FACTOR,
    POWER_FAILURE_LOG,
    POWER_QUALITY_LOG,
    STANDARD_LOG,
    VOLTAGE,
    DlmsMeter,
    DlmsMeterState,
    meter_from_tenant,
)
from hemera_agent.simulators.scenario import Outage, PhaseLoss, ReverseEnergy
from tests.conftest import TENANTS_DIR

START = datetime(2026, 11, 16, 3, tzinfo=UTC)  # Monday 00:00 in São Paulo
LOST, BACK = START + timedelta(hours=14), START + timedelta(hours=15)  # 11:00-12:00 local: busy
REVERSED, FORWARD = START + timedelta(hours=16), START + timedelta(hours=17)


def state_with(*faults: object) -> DlmsMeterState:
    meter = DlmsMeter("dl-m-1", "industry", 300.0, "America/Sao_Paulo", "seed", faults=faults)  # type: ignore[arg-type]
    return DlmsMeterState(meter, START)


def test_a_lost_phase_is_logged_per_phase_in_the_power_quality_log():
    # Given phase L2 lost 14:00-15:00 after the history start
    state = state_with(PhaseLoss(phase=2, start=LOST, end=BACK))
    # When the clock is inside the window, then after it
    state.advance(LOST + timedelta(minutes=20))
    during = state.events(POWER_QUALITY_LOG)
    state.advance(BACK + timedelta(minutes=20))
    # Then "missing voltage L2" (83) is logged at the loss, "voltage L2 normal" (86) at the return
    assert during == [(LOST, 83)]
    assert state.events(POWER_QUALITY_LOG) == [(LOST, 83), (BACK, 86)]
    # and the other logs hold no phase entry (the fault replaces the fixed markers)
    assert state.events(FRAUD_LOG) == [] and state.events(POWER_FAILURE_LOG) == []


def test_reverse_energy_is_logged_with_the_hd500_codes_in_the_fraud_log():
    state = state_with(ReverseEnergy(start=REVERSED, end=FORWARD))
    state.advance(FORWARD + timedelta(minutes=1))
    assert state.events(FRAUD_LOG) == [(REVERSED, 231), (FORWARD, 232)]
    assert state.events(POWER_QUALITY_LOG) == []


def test_each_phase_has_its_own_codes():
    state = state_with(
        PhaseLoss(phase=1, start=LOST, end=BACK), PhaseLoss(phase=3, start=REVERSED, end=FORWARD)
    )
    state.advance(FORWARD)
    assert state.events(POWER_QUALITY_LOG) == [(LOST, 82), (BACK, 85), (REVERSED, 84), (FORWARD, 87)]


def test_a_healthy_meter_has_an_empty_power_quality_log():
    state = state_with()
    state.advance(START + timedelta(days=1))
    assert state.events(POWER_QUALITY_LOG) == []
    assert state.events(STANDARD_LOG) == [(START, 255)]


def test_the_instantaneous_values_show_the_lost_phase_while_it_is_lost():
    # Given L2 lost; when read during the loss and after it
    state = state_with(PhaseLoss(phase=2, start=LOST, end=BACK))
    state.advance(LOST + timedelta(minutes=30))
    during = state.instantaneous()
    state.advance(BACK + timedelta(minutes=30))
    after = state.instantaneous()
    # Then L2 reads 0 V and 0 A during the loss while L1/L3 keep the supply (220 V +/- 1 %)
    assert (during[VOLTAGE[1]], during[CURRENT[1]]) == (0, 0)
    for phase in (0, 2):
        assert 2178 <= during[VOLTAGE[phase]] <= 2222 and during[CURRENT[phase]] > 0
    # and every phase is back afterwards
    assert all(2178 <= after[v] <= 2222 for v in VOLTAGE) and all(after[a] > 0 for a in CURRENT)


def test_the_power_factor_turns_negative_while_energy_flows_backwards():
    state = state_with(ReverseEnergy(start=REVERSED, end=FORWARD))
    state.advance(REVERSED + timedelta(minutes=30))
    during = state.instantaneous()[POWER_FACTOR]
    state.advance(FORWARD + timedelta(minutes=30))
    after = state.instantaneous()[POWER_FACTOR]
    assert -1000 <= during < 0 < after <= 1000


def test_a_scenario_file_gives_the_process_simulator_its_meters_faults(tmp_path):
    # Given a scenario with faults for Sul Energia's hd500 and for a meter of another tenant
    scenario = tmp_path / "faults.yaml"
    scenario.write_text(
        "schema: hemera.scenario/1\n"
        "meters:\n"
        "  - meter: sul-m-1003\n"
        "    tenant: sul-energia\n"
        "    faults:\n"
        "      - {kind: phase_loss, phase: 3, start: 2026-11-16T17:00Z, end: 2026-11-16T18:00Z}\n"
        "      - {kind: reverse_energy, start: 2026-11-16T19:00Z}\n"
        "  - meter: sul-m-1003\n"
        "    tenant: coastal-power\n"
        "    faults:\n"
        "      - {kind: outage, start: 2026-11-16T10:00Z, end: 2026-11-16T11:00Z}\n"
    )
    # When the simulator's process builds its meter from the tenant file and the scenario
    meter = meter_from_tenant(TENANTS_DIR / "sul-energia.yaml", "sul-m-1003", b"lls", scenario)
    # Then the meter carries exactly its own tenant's faults
    assert meter.faults == (
        PhaseLoss(phase=3, start=START + timedelta(hours=14), end=START + timedelta(hours=15)),
        ReverseEnergy(start=START + timedelta(hours=16)),
    )
    assert meter_from_tenant(TENANTS_DIR / "sul-energia.yaml", "sul-m-1003", b"lls").faults == ()


def test_the_load_profile_records_what_the_faults_let_the_meter_record():
    # Given the same meter healthy, and with an outage 14:05-14:50, a reverse-energy hour 16-17h
    outage = Outage(start=LOST + timedelta(minutes=5), end=LOST + timedelta(minutes=50))
    healthy, faulted = state_with(), state_with(outage, ReverseEnergy(start=REVERSED, end=FORWARD))
    for state in (healthy, faulted):
        state.advance(FORWARD + timedelta(minutes=15))
    clean = {end - timedelta(minutes=15): energy for end, energy in healthy.rows}
    rows = {end - timedelta(minutes=15): energy for end, energy in faulted.rows}

    # Then the quarter hours wholly inside the outage are missing (a gap, never zeros) ...
    quarters = [LOST + timedelta(minutes=15 * n) for n in range(4)]
    assert [q in rows for q in quarters] == [True, False, False, True]
    # ... the ones it cuts hold the powered part: 5 of 15 minutes, then 10 of 15
    assert rows[quarters[0]].active_import_wh == round(clean[quarters[0]].active_import_wh / 3)
    assert rows[quarters[3]].active_import_wh == round(clean[quarters[3]].active_import_wh * 2 / 3)
    # and under reverse energy the meter records the consumption as export
    hour = [REVERSED + timedelta(minutes=15 * n) for n in range(4)]
    assert [(rows[q].active_import_wh, rows[q].active_export_wh) for q in hour] == [
        (clean[q].active_export_wh, clean[q].active_import_wh) for q in hour
    ]
    # and the registers count what the profile recorded
    assert faulted.totals != healthy.totals
