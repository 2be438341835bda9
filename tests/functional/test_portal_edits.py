"""Interval edits through the portal API on moto: an operator edits a validated day, VEE runs at
once and the answer names the new data version; the load profile serves the final data with its
provenance and every earlier version on request; only admins and operators may edit."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from chalice.test import Client

from hemera.domain.readings import Channel, IntervalReading, Unit
from hemera.domain.tenancy import TenantContext
from hemera.services.access import issue_api_key
from hemera.services.vee import CAUSE_INGEST, DayKey, local_day_span, recompute_days
from hemera.wiring import portal_ports, vee_ports
from tests.conftest import REPO_ROOT
from tests.openapi_contract import assert_conforms

BASE = "http://127.0.0.1:8000"
TENANT, METER, OTHER_METER = "coastal-power", "cp-m-2001", "sul-m-1001"
CTX = TenantContext(TENANT)
SYDNEY = ZoneInfo("Australia/Sydney")
DAY = date(2026, 11, 10)
GAP = range(40, 43)  # 10:00-10:45 AEDT, estimated linearly


@pytest.fixture
def api(moto_cloud, user_pool):
    # Given a day of the meter, validated by VEE with a 45-minute gap estimated
    vee = vee_ports(moto_cloud)
    start, _end = local_day_span(DAY, SYDNEY)
    vee.readings.merge_intervals(
        CTX,
        [
            IntervalReading(
                METER, Channel.ACTIVE_IMPORT, start + timedelta(minutes=15 * n), 15, Decimal(n), Unit.KWH
            )
            for n in range(96)
            if n not in GAP
        ],
    )
    tenant = vee.registry.get_tenant(CTX)
    assert tenant is not None
    stored, failed = recompute_days(
        vee, CTX, tenant, [DayKey(METER, Channel.ACTIVE_IMPORT, DAY)], CAUSE_INGEST, datetime.now(UTC)
    )
    assert failed == {} and [c.version for c in stored] == [1]
    spec = importlib.util.spec_from_file_location(
        "portal_edits_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_edits_app"] = module
    spec.loader.exec_module(module)
    with Client(module.app) as client:
        yield client, user_pool, moto_cloud


def bearer(pool, user):
    return {"Authorization": "Bearer " + pool.id_token(user), "Content-Type": "application/json"}


EDIT = {
    "channel": "active_import",
    "edits": [{"start": "2026-11-10T10:15:00+11:00", "value": 7.5, "reason": "check meter reading"}],
}


def post(client, headers, body=EDIT, meter=METER):
    url = f"/v1/meters/{meter}/edits"
    payload = json.dumps(body).encode()
    response = client.http.post(url, headers=headers, body=payload)
    assert_conforms(
        BASE + url, headers, response.status_code, dict(response.headers), response.body, "POST", payload
    )
    return response


def load_profile(client, headers, **query):
    url = f"/v1/meters/{METER}/load-profile?" + urlencode({"from": DAY.isoformat(), **query})
    response = client.http.get(url, headers=headers)
    assert_conforms(BASE + url, headers, response.status_code, dict(response.headers), response.body)
    return response


def interval_at(document, local_start):
    (found,) = [i for i in document["intervals"] if i["start"] == local_start]
    return found


def test_an_operators_edit_creates_a_new_version_and_the_old_one_stays_retrievable(api):
    client, pool, _ = api
    headers = bearer(pool, "otto.operator")

    # Before: the estimated interval, with its provenance
    before = json.loads(load_profile(client, headers).body)
    assert before["data_versions"] == [{"local_day": "2026-11-10", "version": 1}]
    estimated = interval_at(before, "2026-11-10T10:15:00+11:00")
    assert (estimated["value"], estimated["status"], estimated["method_flag"], estimated["espi_quality"]) == (
        41,
        "estimated",
        17,
        9,
    )
    assert (estimated["rule_id"], estimated["data_version"], estimated["raw_value"]) == (
        "estimate.linear",
        1,
        None,
    )

    # When the operator edits it
    response = post(client, headers)

    # Then the answer names the day's new version, and the load profile serves it as edited
    assert response.status_code == 200, response.body
    result = json.loads(response.body)
    assert result["edits"] == 1
    assert [(d["local_day"], d["version"], d["previous_version"]) for d in result["days"]] == [
        ("2026-11-10", 2, 1)
    ]
    after = json.loads(load_profile(client, headers).body)
    edited = interval_at(after, "2026-11-10T10:15:00+11:00")
    assert (edited["value"], edited["status"], edited["espi_quality"], edited["data_version"]) == (
        7.5,
        "edited",
        7,
        2,
    )
    # the rest of the gap is interpolated again, towards the edited value
    assert [interval_at(after, f"2026-11-10T10:{m}:00+11:00")["value"] for m in ("00", "30")] == [
        23.25,
        25.25,
    ]
    assert after["summary"]["total"] == before["summary"]["total"] - (40 + 41 + 42) + (23.25 + 7.5 + 25.25)

    # And version 1 is still served on request, as it was
    again = json.loads(load_profile(client, headers, version="1").body)
    assert again["intervals"] == before["intervals"]
    assert again["data_versions"] == [{"local_day": "2026-11-10", "version": 1}]


def test_the_csv_carries_the_vee_columns(api):
    client, pool, _ = api
    response = load_profile(client, bearer(pool, "otto.operator"), format="csv")
    lines = response.body.decode().splitlines()
    header = lines[0].split(",")
    row = dict(zip(header, lines[1 + GAP[0]].split(","), strict=True))
    assert header[-6:] == [
        "method_flag",
        "reason_code",
        "espi_quality",
        "rule_id",
        "rule_version",
        "data_version",
    ]
    assert (row["start"], row["value"], row["status"], row["method_flag"], row["data_version"]) == (
        "2026-11-10T10:00:00+11:00",
        "40.000",
        "estimated",
        "17",
        "1",
    )


def test_customers_and_customer_keys_may_not_edit_their_own_meter(api, moto_cloud):
    client, pool, _ = api
    # hugo.harbour is a customer user of harbour-offices, which owns cp-m-2001
    assert post(client, bearer(pool, "hugo.harbour")).status_code == 403
    key = issue_api_key(
        portal_ports(moto_cloud).keys, TENANT, "harbour portal", customer_id="harbour-offices"
    )
    refused = post(client, {"x-api-key": key, "Content-Type": "application/json"})
    assert refused.status_code == 403
    assert json.loads(refused.body)["type"] == "urn:hemera:problem:edit_forbidden"
    # nothing was stored: still version 1
    versions = json.loads(load_profile(client, bearer(pool, "otto.operator")).body)["data_versions"]
    assert versions == [{"local_day": "2026-11-10", "version": 1}]


def test_a_meter_out_of_reach_is_not_found_even_for_an_operator(api):
    client, pool, _ = api
    assert post(client, bearer(pool, "otto.operator"), meter=OTHER_METER).status_code == 404
    assert post(client, bearer(pool, "bea.bayside")).status_code == 404  # another customer's meter
    assert post(client, bearer(pool, "sara.sul")).status_code == 404  # another tenant's operator


@pytest.mark.parametrize(
    "body",
    [
        {"edits": []},
        {"edits": [{"start": "2026-11-10T10:15:00", "value": 1, "reason": "no offset"}]},
        {"edits": [{"start": "2026-11-10T10:17:00+11:00", "value": 1, "reason": "not an interval start"}]},
        {"edits": [{"start": "2026-11-10T10:15:00+11:00", "value": -1, "reason": "negative"}]},
        {"edits": [{"start": "2026-11-10T10:15:00+11:00", "value": 1}]},
        {"channel": "voltage", "edits": [{"start": "2026-11-10T10:15:00+11:00", "value": 1, "reason": "x"}]},
        {
            "edits": [
                {"start": (datetime.now(UTC) + timedelta(days=2)).isoformat(), "value": 1, "reason": "future"}
            ]
        },
    ],
)
def test_a_malformed_edit_is_a_bad_request(api, body):
    client, pool, _ = api
    response = post(client, bearer(pool, "otto.operator"), body)
    assert response.status_code == 400, response.body
