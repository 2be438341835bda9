"""The instantaneous-value alarm rules end to end on the local cloud: simulator faults on the wire
→ agent (reads the instantaneous registers/objects on its schedule) → MQTT mTLS → translate →
instantaneous store → the alarms function's sweep → `GET /v1/alarms`, and the close once the fault
has ended and the lifecycle's clearing evaluations (2) have seen healthy readings.

One tenant of this module (230 V nominal, Australian defaults: 0.93-1.05 pu, 3 % unbalance), one
RTU with four mx40 meters (the hx300 map has no instantaneous registers) and one hd500:

- a voltage sag of L1 to 0.85 pu → undervoltage naming L1 and the voltage the meter showed (and
  voltage unbalance: one phase 15 % down);
- a supply phase loss of L2 (no voltage, no current) → undervoltage (0 V) and unbalance, never
  "energy without voltage" (no current flows on the dead phase);
- an open voltage link of L3 (0 V seen, the current flows on) → energy with a phase at zero voltage;
- a bypass (current measured, no energy registered) → current without metered energy;
- on the hd500, a swell of L3 to 1.10 pu → overvoltage (the hd500 reads no active power, so only
  the voltage rules judge it).

The agent and the simulators share a clock the test steps: one reading inside the faults, then
two after them, each followed by one sweep (the sweep judges each meter's newest reading of the
last 5 wall-clock minutes, so the stepped clock stays a few minutes behind the wall).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from hemera.definitions import ALARM_SWEEP
from hemera.domain.instantaneous import capture_key
from hemera.tenants import TenantDefinition
from hemera_agent.agent import Agent, CycleReport
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import Mqtt5Publisher
from hemera_agent.simulators.dlms_meter import DlmsMeterSimulator, dlms_meter
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, meters_from_tenant
from hemera_agent.simulators.scenario import (
    Bypass,
    Fault,
    PhaseLoss,
    VoltageLinkOpen,
    VoltageSag,
    VoltageSwell,
)
from tests.integration.conftest import agent_config, eventually, run
from tests.integration.test_alarms_on_local_cloud import alarms_of, get

pytestmark = pytest.mark.integration

TENANT, RTU = "pq-power", "rtu-pq-01"
SAG, LOSS, LINK, BYPASS, SWELL = "pq-m-01", "pq-m-02", "pq-m-03", "pq-m-04", "pq-m-05"
PASSWORD = "pq-hd500-lls"
NOMINAL_V = 230


def _tenant() -> TenantDefinition:
    modbus = [
        {
            "id": meter,
            "model": "mx40",
            "protocol": "modbus",
            "rtu": RTU,
            "customer": "pq-cold-store",
            "unit_id": unit,
            "peak_kw": 300,
        }
        for unit, meter in enumerate((SAG, LOSS, LINK, BYPASS), start=1)
    ]
    dlms = {
        "id": SWELL,
        "model": "hd500",
        "protocol": "dlms",
        "rtu": RTU,
        "customer": "pq-cold-store",
        "peak_kw": 300,
    }
    return TenantDefinition.model_validate(
        {
            "id": TENANT,
            "name": "PQ Power (power-quality alarm tests)",
            "country": "AU",
            "timezone": "Australia/Sydney",
            "nominal_voltage_v": NOMINAL_V,
            # A cold store: at least a quarter of its 300 kW around the clock, so every phase
            # carries tens of amperes whenever the test runs.
            "customers": [{"id": "pq-cold-store", "name": "PQ Cold Store", "load_class": "industry"}],
            "rtus": [{"id": RTU}],
            "meters": [*modbus, dlms],
        }
    )


class SteppedClock:
    """The RTU's and the meters' clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@dataclasses.dataclass
class Timeline:
    """When the readings were taken and what `GET /v1/alarms` answered after each sweep."""

    fault_end: datetime
    taken: list[datetime]
    alarms: list[dict[str, dict[str, dict[str, Any]]]]  # per step: meter → type → alarm
    readings: dict[str, dict[str, Any]]  # meter → the reading taken inside the faults (API)


def _by_meter_and_type(cloud: Any, key: str) -> dict[str, dict[str, dict[str, Any]]]:
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for meter in (SAG, LOSS, LINK, BYPASS, SWELL):
        for alarm in alarms_of(cloud, key, meter_id=meter):
            # Newest first: keep the newest alarm of each type
            found.setdefault(meter, {}).setdefault(alarm["type"], alarm)
    return found


def _reading(cloud: Any, key: str, meter: str, at: datetime) -> dict[str, Any] | None:
    response = get(
        cloud,
        key,
        f"/v1/meters/{meter}/instantaneous",
        **{"from": at.isoformat(), "to": (at + timedelta(seconds=1)).isoformat()},
    )
    assert response.status_code == 200, response.text
    readings = [r for r in response.json()["readings"] if r["captured_at"] == capture_key(at)]
    return readings[0] if readings else None


@pytest.fixture(scope="module")
def timeline(local_cloud: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Timeline]:
    tenant = _tenant()
    local_cloud.apply_tenant(tenant)
    key = local_cloud.issue_api_key(TENANT, "power-quality tests")
    # Two and a half minutes behind the wall clock: the last step is still inside the sweep's
    # 5-minute look-back when it runs.
    first = (datetime.now(UTC) - timedelta(seconds=150)).replace(microsecond=0)
    fault_start, fault_end = first - timedelta(minutes=10), first + timedelta(seconds=30)
    faults: dict[str, tuple[Fault, ...]] = {
        SAG: (VoltageSag(phase=1, pu=0.85, start=fault_start, end=fault_end),),
        LOSS: (PhaseLoss(phase=2, start=fault_start, end=fault_end),),
        LINK: (VoltageLinkOpen(phase=3, start=fault_start, end=fault_end),),
        BYPASS: (Bypass(start=fault_start, end=fault_end),),
    }
    clock = SteppedClock(first)
    history = first - timedelta(minutes=30)
    swell = dataclasses.replace(
        dlms_meter(tenant, next(m for m in tenant.meters if m.id == SWELL), PASSWORD.encode()),
        faults=(VoltageSwell(phase=3, pu=1.1, start=fault_start, end=fault_end),),
    )
    state = tmp_path_factory.mktemp("pq-agent")
    with (
        ModbusMeterSimulator(
            meters_from_tenant(tenant, RTU, faults=faults), clock=clock, history_start=history
        ) as modbus,
        DlmsMeterSimulator(swell, clock=clock, history_start=history) as dlms,
    ):
        base = agent_config(local_cloud, tenant, RTU, modbus.port, state)
        document = base.model_dump(mode="json")
        config = AgentConfig.model_validate(
            {
                **document,
                "instantaneous_every_seconds": 1,  # every poll of this test reads them
                "meters": [
                    *document["meters"],
                    {
                        "id": SWELL,
                        "model": "hd500",
                        "protocol": "dlms",
                        "port": dlms.port,
                        "password": PASSWORD,
                    },
                ],
            }
        )

        async def poll() -> CycleReport:
            async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
                agent = Agent(config, publisher, clock=clock)
                try:
                    return await agent.poll_once()
                finally:
                    agent.close()

        taken: list[datetime] = []
        snapshots = []
        readings: dict[str, dict[str, Any]] = {}
        # One reading inside the faults, then two after them (the lifecycle's 2 clearing readings)
        for at in (first, first + timedelta(seconds=60), first + timedelta(seconds=90)):
            clock.at = at
            report = run(poll())
            assert report.failed_meters == []
            for meter in (SAG, LOSS, LINK, BYPASS, SWELL):
                stored = eventually(
                    lambda m=meter, t=at: _reading(local_cloud, key, m, t), bool, timeout_s=30
                )
                assert stored is not None, f"{meter}: no instantaneous reading at {at} reached the API"
                if at == first:
                    readings[meter] = stored
            local_cloud.run_schedule(ALARM_SWEEP.name)
            taken.append(at)
            snapshots.append(_by_meter_and_type(local_cloud, key))
    yield Timeline(fault_end, taken, snapshots, readings)


def _state(alarm: dict[str, Any] | None) -> str | None:
    return None if alarm is None else alarm["state"]


def _lifecycle(timeline: Timeline, meter: str, alarm_type: str) -> list[str | None]:
    """The alarm's state after each of the three sweeps."""
    return [_state(step.get(meter, {}).get(alarm_type)) for step in timeline.alarms]


def _closed_by_second_healthy_reading(timeline: Timeline, alarm: dict[str, Any]) -> None:
    first, _, second_healthy = timeline.taken
    assert datetime.fromisoformat(alarm["first_seen"]) == first
    assert datetime.fromisoformat(alarm["closed_at"]) == second_healthy > timeline.fault_end
    assert alarm["facts"]["cleared"]["captured_at"] == second_healthy.isoformat()


def test_a_voltage_sag_raises_undervoltage_naming_the_phase_and_the_measured_value(
    timeline: Timeline,
) -> None:
    # Given L1 of the meter at 0.85 pu of 230 V; when the sweep judges the reading
    under = timeline.alarms[0][SAG]["undervoltage"]
    # Then an open major undervoltage names L1 with the voltage the meter showed in that reading
    assert (under["state"], under["severity"]) == ("open", "major")
    assert under["subject"] == {"kind": "meter", "id": SAG}
    assert under["facts"]["captured_at"] == timeline.taken[0].isoformat()
    assert under["facts"]["phases"] == {"L1": {"voltage_v": "195.5", "pu": "0.850"}}
    assert Decimal(str(timeline.readings[SAG]["values"]["voltage_l1"])) == Decimal("195.5")
    assert Decimal(under["facts"]["nominal_v"]) == NOMINAL_V and under["facts"]["min_pu"] == "0.93"
    # and one phase 15 % down is an unbalance as well
    assert Decimal(timeline.alarms[0][SAG]["voltage_unbalance"]["facts"]["unbalance_pct"]) > 3
    # When the fault ends the alarms stay open through the first healthy reading and close on
    # the second
    assert _lifecycle(timeline, SAG, "undervoltage") == ["open", "open", "closed"]
    assert _lifecycle(timeline, SAG, "voltage_unbalance") == ["open", "open", "closed"]
    _closed_by_second_healthy_reading(timeline, timeline.alarms[2][SAG]["undervoltage"])


def test_a_supply_phase_loss_is_a_dead_phase_not_energy_without_voltage(timeline: Timeline) -> None:
    raised = timeline.alarms[0][LOSS]
    assert raised["undervoltage"]["facts"]["phases"] == {"L2": {"voltage_v": "0.0", "pu": "0.000"}}
    assert raised["voltage_unbalance"]["facts"]["voltages_v"]["L2"] == "0.0"
    # the lost phase carries no current, so nothing points at a tampered voltage link
    assert timeline.readings[LOSS]["values"]["current_l2"] == 0
    assert "energy_without_voltage" not in raised and "overvoltage" not in raised
    assert _lifecycle(timeline, LOSS, "undervoltage") == ["open", "open", "closed"]
    assert _lifecycle(timeline, LOSS, "voltage_unbalance") == ["open", "open", "closed"]


def test_an_open_voltage_link_raises_energy_with_a_phase_at_zero_voltage(timeline: Timeline) -> None:
    alarm = timeline.alarms[0][LINK]["energy_without_voltage"]
    assert (alarm["state"], alarm["severity"]) == ("open", "major")
    (phase,) = alarm["facts"]["phases"].items()
    assert phase[0] == "L3" and phase[1]["voltage_v"] == "0.0"
    # The phase still carries the current the meter read in that reading, and energy is metered
    assert Decimal(phase[1]["current_a"]) == Decimal(str(timeline.readings[LINK]["values"]["current_l3"]))
    assert Decimal(phase[1]["current_a"]) >= Decimal("0.5")
    assert Decimal(alarm["facts"]["active_power_w"]) > 10
    assert _lifecycle(timeline, LINK, "energy_without_voltage") == ["open", "open", "closed"]
    _closed_by_second_healthy_reading(timeline, timeline.alarms[2][LINK]["energy_without_voltage"])


def test_a_bypass_raises_current_without_metered_energy(timeline: Timeline) -> None:
    raised = timeline.alarms[0][BYPASS]
    alarm = raised["current_without_energy"]
    assert (alarm["state"], alarm["severity"]) == ("open", "major")
    assert alarm["facts"]["active_power_w"] == "0"
    assert set(alarm["facts"]["currents_a"]) == {"L1", "L2", "L3"}
    values = timeline.readings[BYPASS]["values"]
    assert {n: Decimal(a) for n, a in alarm["facts"]["currents_a"].items()} == {
        f"L{p}": Decimal(str(values[f"current_l{p}"])) for p in (1, 2, 3)
    }
    # voltages are healthy: the bypass is the only thing wrong
    assert set(raised) == {"current_without_energy"}
    assert _lifecycle(timeline, BYPASS, "current_without_energy") == ["open", "open", "closed"]
    _closed_by_second_healthy_reading(timeline, timeline.alarms[2][BYPASS]["current_without_energy"])


def test_a_dlms_meters_voltage_swell_raises_overvoltage(timeline: Timeline) -> None:
    # Given L3 of the hd500 at 1.10 pu (its healthy phases within +-1 % of 230 V)
    raised = timeline.alarms[0][SWELL]
    over = raised["overvoltage"]
    assert set(raised) == {"overvoltage", "voltage_unbalance"}  # one phase 10 % up
    assert over["facts"]["phases"] == {"L3": {"voltage_v": "253.0", "pu": "1.100"}}
    assert Decimal(str(timeline.readings[SWELL]["values"]["voltage_l3"])) == Decimal("253.0")
    assert _lifecycle(timeline, SWELL, "overvoltage") == ["open", "open", "closed"]
    _closed_by_second_healthy_reading(timeline, timeline.alarms[2][SWELL]["overvoltage"])
