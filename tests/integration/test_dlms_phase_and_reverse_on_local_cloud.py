"""End to end on the local cloud: an HD-500 (DLMS simulator) whose phase L2 is lost for an hour and
whose energy then flows backwards for an hour (scenario faults) → the agent reads its power quality
and fraud logs (MQTT mTLS) → translate decodes IDIS 83/86 and the HD-500's own 231/232 → the
alarms function → the Customer Portal API lists the phase-loss event naming phase 2, a phase-loss
alarm closed when the phase returned, a reverse-energy alarm, and the meter's theft score rising
with the reverse energy as a fact."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from hemera_agent.simulators.scenario import PhaseLoss, ReverseEnergy
from tests.integration.conftest import eventually, local_yesterday, poll_dlms_meter_once
from tests.openapi_contract import assert_conforms

pytestmark = pytest.mark.integration

# Coastal Power's hd500 (Sul Energia's is the events test's, whose event list is exact).
TENANT, RTU, METER = "coastal-power", "rtu-syd-01", "cp-m-2003"
PASSWORD = "hd500-lls"


@dataclasses.dataclass(frozen=True)
class Published:
    day: dict[str, str]  # from/to query of yesterday and today
    lost: datetime
    back: datetime
    reversed: datetime
    forward: datetime
    score_before: int


def get(cloud: Any, key: str, path: str, **params: str) -> requests.Response:
    response = requests.get(f"{cloud.api_url}{path}", params=params, headers={"x-api-key": key}, timeout=10)
    assert_conforms(
        response.url, {"x-api-key": key}, response.status_code, dict(response.headers), response.content
    )
    return response


def alarms_of(cloud: Any, key: str, **params: str) -> list[dict[str, Any]]:
    response = get(cloud, key, "/v1/alarms", **params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


@pytest.fixture(scope="module")
def faulted_meter_published(local_cloud, api_keys, tmp_path_factory) -> Published:
    """Yesterday (local) L2 was lost 14:00-15:00 and the energy flowed backwards 16:00-17:00; the
    agent polled the meter once and published everything it read."""
    tenant = local_cloud.tenants[TENANT]
    start = local_yesterday(tenant)
    lost, back = start + timedelta(hours=14), start + timedelta(hours=15)
    reversed_, forward = start + timedelta(hours=16), start + timedelta(hours=17)
    before = get(local_cloud, api_keys[TENANT], f"/v1/meters/{METER}/theft-score")
    assert before.status_code == 200, before.text
    faults = (PhaseLoss(phase=2, start=lost, end=back), ReverseEnergy(start=reversed_, end=forward))
    report = poll_dlms_meter_once(
        local_cloud, tenant, RTU, METER, faults, start, tmp_path_factory.mktemp("phase-agent"), PASSWORD
    )
    assert report.failed_meters == [] and report.readouts >= 1
    day = {"from": start.date().isoformat(), "to": (start + timedelta(days=1)).date().isoformat()}
    return Published(day, lost, back, reversed_, forward, before.json()["score"])


def test_the_phase_loss_and_its_return_are_listed_with_phase_2(
    local_cloud, api_keys, faulted_meter_published
):
    p = faulted_meter_published
    wanted = {"phase_loss", "phase_restored", "reverse_energy", "reverse_energy_cleared"}

    def ours(response: requests.Response) -> list[dict[str, Any]]:
        return (
            [e for e in response.json()["items"] if e["type"] in wanted]
            if response.status_code == 200
            else []
        )

    response = eventually(
        lambda: get(local_cloud, api_keys[TENANT], f"/v1/meters/{METER}/events", **p.day),
        lambda r: len(ours(r)) >= 4,
    )
    assert response.status_code == 200, response.text
    events = [(e["type"], datetime.fromisoformat(e["at"]), e["code"], e["detail"]) for e in ours(response)]
    assert events == [
        ("phase_loss", p.lost, 83, {"log": "power_quality", "phase": 2}),
        ("phase_restored", p.back, 86, {"log": "power_quality", "phase": 2}),
        ("reverse_energy", p.reversed, 231, {"log": "fraud"}),
        ("reverse_energy_cleared", p.forward, 232, {"log": "fraud"}),
    ]
    # another tenant's key does not find the meter
    other = get(local_cloud, api_keys["sul-energia"], f"/v1/meters/{METER}/events", **p.day)
    assert other.status_code == 404


def test_a_phase_loss_alarm_names_phase_2_and_closes_when_the_phase_returns(
    local_cloud, api_keys, faulted_meter_published
):
    p = faulted_meter_published
    key = api_keys[TENANT]
    found = eventually(
        lambda: alarms_of(local_cloud, key, meter_id=METER, type="phase_loss"),
        lambda alarms: any(
            datetime.fromisoformat(a["first_seen"]) == p.lost and a["state"] == "closed" for a in alarms
        ),
        timeout_s=60,
    )
    (alarm,) = [a for a in found if datetime.fromisoformat(a["first_seen"]) == p.lost]
    assert (alarm["severity"], alarm["state"], alarm["count"]) == ("major", "closed", 1)
    assert datetime.fromisoformat(alarm["closed_at"]) == p.back
    assert alarm["facts"]["event"] == "phase_loss" and alarm["facts"]["code"] == 83
    assert alarm["facts"]["detail"]["phase"] == 2
    assert alarm["facts"]["cleared"]["event"] == "phase_restored"


def test_reverse_energy_raises_an_alarm_and_the_theft_score_names_it(
    local_cloud, api_keys, faulted_meter_published
):
    p = faulted_meter_published
    key = api_keys[TENANT]
    found = eventually(
        lambda: alarms_of(local_cloud, key, meter_id=METER, type="reverse_energy"),
        lambda alarms: any(
            datetime.fromisoformat(a["first_seen"]) == p.reversed and a["state"] == "closed" for a in alarms
        ),
        timeout_s=60,
    )
    (alarm,) = [a for a in found if datetime.fromisoformat(a["first_seen"]) == p.reversed]
    assert (alarm["severity"], alarm["facts"]["code"]) == ("major", 231)
    assert datetime.fromisoformat(alarm["closed_at"]) == p.forward

    response = get(local_cloud, key, f"/v1/meters/{METER}/theft-score")
    assert response.status_code == 200, response.text
    score = response.json()
    (fact,) = [f for f in score["facts"] if f["kind"] == "reverse_energy"]
    # a closed alarm of the last 30 days counts half its weight (20)
    assert fact["points"] == 10 and fact["evidence"]["alarm_id"] == alarm["id"]
    (phase,) = [f for f in score["facts"] if f["kind"] == "phase_loss"]
    assert phase["points"] == 5
    assert score["score"] >= p.score_before + 15 or score["score"] == 100
    # a meter of another tenant is not found
    assert get(local_cloud, api_keys["sul-energia"], f"/v1/meters/{METER}/theft-score").status_code == 404
