"""The DLMS meter simulator logs a scenario's outage and tamper in its power-failure and fraud logs
(IDIS codes), stamped by its clock, instead of its fixed demo markers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hemera_agent.simulators.dlms_meter import FRAUD_LOG, POWER_FAILURE_LOG, DlmsMeter, DlmsMeterState
from hemera_agent.simulators.scenario import Outage, Tamper

START = datetime(2026, 11, 16, 3, tzinfo=UTC)


def meter(*faults: object) -> DlmsMeter:
    return DlmsMeter("dl-m-1", "industry", 300.0, "America/Sao_Paulo", "seed", faults=faults)  # type: ignore[arg-type]


def test_an_outage_and_a_cover_opening_are_logged_once_the_clock_passes_them():
    down, up, opened = (
        START + timedelta(hours=2),
        START + timedelta(hours=2, minutes=30),
        START + timedelta(hours=3),
    )
    state = DlmsMeterState(meter(Outage(start=down, end=up), Tamper(type="cover_open", at=opened)), START)
    state.advance(START + timedelta(hours=2, minutes=10))
    assert state.events(POWER_FAILURE_LOG) == [(down, 1)]
    assert state.events(FRAUD_LOG) == []
    state.advance(START + timedelta(hours=4))
    assert state.events(POWER_FAILURE_LOG) == [(down, 1), (up, 2)]
    assert state.events(FRAUD_LOG) == [(opened, 40)]


def test_without_faults_the_fixed_markers_stay():
    state = DlmsMeterState(meter(), START)
    state.advance(START + timedelta(hours=13))
    assert [code for _, code in state.events(POWER_FAILURE_LOG)] == [1, 2]
    assert [code for _, code in state.events(FRAUD_LOG)] == [40, 41]
