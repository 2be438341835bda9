"""End to end on the local cloud: simulated meter → agent (Modbus, MQTT mTLS) → rules bridge →
translate → DynamoDB → Customer Portal API (`chalice local`), with the values the meter recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from hemera_agent.agent import Agent
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import Mqtt5Publisher
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, meters_from_tenant
from hemera_agent.simulators.profile import interval_energy, meter_seed
from tests.builders import archived_envelopes
from tests.integration.conftest import agent_config, eventually, get_profile, local_yesterday, run
from tests.openapi_contract import assert_conforms

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sul_energia_day(local_cloud, tmp_path_factory):
    """The São Paulo RTU's two meters recorded yesterday (local) and the agent published it."""
    tenant = local_cloud.tenants["sul-energia"]
    start = local_yesterday(tenant)
    clock = SimClock(start=datetime.now(UTC), speed=1)
    with ModbusMeterSimulator(
        meters_from_tenant(tenant, "rtu-poa-01"), clock=clock, history_start=start
    ) as sim:
        config = agent_config(local_cloud, tenant, "rtu-poa-01", sim.port, tmp_path_factory.mktemp("agent"))

        async def publish_once():
            async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
                return await Agent(config, publisher).poll_once()

        report = run(publish_once())
    return tenant, start, report


def test_a_full_local_day_arrives_with_the_values_the_meter_recorded(local_cloud, api_keys, sul_energia_day):
    tenant, start, report = sul_energia_day
    assert report.failed_meters == [] and report.envelopes >= 2
    for meter in (m for m in tenant.meters if m.protocol == "modbus"):
        response = eventually(
            lambda m=meter: get_profile(local_cloud, api_keys[tenant.id], m.id, start.date().isoformat()),
            lambda r: r.status_code == 200 and r.json()["summary"]["intervals"] == 96,
        )
        assert response.status_code == 200
        body = response.json()
        assert body["summary"]["intervals"] == body["summary"]["expected_intervals"] == 96
        # The meter's own record of each quarter hour, computed independently of the whole chain.
        expected = [
            interval_energy(
                meter_seed(tenant.id, meter.id),
                tenant.customer(meter.customer).load_class,
                meter.peak_kw,
                tenant.timezone,
                (start + timedelta(minutes=15 * i)).astimezone(UTC),
                country=tenant.country,  # the meter runs its country's public holidays like Sundays
            ).active_import_wh
            for i in range(96)
        ]
        assert [round(i["value"] * 1000) for i in body["intervals"]] == expected
        assert body["intervals"][0]["start"] == start.isoformat()
        assert body["timezone"] == "America/Sao_Paulo"


def test_responses_of_the_running_api_conform_to_the_contract(local_cloud, api_keys, sul_energia_day):
    _, start, _ = sul_energia_day
    cases = [
        (api_keys["sul-energia"], "sul-m-1001", {"from": start.date().isoformat()}),
        (api_keys["coastal-power"], "sul-m-1001", {"from": start.date().isoformat()}),
        ("hmk_wrong", "sul-m-1001", {"from": start.date().isoformat()}),
    ]
    statuses = []
    for key, meter, query in cases:
        response = get_profile(local_cloud, key, meter, query["from"])
        assert_conforms(
            response.request.url,
            {"x-api-key": key},
            response.status_code,
            dict(response.headers),
            response.content,
        )
        statuses.append(response.status_code)
    assert statuses == [200, 404, 401]


def test_another_tenants_key_cannot_see_the_meter(local_cloud, api_keys, sul_energia_day):
    _, start, _ = sul_energia_day
    response = get_profile(local_cloud, api_keys["coastal-power"], "sul-m-1001", start.date().isoformat())
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "sul-m-1001" in response.json()["detail"]


def test_the_raw_envelopes_are_archived_under_the_tenant(local_cloud, sul_energia_day):
    report = sul_energia_day[2]
    archived = archived_envelopes(local_cloud.target, local_cloud.settings.raw_bucket, "sul-energia")
    # Every envelope the agent published (load profile and readouts), byte for byte, once or more
    # (a redelivered batch may rewrite its object; a duplicate is never archived twice in one)
    seqs = {e.seq for e in archived if e.device_id == "rtu-poa-01"}
    assert set(range(report.first_seq, report.last_seq + 1)) <= seqs
    assert all(json.loads(e.payload)["device"] == e.device_id for e in archived)


def test_a_three_day_read_with_a_two_hour_meter_off_keeps_the_gap(local_cloud, api_keys, tmp_path):
    # Given a meter that recorded three days but was off for two hours on the second
    tenant = local_cloud.tenants["sul-energia"]
    days_start = local_yesterday(tenant) - timedelta(days=3)
    off_start = (days_start + timedelta(days=1, hours=9)).astimezone(UTC)
    off = {"sul-m-1002": [(off_start, off_start + timedelta(hours=2))]}
    clock = SimClock(start=datetime.now(UTC), speed=1)
    meters = [m for m in meters_from_tenant(tenant, "rtu-poa-01", off) if m.meter_id == "sul-m-1002"]
    with ModbusMeterSimulator(meters, clock=clock, history_start=days_start) as sim:
        document = agent_config(local_cloud, tenant, "rtu-poa-01", sim.port, tmp_path).model_dump(mode="json")
        document["meters"] = [m for m in document["meters"] if m["id"] == "sul-m-1002"]
        document["backfill_hours"] = 24 * 5
        config = AgentConfig.model_validate(document)

        async def publish_once():
            async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
                return await Agent(config, publisher).poll_once()

        # When the agent reads it
        run(publish_once())

    # Then the three days reach the cloud with exactly the eight off quarter hours missing
    key = api_keys["sul-energia"]

    def three_days():
        return requests.get(
            f"{local_cloud.api_url}/v1/meters/sul-m-1002/load-profile",
            params={
                "from": days_start.date().isoformat(),
                "to": (days_start + timedelta(days=3)).date().isoformat(),
            },
            headers={"x-api-key": key},
            timeout=10,
        ).json()

    body = eventually(three_days, lambda b: b["summary"]["intervals"] >= 280)
    assert body["summary"] == {**body["summary"], "intervals": 280, "expected_intervals": 288}
    starts = {datetime.fromisoformat(i["start"]).astimezone(UTC) for i in body["intervals"]}
    everything = {(days_start + timedelta(minutes=15 * i)).astimezone(UTC) for i in range(288)}
    assert sorted(everything - starts) == [off_start + timedelta(minutes=15 * i) for i in range(8)]
    assert all(i["value"] > 0 for i in body["intervals"])  # a gap, not zeros around it
