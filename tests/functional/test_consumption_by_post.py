"""`GET /v1/meters/{id}/consumption?granularity=post` on moto: the stored series of Sul Energia's
sul-m-1002 (tariff A4 verde, ponta 18:00-21:00 on business days) split by post, across the
national holiday of 2026-11-20, held to the OpenAPI contract."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from chalice.test import Client

from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading
from hemera.domain.registry import Meter
from hemera.domain.tenancy import TenantContext
from hemera.services.access import issue_api_key
from hemera.wiring import portal_ports
from tests.conftest import REPO_ROOT
from tests.openapi_contract import assert_conforms

BASE = "http://127.0.0.1:8000"
TENANT, METER = "sul-energia", "sul-m-1002"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
THU = datetime(2026, 11, 19, tzinfo=SAO_PAULO)


def stored_days() -> list[IntervalReading]:
    """Thu 19 and Fri 20 (holiday): 1 kWh a quarter-hour, 2 kWh in 18:00-21:00."""
    readings, cursor = [], THU.astimezone(UTC)
    while cursor < (THU + timedelta(days=2)).astimezone(UTC):
        value = Decimal(2) if 18 <= cursor.astimezone(SAO_PAULO).hour < 21 else Decimal(1)
        unit = CHANNEL_UNITS[Channel.ACTIVE_IMPORT]
        readings.append(
            IntervalReading(METER, Channel.ACTIVE_IMPORT, cursor, 15, value, unit, raw_value=int(value))
        )
        cursor += timedelta(minutes=15)
    return readings


@pytest.fixture
def api(moto_cloud):
    ports = portal_ports(moto_cloud)
    ports.store.merge_intervals(TenantContext(TENANT), stored_days())
    key = issue_api_key(ports.keys, TENANT, "test")
    spec = importlib.util.spec_from_file_location(
        "portal_post_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_post_app"] = module
    spec.loader.exec_module(module)
    with Client(module.app) as client:
        yield client, key, ports


def get(client, key, path, **query):
    headers = {"x-api-key": key}
    url = path + "?" + urlencode(query)
    response = client.http.get(url, headers=headers)
    assert_conforms(BASE + url, headers, response.status_code, dict(response.headers), response.body)
    return response


def test_consumption_per_post_puts_the_holiday_evening_in_fora_ponta(api):
    """Ponta: Thu 12 x 2 = 24 kWh. Fora ponta: Thu 84 x 1 + Fri 84 x 1 + Fri 12 x 2 = 192 kWh."""
    client, key, _ = api

    response = get(
        client, key, f"/v1/meters/{METER}/consumption",
        granularity="post", channel="active_import", **{"from": "2026-11-19", "to": "2026-11-21"},
    )  # fmt: skip

    assert response.status_code == 200, response.body
    document = json.loads(response.body)
    assert (document["granularity"], document["tariff_id"]) == ("post", "a4-verde")
    split = {
        p["post"]: (p["channels"]["active_import"]["energy"], p["expected_intervals"])
        for p in document["periods"]
    }
    assert split == {"ponta": (24, 12), "fora_ponta": (192, 180)}
    assert {p["start"] for p in document["periods"]} == {"2026-11-19T00:00:00-03:00"}


def test_a_meter_without_tariff_has_no_posts(api):
    client, key, ports = api
    ports.registry.put_meter(
        TenantContext(TENANT), Meter(TENANT, "sul-m-9998", "hx300", "modbus", "rtu-poa-01", "shopping-centro")
    )

    response = get(
        client,
        key,
        "/v1/meters/sul-m-9998/consumption",
        granularity="post",
        **{"from": "2026-11-19", "to": "2026-11-21"},
    )

    assert response.status_code == 409
