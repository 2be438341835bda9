"""Per-tenant rate limits of the portal (Chalice test client on moto): the request past a tenant's
allowance is 429 with `Retry-After`, while another tenant is still served."""

from __future__ import annotations

import importlib.util
import json
import sys
import time

import boto3
import pytest
from chalice.test import Client

from hemera.definitions import READINGS_TABLE
from hemera.domain.rate_limits import RateLimit
from hemera.domain.tenancy import TenantContext
from hemera.services.access import issue_api_key
from hemera.wiring import api_limit_store, portal_ports
from tests.conftest import REPO_ROOT
from tests.openapi_contract import assert_conforms

BASE = "http://127.0.0.1:8000"
SUL_ALLOWANCE = 3


@pytest.fixture
def api(moto_cloud):
    # Sul Energia's allowance as onboarding stores it from an `api:` section
    api_limit_store(moto_cloud).put_limit(TenantContext("sul-energia"), RateLimit(SUL_ALLOWANCE))
    keys = {
        t: issue_api_key(portal_ports(moto_cloud).keys, t, "test") for t in ("sul-energia", "coastal-power")
    }
    spec = importlib.util.spec_from_file_location(
        "portal_app_rates", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_app_rates"] = module
    spec.loader.exec_module(module)
    # The counts below are of one one-minute window: do not start just before it turns.
    if time.time() % 60 > 55:
        time.sleep(61 - time.time() % 60)
    with Client(module.app) as client:
        yield client, keys


def get(client, path, key=None):
    headers = {"x-api-key": key} if key else {}
    response = client.http.get(path, headers=headers)
    assert_conforms(BASE + path, headers, response.status_code, dict(response.headers), response.body)
    return response


def test_the_request_past_a_tenants_allowance_is_429_and_another_tenant_is_still_served(api):
    client, keys = api
    served = [get(client, "/v1/meters", keys["sul-energia"]) for _ in range(SUL_ALLOWANCE)]
    assert [r.status_code for r in served] == [200] * SUL_ALLOWANCE
    assert [r.headers["RateLimit-Remaining"] for r in served] == ["2", "1", "0"]
    assert served[0].headers["RateLimit-Limit"] == str(SUL_ALLOWANCE)

    refused = get(client, "/v1/meters", keys["sul-energia"])

    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert json.loads(refused.body)["status"] == 429
    other = get(client, "/v1/meters", keys["coastal-power"])
    assert other.status_code == 200
    assert other.headers["RateLimit-Limit"] == "1300"  # its tenant file: 1,200 a minute + burst 100


def test_unauthenticated_requests_are_401_and_spend_no_allowance(api):
    client, keys = api
    for _ in range(SUL_ALLOWANCE + 2):
        assert get(client, "/v1/meters", "hmk_not-a-key").status_code == 401
    assert get(client, "/v1/meters", keys["sul-energia"]).headers["RateLimit-Remaining"] == "2"


def test_the_counter_is_one_item_per_tenant_and_window_that_expires(api):
    client, keys = api
    get(client, "/v1/meters", keys["sul-energia"])
    get(client, "/v1/customers", keys["sul-energia"])
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(READINGS_TABLE.local_name)
    items = table.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": "T#sul-energia#RATE"}
    )["Items"]
    (item,) = items
    assert item["count"] == 2
    window_start = int(item["sk"].removeprefix("W#"))
    assert window_start % 60 == 0
    assert item["expires_at"] > window_start + 60
