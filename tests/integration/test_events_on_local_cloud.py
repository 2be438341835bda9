"""End to end on the local cloud: a DLMS meter with an outage and a tamper (scenario faults) → the
agent reads its event logs and publishes them (MQTT mTLS) → rules bridge → translate stores the
events and derives the outage → the Customer Portal API lists them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import requests

from hemera_agent.simulators.scenario import Outage, Tamper
from tests.integration.conftest import eventually, local_yesterday, poll_dlms_meter_once
from tests.openapi_contract import assert_conforms

pytestmark = pytest.mark.integration

TENANT, RTU, METER = "sul-energia", "rtu-poa-01", "sul-m-1003"  # the hospital's hd500
PASSWORD = "hd500-lls"


@pytest.fixture(scope="module")
def faulted_meter_published(local_cloud, tmp_path_factory):
    """Yesterday (local) the meter lost supply 10:05-10:50 and its terminal cover was opened at
    11:10; the agent polled it once and published everything it read."""
    tenant = local_cloud.tenants[TENANT]
    start = local_yesterday(tenant)
    outage_start, outage_end = start + timedelta(hours=10, minutes=5), start + timedelta(hours=10, minutes=50)
    opened = start + timedelta(hours=11, minutes=10)
    faults = (
        Outage(start=outage_start, end=outage_end),
        Tamper(type="cover_open", at=opened),
    )
    report = poll_dlms_meter_once(
        local_cloud, tenant, RTU, METER, faults, start, tmp_path_factory.mktemp("agent"), PASSWORD
    )
    return start, (outage_start, outage_end, opened), report


def get(local_cloud, key, path, **params) -> requests.Response:
    response = requests.get(
        f"{local_cloud.api_url}{path}", params=params, headers={"x-api-key": key}, timeout=10
    )
    assert_conforms(
        response.url, {"x-api-key": key}, response.status_code, dict(response.headers), response.content
    )
    return response


def test_the_outage_arrives_with_the_duration_the_meter_logged(
    local_cloud, api_keys, faulted_meter_published
):
    start, (outage_start, outage_end, _), report = faulted_meter_published
    assert report.failed_meters == [] and report.readouts >= 1
    day = {"from": start.date().isoformat(), "to": (start + timedelta(days=1)).date().isoformat()}
    response = eventually(
        lambda: get(local_cloud, api_keys[TENANT], f"/v1/meters/{METER}/outages", **day),
        lambda r: r.status_code == 200 and r.json()["items"],
    )
    assert response.status_code == 200
    (outage,) = response.json()["items"]
    assert outage["source"] == "last_gasp"
    assert datetime.fromisoformat(outage["start"]) == outage_start
    assert datetime.fromisoformat(outage["end"]) == outage_end
    assert outage["duration_s"] == 45 * 60
    # and the tenant-wide list holds it too
    listed = get(local_cloud, api_keys[TENANT], "/v1/outages", **day).json()["items"]
    assert [(o["meter_id"], o["duration_s"]) for o in listed if o["meter_id"] == METER] == [(METER, 2700)]


def test_the_events_list_the_power_down_the_power_up_and_the_cover_opening(
    local_cloud, api_keys, faulted_meter_published
):
    start, (outage_start, outage_end, opened), _ = faulted_meter_published
    day = {"from": start.date().isoformat(), "to": (start + timedelta(days=1)).date().isoformat()}
    response = eventually(
        lambda: get(local_cloud, api_keys[TENANT], f"/v1/meters/{METER}/events", **day),
        lambda r: r.status_code == 200 and len(r.json()["items"]) >= 3,
    )
    events = [(e["type"], datetime.fromisoformat(e["at"])) for e in response.json()["items"]]
    assert events == [
        ("power_down", outage_start),
        ("power_up", outage_end),
        ("cover_open", opened),
    ]
    # another tenant's key does not find the meter
    other = get(local_cloud, api_keys["coastal-power"], f"/v1/meters/{METER}/events", **day)
    assert other.status_code == 404
