"""Instantaneous values end to end on moto: the translate function stores them from the agent's
frames, and the portal serves them (held to the OpenAPI contract)."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from hemera.definitions import TRANSLATE_FUNCTION
from hemera.domain.instantaneous import Quantity
from hemera.domain.registry import Meter
from hemera.domain.tenancy import TenantContext
from hemera.services.access import issue_api_key
from hemera.wiring import ingest_ports, instantaneous_store, portal_ports
from hemera_local.bridge import LambdaContext, load_handler
from tests.builders import as_sqs_record
from tests.conftest import REPO_ROOT
from tests.instantaneous_builders import hd500_instantaneous_envelope, mx40_instantaneous_envelope
from tests.openapi_contract import assert_conforms

TENANT, DEVICE = "sul-energia", "rtu-poa-01"
TOPIC = f"hemera/{TENANT}/{DEVICE}/up/telemetry"
CTX = TenantContext(TENANT)
MX40, HD500 = "sul-m-9040", "sul-m-1003"
AT = datetime(2026, 11, 20, 13, 0, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8000"


@pytest.fixture
def mx40_meter(moto_cloud):
    """An mx40 behind 200/5 A CTs: multiplier 40."""
    ingest_ports(moto_cloud).registry.put_meter(
        CTX, Meter(TENANT, MX40, "mx40", "modbus", DEVICE, "metalurgica-sul", Decimal(40))
    )
    return moto_cloud


def invoke(*records: dict) -> dict:
    return load_handler(TRANSLATE_FUNCTION)({"Records": list(records)}, LambdaContext("translate"))


def stored(settings, meter: str):
    return instantaneous_store(settings).newest_first(
        CTX, meter, AT - timedelta(days=1), AT + timedelta(days=1), 10
    )


def test_translate_stores_mx40_values_on_the_primary_side_once(mx40_meter):
    body = mx40_instantaneous_envelope(TENANT, DEVICE, MX40, AT).to_json()
    # When the envelope arrives, and is delivered again
    assert invoke(as_sqs_record("i1", body, TOPIC)) == {"batchItemFailures": []}
    assert invoke(as_sqs_record("i1", body, TOPIC)) == {"batchItemFailures": []}
    # Then one reading is stored, P and Q scaled by 40, V and PF as measured
    (reading,) = stored(mx40_meter, MX40)
    assert reading.captured_at == AT
    assert reading.values[Quantity.ACTIVE_POWER] == Decimal(-60000)
    assert reading.values[Quantity.REACTIVE_POWER] == Decimal(32000)
    assert reading.values[Quantity.VOLTAGE_L1] == Decimal("230.1")
    assert reading.values[Quantity.POWER_FACTOR] == Decimal("-0.985")
    assert not list(ingest_ports(mx40_meter).quarantine.list(TENANT))


def test_translate_stores_hd500_values(moto_cloud):
    body = hd500_instantaneous_envelope(TENANT, DEVICE, HD500, AT).to_json()
    assert invoke(as_sqs_record("d1", body, TOPIC)) == {"batchItemFailures": []}
    (reading,) = stored(moto_cloud, HD500)
    assert reading.values[Quantity.CURRENT_L1] == Decimal("12.34")
    assert reading.values[Quantity.FREQUENCY] == Decimal("49.98")
    assert Quantity.ACTIVE_POWER not in reading.values


@pytest.fixture
def api(mx40_meter):
    for seq in range(3):  # 13:00, 13:05, 13:10 UTC
        body = mx40_instantaneous_envelope(
            TENANT, DEVICE, MX40, AT + timedelta(minutes=5 * seq), seq
        ).to_json()
        invoke(as_sqs_record(f"m{seq}", body, TOPIC))
    key = issue_api_key(portal_ports(mx40_meter).keys, TENANT, "test")
    spec = importlib.util.spec_from_file_location(
        "portal_instantaneous_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_instantaneous_app"] = module
    spec.loader.exec_module(module)
    with Client(module.app) as client:
        yield client, key


def get(client, key, path, **query):
    headers = {"x-api-key": key}
    url = path + ("?" + urlencode(query) if query else "")
    response = client.http.get(url, headers=headers)
    assert_conforms(BASE + url, headers, response.status_code, dict(response.headers), response.body)
    return response


def test_the_portal_serves_the_readings_newest_first_in_the_range(api):
    client, key = api
    response = get(
        client,
        key,
        f"/v1/meters/{MX40}/instantaneous",
        **{"from": "2026-11-20T10:00:00-03:00", "to": "2026-11-20"},
    )
    assert response.status_code == 400  # to before from
    response = get(
        client, key, f"/v1/meters/{MX40}/instantaneous", **{"from": "2026-11-20", "to": "2026-11-21"}
    )
    document = json.loads(response.body)
    assert response.status_code == 200
    assert [r["captured_at"] for r in document["readings"]] == [
        "2026-11-20T13:10:00Z",
        "2026-11-20T13:05:00Z",
        "2026-11-20T13:00:00Z",
    ]
    assert document["readings"][0]["values"]["active_power"] == -60000
    assert document["readings"][0]["values"]["frequency"] == 50.02
    assert document["truncated"] is False and document["units"]["reactive_power"] == "var"


def test_the_portal_pages_with_limit_and_a_half_open_range(api):
    client, key = api
    response = get(
        client,
        key,
        f"/v1/meters/{MX40}/instantaneous",
        **{"from": "2026-11-20T10:00:00-03:00", "to": "2026-11-20T10:10:00-03:00", "limit": "1"},
    )
    document = json.loads(response.body)
    assert [r["captured_at"] for r in document["readings"]] == ["2026-11-20T13:05:00Z"]
    assert document["truncated"] is True


def test_another_customers_or_unknown_meter_is_not_found(api):
    client, key = api
    response = get(
        client, key, "/v1/meters/cp-m-2001/instantaneous", **{"from": "2026-11-20", "to": "2026-11-21"}
    )
    assert response.status_code == 404
