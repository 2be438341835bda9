"""`hemera sim` end to end: a generated fleet (hx300 and mx40 meters, one of them faulted) on its
own local cloud, read by one agent per RTU with its own certificate, shown by the portal API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hemera.tenants import TenantDefinition
from hemera_agent.agent import Agent, CycleReport
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig, load_config
from hemera_agent.publisher import Mqtt5Publisher
from hemera_agent.simulators.profile import interval_energy, meter_seed
from hemera_agent.simulators.scenario import Scenario
from hemera_local.cloud import LocalCloud, LocalCloudConfig
from hemera_local.fleet import run_fleet, write_fleet_tenants
from tests.integration.conftest import eventually, get_profile, local_yesterday, run

pytestmark = pytest.mark.integration

FAULTED = "f1-m-1002"


def test_a_fleet_arrives_with_its_gap_and_both_models_values(tmp_path: Path) -> None:
    # Given a generated Brazilian tenant: 2 RTUs x 2 meters, hx300 and mx40 in turn, and one meter
    # off for two hours of yesterday (local)
    zone_only = TenantDefinition.model_validate(
        {
            "id": "x",
            "name": "x",
            "country": "BR",
            "timezone": "America/Sao_Paulo",
            "customers": [],
            "rtus": [],
            "meters": [],
        }
    )
    start_of_day = local_yesterday(zone_only)
    off_start = (start_of_day + timedelta(hours=9)).astimezone(UTC)
    scenario = Scenario.model_validate(
        {
            "start": start_of_day.astimezone(UTC).isoformat(),
            "fleet": {"tenants": 1, "rtus_per_tenant": 2, "meters_per_rtu": 2, "countries": ["BR"]},
            "meters": [
                {
                    "meter": FAULTED,
                    "faults": [
                        {
                            "kind": "meter_off",
                            "start": off_start.isoformat(),
                            "end": (off_start + timedelta(hours=2)).isoformat(),
                        }
                    ],
                }
            ],
        }
    )
    state = tmp_path / "state"
    tenants_dir = write_fleet_tenants(scenario, state)
    with LocalCloud(LocalCloudConfig(state_dir=state, tenants_dir=tenants_dir, api_port=0)) as cloud:
        key = cloud.issue_api_key("fleet-1", "fleet test")
        clock = SimClock(start=datetime.now(UTC), speed=1)  # the memory holds yesterday already
        with run_fleet(scenario, state_dir=state, clock=clock, broker_port=cloud.mqtt_port) as fleet:
            # When each RTU's agent polls once with the config and certificate the fleet wrote
            for rtu in fleet.rtus:
                config = load_config(rtu.config_path)

                async def publish_once(config: AgentConfig = config) -> CycleReport:
                    async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
                        return await Agent(config, publisher, clock=clock).poll_once()

                report = run(publish_once())
                assert report.failed_meters == []

        # Then the API shows every meter's day, the faulted one with its two-hour gap
        tenant = fleet.tenants[0]
        assert {m.model for m in tenant.meters} == {"hx300", "mx40"}
        for meter in tenant.meters:
            wanted = 88 if meter.id == FAULTED else 96
            response = eventually(
                lambda m=meter: get_profile(cloud, key, m.id, start_of_day.date().isoformat()),
                lambda r, w=wanted: r.status_code == 200 and r.json()["summary"]["intervals"] >= w,
            )
            body = response.json()
            assert body["summary"]["intervals"] == wanted
            assert body["summary"]["expected_intervals"] == 96
            load_class = tenant.customer(meter.customer).load_class
            for item in body["intervals"]:
                interval_start = datetime.fromisoformat(item["start"]).astimezone(UTC)
                if item["value"] is None:
                    # once VEE has the day, the gap is listed too: unfilled, never an actual
                    assert off_start <= interval_start < off_start + timedelta(hours=2)
                    assert item["status"] != "actual"
                    continue
                energy = interval_energy(
                    meter_seed(tenant.id, meter.id),
                    load_class,
                    meter.peak_kw,
                    tenant.timezone,
                    interval_start,
                    country="BR",
                )
                assert round(item["value"] * 1000) == energy.active_import_wh
