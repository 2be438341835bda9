"""The Customer Portal API (Chalice test client) on moto, held to the OpenAPI contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from hemera.definitions import TRANSLATE_FUNCTION
from hemera.services.access import issue_api_key
from hemera.wiring import portal_ports
from hemera_local.bridge import LambdaContext, load_handler
from tests.builders import as_sqs_record, hx300_envelope
from tests.openapi_contract import assert_conforms

DAY_UTC = datetime(2026, 11, 20, 3, tzinfo=UTC)  # 2026-11-20 00:00 in São Paulo (UTC-3)
WH = [2000 + 10 * i for i in range(96)]
BASE = "http://127.0.0.1:8000"


@pytest.fixture
def api(moto_cloud):
    """A portal client with one key per demo tenant and a day of data for one São Paulo meter."""
    from hemera_local.cloud import REPO_ROOT

    envelope = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY_UTC, WH)
    topic = "hemera/sul-energia/rtu-poa-01/up/telemetry"
    load_handler(TRANSLATE_FUNCTION)(
        {"Records": [as_sqs_record("m1", envelope.to_json(), topic)]}, LambdaContext("t")
    )
    keys = {
        t: issue_api_key(portal_ports(moto_cloud).keys, t, "test") for t in ("sul-energia", "coastal-power")
    }
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("portal_app", REPO_ROOT / "functions/portal_api/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_app"] = module
    spec.loader.exec_module(module)
    with Client(module.app) as client:
        yield client, keys


def get(client, path, key=None, **query):
    headers = {"x-api-key": key} if key else {}
    url = path + ("?" + urlencode(query) if query else "")
    response = client.http.get(url, headers=headers)
    assert_conforms(BASE + url, headers, response.status_code, dict(response.headers), response.body)
    return response


def test_a_tenant_gets_a_full_local_day_with_offsets_and_exact_values(api):
    client, keys = api
    response = get(
        client, "/v1/meters/sul-m-1001/load-profile", keys["sul-energia"], **{"from": "2026-11-20"}
    )
    assert response.status_code == 200
    body = json.loads(response.body)
    assert body["summary"] == {"intervals": 96, "expected_intervals": 96, "total": sum(WH) / 1000}
    assert body["intervals"][0]["start"] == "2026-11-20T00:00:00-03:00"
    assert body["intervals"][-1]["end"] == "2026-11-21T00:00:00-03:00"
    assert [round(i["value"] * 1000) for i in body["intervals"]] == WH
    assert {i["status"] for i in body["intervals"]} == {"raw"}


def test_another_tenants_meter_is_not_found(api):
    client, keys = api
    response = get(
        client, "/v1/meters/sul-m-1001/load-profile", keys["coastal-power"], **{"from": "2026-11-20"}
    )
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert json.loads(response.body)["status"] == 404


@pytest.mark.parametrize("key", [None, "hmk_not-a-key"])
def test_a_missing_or_unknown_key_is_unauthorized(api, key):
    client, _ = api
    response = get(client, "/v1/meters/sul-m-1001/load-profile", key, **{"from": "2026-11-20"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"from": "yesterday"},
        {"from": "2026-11-20T00:00:00"},
        {"from": "2026-11-20", "to": "2026-11-19"},
        {"from": "2026-11-20", "channel": "volts"},
        {"from": "2026-01-01", "to": "2026-03-01"},
        {"from": "9999-12-31"},
        {"from": "0001-01-01T00:00:00+11:00"},
        {"from": "2026-11-20T00:00:00 11:00"},
    ],
)
def test_bad_queries_are_400_with_a_reason(api, query):
    client, keys = api
    response = client.http.get(
        "/v1/meters/sul-m-1001/load-profile?" + urlencode(query), headers={"x-api-key": keys["sul-energia"]}
    )
    assert response.status_code == 400
    assert json.loads(response.body)["detail"]


def test_a_partial_range_another_channel_and_a_day_without_data(api):
    client, keys = api
    response = get(
        client,
        "/v1/meters/sul-m-1001/load-profile",
        keys["sul-energia"],
        **{"from": "2026-11-20T06:00:00-03:00", "to": "2026-11-20T07:00:00-03:00"},
    )
    assert [i["value"] for i in json.loads(response.body)["intervals"]] == [w / 1000 for w in WH[24:28]]
    response = get(
        client,
        "/v1/meters/sul-m-1001/load-profile",
        keys["sul-energia"],
        channel="active_export",
        **{"from": "2026-11-20"},
    )
    # The meter recorded no export: 96 actual zeros, not missing data.
    assert json.loads(response.body)["summary"] == {"intervals": 96, "expected_intervals": 96, "total": 0}
    response = get(
        client, "/v1/meters/sul-m-1001/load-profile", keys["sul-energia"], **{"from": "2026-11-22"}
    )
    assert json.loads(response.body)["summary"] == {"intervals": 0, "expected_intervals": 96, "total": 0}


def test_health_needs_no_key(api):
    client, _ = api
    assert json.loads(get(client, "/v1/health").body) == {"status": "ok"}


def test_customers_and_meters_are_listed_a_page_at_a_time(api):
    client, keys = api
    key = keys["sul-energia"]
    seen, cursor = [], None
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        body = json.loads(get(client, "/v1/meters", key, **query).body)
        seen.append([m["id"] for m in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [["sul-m-1001", "sul-m-1002"], ["sul-m-1003"]]
    body = json.loads(get(client, "/v1/meters", key, customer_id="hospital-norte").body)
    assert body == {
        "items": [
            {
                "id": "sul-m-1003",
                "customer_id": "hospital-norte",
                "rtu_id": "rtu-poa-01",
                "model": "hd500",
                "protocol": "dlms",
                "multiplier": 1,
                # A Brazilian meter: no NMI, no serial in the tenant file
                "nmi": None,
                "serial": None,
            }
        ],
        "next_cursor": None,
    }
    names = [c["name"] for c in json.loads(get(client, "/v1/customers", key).body)["items"]]
    assert names == ["Hospital Norte", "Metalurgica Sul Ltda", "Shopping Centro"]


def test_a_nem_meter_shows_its_nmi_and_serial(api):
    # Given the Australian demo tenant, whose file gives each meter an NMI and a serial
    client, keys = api
    # When its portal reads a meter
    meter = json.loads(get(client, "/v1/meters/cp-m-2002", keys["coastal-power"]).body)
    # Then the NMI's 10 characters (the file's checksum digit is not part of it) and the serial
    assert (meter["nmi"], meter["serial"]) == ("NCCC000102", "HX3A0012002")


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "201"}, {"limit": "ten"}, {"cursor": "bm90LWEtY3Vyc29y"}]
)
def test_bad_limits_and_cursors_are_400(api, query):
    client, keys = api
    response = get(client, "/v1/customers", keys["sul-energia"], **query)
    assert response.status_code == 400


def test_a_single_resource_has_an_etag_and_answers_304_to_it(api):
    client, keys = api
    headers = {"x-api-key": keys["coastal-power"]}
    first = client.http.get("/v1/customers/harbour-offices", headers=headers)
    assert json.loads(first.body)["tax_id"] == "51 824 753 556"
    etag = first.headers["ETag"]
    again = client.http.get(
        "/v1/customers/harbour-offices", headers=headers | {"If-None-Match": f'W/{etag}, "x"'}
    )
    assert (again.status_code, again.body, again.headers["ETag"]) == (304, b"", etag)
    other = client.http.get("/v1/meters/cp-m-2001", headers=headers | {"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["ETag"] != etag


def test_the_request_id_is_echoed_or_made(api):
    client, keys = api
    mine = client.http.get(
        "/v1/meters", headers={"x-api-key": keys["sul-energia"], "x-request-id": "portal-42"}
    )
    assert mine.headers["x-request-id"] == "portal-42"
    made = client.http.get("/v1/meters/nope", headers={"x-request-id": "bad id\nwith newline"})
    assert made.status_code == 401 and made.headers["x-request-id"] not in ("", "bad id\nwith newline")


def test_a_customer_users_key_sees_only_its_customers_meters(api, moto_cloud):
    client, _ = api
    key = issue_api_key(portal_ports(moto_cloud).keys, "sul-energia", "portal", customer_id="shopping-centro")
    meters = json.loads(get(client, "/v1/meters", key).body)["items"]
    assert [m["id"] for m in meters] == ["sul-m-1002"]
    assert [c["id"] for c in json.loads(get(client, "/v1/customers", key).body)["items"]] == [
        "shopping-centro"
    ]
    assert get(client, "/v1/meters/sul-m-1001/load-profile", key, **{"from": "2026-11-20"}).status_code == 404
    assert get(client, "/v1/meters/sul-m-1002/load-profile", key, **{"from": "2026-11-20"}).status_code == 200
