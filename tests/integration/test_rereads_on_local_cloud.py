"""Automatic re-reads on the local cloud: a meter's 45 missing minutes (an RTU replaced without its
outbox) are found by the re-read sweep, which asks the RTU for exactly that range; the agent reads
it from the simulated meter, publishes it, and the gap closes with the meter's own values."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import requests

from hemera.definitions import COMMAND_SCHEDULES, REREADS_JOB, ScheduleDef
from hemera_agent.agent import Agent
from hemera_agent.clock import SimClock
from hemera_agent.publisher import Mqtt5Publisher
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, meters_from_tenant
from tests.integration.conftest import agent_config, eventually, run

pytestmark = pytest.mark.integration

TENANT, RTU = "coastal-power", "rtu-syd-01"
REREAD_SCHEDULE: ScheduleDef = next(s for s in COMMAND_SCHEDULES if s.payload["job"] == REREADS_JOB)


def statuses(cloud, key: str, meter: str, start: datetime, end: datetime) -> dict[str, str]:
    """Each quarter hour of the load profile in [start, end) with its status (`actual`,
    `estimated`, … once VEE has the day; `raw` before)."""
    response = requests.get(
        f"{cloud.api_url}/v1/meters/{meter}/load-profile",
        params={"from": start.isoformat(), "to": end.isoformat()},
        headers={"x-api-key": key},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return {i["start"]: i["status"] for i in response.json()["intervals"] if i["value"] is not None}


METER_DATA = {"actual", "raw"}  # what the meter sent (VEE'd, or not yet), never an estimate


def test_a_gap_is_reread_from_the_meter_and_closes(local_cloud, api_keys, tmp_path):
    tenant = local_cloud.tenants[TENANT]
    meter = next(m for m in tenant.meters_of(RTU) if m.protocol == "modbus").id
    # Five days ago (outside every other test's 48-hour backfill), in UTC.
    day = (datetime.now(UTC) - timedelta(days=5)).replace(hour=0, minute=0, second=0, microsecond=0)
    gap_start, gap_end = day + timedelta(hours=10), day + timedelta(hours=10, minutes=45)

    def deliver(clock_at: datetime, state: str, backfill_hours: float) -> None:
        clock = SimClock(start=clock_at, speed=1)
        with ModbusMeterSimulator(meters_from_tenant(tenant, RTU), clock=clock, history_start=day) as sim:
            config = agent_config(local_cloud, tenant, RTU, sim.port, tmp_path / state)
            config = config.model_copy(update={"backfill_hours": backfill_hours})

            async def once():
                async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
                    return await Agent(config, publisher).poll_once()

            run(once())

    # Given the RTU delivered the meter's day up to 10:00 UTC, then was replaced by one that
    # started at 10:45 (the old one's outbox lost): 10:00-10:45 never arrived
    deliver(gap_start, "old-rtu", 48)
    deliver(day + timedelta(hours=16), "new-rtu", 5.25)
    key = api_keys[TENANT]
    tenant_zone_gap = [
        (gap_start + timedelta(minutes=15 * i)).astimezone(tenant.zone).isoformat() for i in range(3)
    ]

    def metered(profile: dict[str, str]) -> set[str]:
        return {start for start, status in profile.items() if status in METER_DATA}

    delivered = eventually(
        lambda: statuses(local_cloud, key, meter, day, day + timedelta(hours=16)),
        lambda profile: len(metered(profile)) == 16 * 4 - 3,
    )
    assert len(metered(delivered)) == 16 * 4 - 3
    assert not set(tenant_zone_gap) & metered(delivered)  # missing, or estimated by VEE

    # When the new RTU's agent is running and the re-read sweep runs
    tenant_zone_gap = [
        (gap_start + timedelta(minutes=15 * i)).astimezone(tenant.zone).isoformat() for i in range(3)
    ]
    clock = SimClock(start=day + timedelta(hours=16), speed=1)
    with ModbusMeterSimulator(meters_from_tenant(tenant, RTU), clock=clock, history_start=day) as sim:
        config = agent_config(local_cloud, tenant, RTU, sim.port, tmp_path / "new-rtu")

        async def agent_running() -> dict:
            stop = asyncio.Event()
            async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
                agent = asyncio.create_task(Agent(config, publisher).run(stop))
                await asyncio.sleep(1.0)  # subscribed to its command topic
                result = await asyncio.to_thread(local_cloud.run_schedule, REREAD_SCHEDULE.name)
                profile = await asyncio.to_thread(
                    eventually,
                    lambda: statuses(local_cloud, key, meter, day, day + timedelta(hours=16)),
                    lambda p: set(tenant_zone_gap) <= metered(p),
                    90.0,
                )
                stop.set()
                await agent
            return {"sweep": result, "profile": profile}

        outcome = run(agent_running())

    # Then the sweep asked for reads (this meter's gap among them) …
    assert outcome["sweep"]["tenants"][TENANT]["sent"] >= 1
    # … and the three quarter hours arrived from the meter, replacing any estimate: the day is
    # whole with the meter's own data
    assert set(tenant_zone_gap) <= metered(outcome["profile"])
    assert len(metered(outcome["profile"])) == 16 * 4
    # and the meter's audit trail shows the sweep's read of exactly that range, answered by the RTU
    commands = requests.get(
        f"{local_cloud.api_url}/v1/meters/{meter}/commands", headers={"x-api-key": key}, timeout=10
    ).json()["items"]
    rereads = [
        c for c in commands if c["kind"] == "read_range" and c["requested_by"] == "hemera:reread-sweep"
    ]
    zulu = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    assert [(c["params"], c["status"]) for c in rereads] == [
        ({"from": zulu(gap_start), "to": zulu(gap_end)}, "acknowledged")
    ]
