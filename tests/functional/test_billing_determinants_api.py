"""`GET /v1/meters/{id}/billing-determinants` on moto: the demo tenant Sul Energia registered from
its tenant file (tariff A4 azul of sul-m-1001 carried into the registry), final days stored with
the DynamoDB final-series adapter, answers held to the OpenAPI contract.

sul-m-1001: A4 azul, Group A: billed on the calendar month (reading day 1) -> period 2026-11 is
2026-11-01 … 2026-11-30; ponta 18:00-21:00 on business days; contract ponta 600 kW, fora ponta
900 kW. Final days of two days: Fri 2026-11-06 (business day) and Mon 2026-11-02 (Finados, a
holiday).

Active import per quarter-hour: 100 kWh (400 kW); 18:00-21:00 on both days 160 kWh (640 kW);
Fri 19:00 170 kWh (680 kW), estimated. Reactive R+ 20 kvarh per quarter-hour, except Fri
10:00-11:00 75 kvarh (hour P 400, Q 300, S 500, fT 0.8); R- 0.

By hand: ponta kWh = 11 x 160 + 170 = 1,930 (the holiday evening is fora ponta);
fora ponta kWh = Fri 84 x 100 + Mon (84 x 100 + 12 x 160) = 8,400 + 10,320 = 18,720;
ponta demand 680 kW > 600 x 1.05 = 630 -> overrun 680 - 600 = 80 kW, billed 680;
fora ponta demand 640 kW (Mon 18:00) <= 900 -> billed 900, no overrun;
ERE = 400 x (0.92 / 0.8 - 1) = 60 kWh (one hour); DRE fora ponta = max(0, 460 - 900) = 0.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from datetime import date
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from hemera.domain.final_series import FinalStatus
from hemera.domain.readings import Channel
from hemera.domain.registry import Meter
from hemera.domain.tenancy import TenantContext
from hemera.services.access import issue_api_key
from hemera.wiring import final_series_store, portal_ports
from tests.conftest import REPO_ROOT
from tests.openapi_contract import assert_conforms
from tests.unit.billing.builders import final_day

BASE = "http://127.0.0.1:8000"
TENANT, METER = "sul-energia", "sul-m-1001"
FRI, MON = date(2026, 11, 6), date(2026, 11, 2)


def active(local):
    if (local.date(), local.hour, local.minute) == (FRI, 19, 0):
        return Decimal(170), FinalStatus.ESTIMATED
    return Decimal(160) if 18 <= local.hour < 21 else Decimal(100)


def inductive(local):
    return Decimal(75) if (local.date(), local.hour) == (FRI, 10) else Decimal(20)


@pytest.fixture
def api(moto_cloud):
    ports = portal_ports(moto_cloud)
    ctx = TenantContext(TENANT)
    final_series_store(moto_cloud).save(
        ctx,
        [
            final_day(day, channel, values)
            for day in (FRI, MON)
            for channel, values in (
                (Channel.ACTIVE_IMPORT, active),
                (Channel.REACTIVE_IMPORT, inductive),
                (Channel.REACTIVE_EXPORT, lambda _: Decimal(0)),
            )
        ],
    )
    key = issue_api_key(ports.keys, TENANT, "test")
    spec = importlib.util.spec_from_file_location(
        "portal_billing_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_billing_app"] = module
    spec.loader.exec_module(module)
    with Client(module.app) as client:
        yield client, key, ports


def get(client, key, path, **query):
    headers = {"x-api-key": key}
    url = path + ("?" + urlencode(query) if query else "")
    response = client.http.get(url, headers=headers)
    assert_conforms(BASE + url, headers, response.status_code, dict(response.headers), response.body)
    return response


def body(response) -> dict:
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def test_the_tenant_files_tariff_reaches_the_registry(api):
    _, _, ports = api

    meter = ports.registry.get_meter(TenantContext(TENANT), METER)

    assert meter.tariff.tariff_id == "a4-azul"
    assert meter.tariff.reading_day == 1
    assert dict(meter.tariff.contracted_demand_kw) == {"ponta": Decimal(600), "fora_ponta": Decimal(900)}
    assert meter.tariff.calendar.timezone == "America/Sao_Paulo"


def test_determinants_of_a_cycle_across_a_national_holiday(api):
    client, key, _ = api

    document = body(get(client, key, f"/v1/meters/{METER}/billing-determinants", period="2026-11"))

    assert (document["cycle"]["first_day"], document["cycle"]["last_day"]) == ("2026-11-01", "2026-11-30")
    assert document["cycle"]["from"] == "2026-11-01T00:00:00-03:00"
    energy = {e["post"]: e for e in document["energy"]}
    assert (energy["ponta"]["kwh"], energy["fora_ponta"]["kwh"]) == (1930, 18720)
    assert (energy["ponta"]["coverage"]["intervals"], energy["ponta"]["coverage"]["estimated"]) == (12, 1)
    demand = {d["post"]: d for d in document["demand"]}
    assert demand["ponta"] | {"coverage": None} == {
        "post": "ponta",
        "measured_kw": 680,
        "at": "2026-11-06T19:00:00-03:00",
        "contracted_kw": 600,
        "billed_kw": 680,
        "overrun_kw": 80,
        # November has 19 business days (21 weekdays less Finados and Consciencia Negra) x 12
        # ponta blocks = 228; the 216 of the days VEE has not computed cannot be evaluated.
        "incomplete_blocks": 216,
        "coverage": None,
    }
    assert (demand["fora_ponta"]["measured_kw"], demand["fora_ponta"]["billed_kw"]) == (640, 900)
    assert demand["fora_ponta"]["overrun_kw"] == 0
    assert document["excess_reactive_energy"]["kwh"] == 60
    assert document["excess_reactive_energy"]["hours_below_reference"] == 1
    dre = {d["post"]: d for d in document["excess_reactive_demand"]}
    assert (dre["fora_ponta"]["corrected_kw"], dre["fora_ponta"]["kw"]) == (460, 0)
    assert document["final_days"] == {"active_import": 2, "reactive_import": 2, "reactive_export": 2}


def test_a_period_without_final_days_says_so_instead_of_inventing_zeros(api):
    client, key, _ = api

    document = body(get(client, key, f"/v1/meters/{METER}/billing-determinants", period="2026-09"))

    assert document["final_days"] == {"active_import": 0, "reactive_import": 0, "reactive_export": 0}
    assert [e["kwh"] for e in document["energy"]] == [None, None]
    assert all(
        e["coverage"]["intervals"] == 0 and e["coverage"]["share_present"] == 0 for e in document["energy"]
    )
    assert [d["measured_kw"] for d in document["demand"]] == [None, None]


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "november", "1969-12"])
def test_an_invalid_period_is_a_bad_request(api, period):
    client, key, _ = api

    response = get(client, key, f"/v1/meters/{METER}/billing-determinants", period=period)

    assert response.status_code == 400


def test_another_tenants_meter_is_not_found(api):
    client, key, _ = api

    response = get(client, key, "/v1/meters/cp-m-2001/billing-determinants", period="2026-11")

    assert response.status_code == 404


def test_a_meter_without_tariff_is_a_conflict(api):
    client, key, ports = api
    ports.registry.put_meter(
        TenantContext(TENANT), Meter(TENANT, "sul-m-9999", "hx300", "modbus", "rtu-poa-01", "metalurgica-sul")
    )

    response = get(client, key, "/v1/meters/sul-m-9999/billing-determinants", period="2026-11")

    assert response.status_code == 409
    assert json.loads(response.body)["type"] == "urn:hemera:problem:tariff_not_configured"


def test_a_customer_reading_day_overrides_the_tariffs_cycle(api):
    client, key, ports = api
    # Given metalurgica-sul read on the 3rd (its tariff says the 1st). The tenant file refuses
    # this for a Brazilian Group A tariff (billed on the calendar month: test_tenant_schema);
    # here the registry is written directly to exercise the override billing applies.
    ctx = TenantContext(TENANT)
    customer = ports.registry.get_customer(ctx, "metalurgica-sul")
    ports.registry.put_customers(ctx, [replace(customer, reading_day=3)])

    # When the determinants of 2026-12 are asked for its meter
    document = body(get(client, key, f"/v1/meters/{METER}/billing-determinants", period="2026-12"))

    # Then the cycle is 2026-11-03 ... 2026-12-02 (Fri 6 November in it, Mon 2 November not)
    cycle = document["cycle"]
    assert (cycle["first_day"], cycle["last_day"], cycle["reading_day"]) == ("2026-11-03", "2026-12-02", 3)
    assert document["final_days"] == {"active_import": 1, "reactive_import": 1, "reactive_export": 1}
    # and the energy is Friday's alone: ponta 11 x 160 + 170, fora ponta 84 x 100
    energy = {e["post"]: e["kwh"] for e in document["energy"]}
    assert energy == {"ponta": 1930, "fora_ponta": 8400}
