"""Modbus meter event logs end to end on the local cloud: simulated hx300 / mx40 meters with
scenario faults → the agent reads their event logs with the maps' cursor protocol and publishes
them (MQTT mTLS) → rules bridge → translate decodes them with the model's `event_codes`, stores
the events and derives the outage → the alarms function → the Customer Portal API.

A tenant of this module only (one RTU, an hx300 and an mx40), so no other test's meters get
these faults:
- the hx300 lost supply yesterday 10:05-10:50 (local) → one `last_gasp` outage of 45 minutes and
  an outage alarm closed at the power up;
- the mx40's terminal cover was opened yesterday at 11:10 → a cover-open alarm and its theft
  score rising from nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hemera.tenants import TenantDefinition
from hemera_agent.agent import Agent, CycleReport
from hemera_agent.clock import SimClock
from hemera_agent.publisher import Mqtt5Publisher
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, meters_from_tenant
from hemera_agent.simulators.scenario import Outage, Tamper
from tests.integration.conftest import agent_config, eventually, local_yesterday, run
from tests.integration.test_alarms_on_local_cloud import alarms_of, get

pytestmark = pytest.mark.integration

TENANT, RTU = "mb-events", "rtu-mbe-01"
HX, MX = "mbe-m-01", "mbe-m-02"  # an hx300 and an mx40


def _tenant() -> TenantDefinition:
    return TenantDefinition.model_validate(
        {
            "id": TENANT,
            "name": "Modbus Events (event-log tests)",
            "country": "BR",
            "timezone": "America/Sao_Paulo",
            "customers": [{"id": "mbe-works", "name": "MBE Works", "load_class": "industry"}],
            "rtus": [{"id": RTU}],
            "meters": [
                {
                    "id": meter,
                    "model": model,
                    "protocol": "modbus",
                    "rtu": RTU,
                    "customer": "mbe-works",
                    "unit_id": unit,
                    "peak_kw": 300,
                }
                for unit, (meter, model) in enumerate(((HX, "hx300"), (MX, "mx40")), start=1)
            ],
        }
    )


@dataclass(frozen=True)
class Published:
    day: datetime  # local midnight at the start of yesterday
    outage: tuple[datetime, datetime]
    opened: datetime
    report: CycleReport
    key: str
    score_before: dict[str, Any]


@pytest.fixture(scope="module")
def published(local_cloud: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """The module's tenant onboarded; its RTU's agent polled the faulted meters once."""
    tenant = _tenant()
    local_cloud.apply_tenant(tenant)
    key = local_cloud.issue_api_key(TENANT, "modbus event-log tests")
    score_before = get(local_cloud, key, f"/v1/meters/{MX}/theft-score").json()
    day = local_yesterday(tenant)
    outage = (day + timedelta(hours=10, minutes=5), day + timedelta(hours=10, minutes=50))
    opened = day + timedelta(hours=11, minutes=10)
    faults = {HX: (Outage(start=outage[0], end=outage[1]),), MX: (Tamper(type="cover_open", at=opened),)}
    with ModbusMeterSimulator(
        meters_from_tenant(tenant, RTU, faults=faults),
        clock=SimClock(start=datetime.now(UTC), speed=1),
        history_start=day,
    ) as sim:
        config = agent_config(local_cloud, tenant, RTU, sim.port, tmp_path_factory.mktemp("mbe-agent"))

        async def once() -> CycleReport:
            async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
                agent = Agent(config, publisher)
                try:
                    return await agent.poll_once()
                finally:
                    agent.close()

        report = run(once())
    yield Published(day, outage, opened, report, key, score_before)


def _range(day: datetime) -> dict[str, str]:
    return {"from": day.date().isoformat(), "to": (day + timedelta(days=1)).date().isoformat()}


def test_the_agent_read_both_event_logs(published: Published) -> None:
    # Load profile, registers and one events envelope per meter; no meter failed
    assert published.report.failed_meters == []
    assert published.report.readouts >= 4  # registers + events of each meter


def test_the_hx300_outage_is_one_record_with_the_duration_the_meter_logged(
    local_cloud: Any, published: Published
) -> None:
    down, up = published.outage
    response = eventually(
        lambda: get(local_cloud, published.key, f"/v1/meters/{HX}/outages", **_range(published.day)),
        lambda r: r.status_code == 200 and any(o["source"] == "last_gasp" for o in r.json()["items"]),
        timeout_s=60,
    )
    (outage,) = response.json()["items"]
    assert outage["source"] == "last_gasp"
    assert (datetime.fromisoformat(outage["start"]), datetime.fromisoformat(outage["end"])) == (down, up)
    assert outage["duration_s"] == 45 * 60
    # and the meter's events list the power down and the power up with the logged duration
    events = get(local_cloud, published.key, f"/v1/meters/{HX}/events", **_range(published.day)).json()
    assert [(e["type"], datetime.fromisoformat(e["at"])) for e in events["items"]] == [
        ("power_down", down),
        ("power_up", up),
    ]
    assert events["items"][1]["detail"]["duration_s"] == 2700


def test_the_hx300_outage_alarm_closes_at_power_up(local_cloud: Any, published: Published) -> None:
    down, up = published.outage
    outages = eventually(
        lambda: alarms_of(local_cloud, published.key, meter_id=HX, type="outage"),
        lambda alarms: any(a["state"] == "closed" for a in alarms),
        timeout_s=60,
    )
    (alarm,) = outages
    assert alarm["state"] == "closed" and alarm["count"] == 1
    assert datetime.fromisoformat(alarm["first_seen"]) == down
    assert datetime.fromisoformat(alarm["closed_at"]) == up
    assert alarm["facts"]["event"] == "power_down" and alarm["facts"]["cleared"]["event"] == "power_up"


def test_the_mx40_cover_opening_raises_an_alarm_and_its_theft_score(
    local_cloud: Any, published: Published
) -> None:
    covers = eventually(
        lambda: alarms_of(local_cloud, published.key, meter_id=MX, type="cover_open"),
        bool,
        timeout_s=60,
    )
    (cover,) = covers
    assert (cover["severity"], cover["state"]) == ("critical", "open")
    assert datetime.fromisoformat(cover["first_seen"]) == published.opened
    assert cover["facts"]["detail"] == {"cover": "terminal"}
    # The score rose from nothing to at least medium, naming the alarm
    assert published.score_before["score"] == 0
    score = get(local_cloud, published.key, f"/v1/meters/{MX}/theft-score").json()
    assert score["score"] >= 30 and score["level"] in ("medium", "high")
    (fact,) = [f for f in score["facts"] if f["kind"] == "cover_open"]
    assert fact["evidence"]["alarm_id"] == cover["id"]
    # the hx300, which had no tamper, raised no cover alarm
    assert alarms_of(local_cloud, published.key, meter_id=HX, type="cover_open") == []
