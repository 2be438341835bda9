"""Device events and outages through the portal on moto (held to the OpenAPI contract): a meter's
events a page at a time, its outages with their durations, and the tenant's outages as an
operator and as a customer user sees them."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from hemera.domain.meter_events import EventType, MeterEvent, Outage, OutageSource, Subject
from hemera.domain.tenancy import TenantContext
from hemera.services.access import issue_api_key
from hemera.wiring import device_event_ports, portal_ports
from tests.conftest import REPO_ROOT
from tests.openapi_contract import assert_conforms

TENANT, DEVICE = "sul-energia", "rtu-poa-01"
CTX = TenantContext(TENANT)
INDUSTRY, MALL = "sul-m-1001", "sul-m-1002"  # metalurgica-sul's and shopping-centro's
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8000"
DAY = {"from": "2026-11-20", "to": "2026-11-21"}


def event(kind: EventType, minutes: int, code: int) -> MeterEvent:
    return MeterEvent(
        Subject.METER, INDUSTRY, DEVICE, kind, T0 + timedelta(minutes=minutes), code, {"log": "x"}
    )


@pytest.fixture
def api(moto_cloud):
    ports = device_event_ports(moto_cloud)
    ports.events.record(
        CTX,
        [
            event(EventType.POWER_DOWN, 0, 1),
            event(EventType.COVER_OPEN, 10, 40),
            event(EventType.POWER_UP, 45, 2),
        ],
    )
    ports.events.save_outages(
        CTX,
        [
            Outage(INDUSTRY, T0, T0 + timedelta(minutes=45), OutageSource.LAST_GASP),
            Outage(MALL, T0 + timedelta(hours=2), None, OutageSource.LAST_GASP),
        ],
    )
    keys = portal_ports(moto_cloud).keys
    operator = issue_api_key(keys, TENANT, "operator")
    mall = issue_api_key(keys, TENANT, "mall", customer_id="shopping-centro")
    spec = importlib.util.spec_from_file_location(
        "portal_events_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_events_app"] = module
    spec.loader.exec_module(module)
    with Client(module.app) as client:
        yield client, operator, mall


def get(client, key, path, **query):
    headers = {"x-api-key": key}
    url = path + ("?" + urlencode(query) if query else "")
    response = client.http.get(url, headers=headers)
    assert_conforms(BASE + url, headers, response.status_code, dict(response.headers), response.body)
    return response


def test_a_meters_events_come_oldest_first_a_page_at_a_time(api):
    client, operator, _ = api
    first = json.loads(get(client, operator, f"/v1/meters/{INDUSTRY}/events", limit="2", **DAY).body)
    assert [(e["type"], e["at"], e["code"]) for e in first["items"]] == [
        ("power_down", "2026-11-20T14:00:00+00:00", 1),
        ("cover_open", "2026-11-20T14:10:00+00:00", 40),
    ]
    rest = json.loads(
        get(client, operator, f"/v1/meters/{INDUSTRY}/events", cursor=first["next_cursor"], **DAY).body
    )
    assert [e["type"] for e in rest["items"]] == ["power_up"] and rest["next_cursor"] is None
    only = json.loads(get(client, operator, f"/v1/meters/{INDUSTRY}/events", type="cover_open", **DAY).body)
    assert [e["type"] for e in only["items"]] == ["cover_open"]


@pytest.mark.parametrize(
    "query",
    [
        {"type": "meltdown", **DAY},
        {"cursor": "bm90LWEtY3Vyc29y", **DAY},
        {"from": "2026-10-01", "to": "2026-11-21"},  # more than 31 days
        {"from": "2026-11-20"},
    ],
)
def test_bad_event_queries_are_400(api, query):
    client, operator, _ = api
    assert get(client, operator, f"/v1/meters/{INDUSTRY}/events", **query).status_code == 400


def test_a_meters_outages_carry_their_duration_and_an_open_one_has_none(api):
    client, operator, _ = api
    industry = json.loads(get(client, operator, f"/v1/meters/{INDUSTRY}/outages", **DAY).body)
    assert industry["items"] == [
        {
            "meter_id": INDUSTRY,
            "start": "2026-11-20T14:00:00+00:00",
            "end": "2026-11-20T14:45:00+00:00",
            "duration_s": 2700,
            "source": "last_gasp",
        }
    ]
    mall = json.loads(get(client, operator, f"/v1/meters/{MALL}/outages", **DAY).body)
    assert [(o["end"], o["duration_s"]) for o in mall["items"]] == [(None, None)]


def test_the_tenants_outages_hold_only_a_customer_users_own_meters(api):
    client, operator, mall = api
    everything = json.loads(get(client, operator, "/v1/outages", **DAY).body)
    own = json.loads(get(client, mall, "/v1/outages", **DAY).body)
    assert [o["meter_id"] for o in everything["items"]] == [INDUSTRY, MALL]
    assert [o["meter_id"] for o in own["items"]] == [MALL]
    # and another customer's meter is not found, as an unknown one
    assert get(client, mall, f"/v1/meters/{INDUSTRY}/outages", **DAY).status_code == 404
    assert get(client, mall, f"/v1/meters/{INDUSTRY}/events", **DAY).status_code == 404
