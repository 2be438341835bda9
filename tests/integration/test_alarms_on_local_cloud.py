"""Alarms end to end on the local cloud: simulated meters → agent (MQTT mTLS) → translate → the
platform bus → the alarms function (rules from the definitions) → the Customer Portal API.

- a Modbus RTU's data with a low power factor and a demand over the contract (this test's alarm
  settings: reference PF 0.99, a 20 kW contract) → alarms whose facts name the interval;
- the same RTU falling silent → a communication-failure alarm from the sweep;
- a DLMS meter's outage and opened cover (scenario faults) → an outage alarm closed at the power
  up, a cover-open alarm, and the meter's theft score rising; operators acknowledge, customer
  users may not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from hemera import aws
from hemera.definitions import ALARM_SWEEP
from hemera.domain.tenancy import TenantContext
from hemera.services.alarms import alarm_settings_of
from hemera.services.onboarding import onboard_tenant
from hemera.wiring import alarm_ports, onboarding_stores
from hemera_agent.agent import Agent
from hemera_agent.clock import SimClock
from hemera_agent.publisher import Mqtt5Publisher
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, meters_from_tenant
from hemera_agent.simulators.scenario import Outage, Tamper
from hemera_local import identity
from tests.integration.conftest import agent_config, eventually, local_yesterday, poll_dlms_meter_once, run
from tests.openapi_contract import assert_conforms

pytestmark = pytest.mark.integration

TENANT, RTU = "coastal-power", "rtu-syd-01"
MODBUS_METER = "cp-m-2001"  # hx300, peak 300 kW
DLMS_METER = "cp-m-2003"  # hd500 of northshore-mall
CONTRACT_KW = Decimal(20)  # the office draws ~20-47 kW on these days
PASSWORD = "Portal-Alarms-2026!"


@pytest.fixture(scope="module")
def alarm_settings(local_cloud) -> Iterator[Any]:
    """Coastal Power for this module: cp-m-2001 contracted at 20 kW (its tariff's single demand,
    as `tenant apply` would register a changed tenant file), PF reference 0.99 and a silence limit
    of 20 seconds; the tenant file as it is afterwards."""
    tenant = local_cloud.tenants[TENANT]
    contracted = tenant.model_copy(
        update={
            "meters": [
                m.model_copy(update={"contracted_demand_kw": CONTRACT_KW}) if m.id == MODBUS_METER else m
                for m in tenant.meters
            ]
        }
    )
    ports = alarm_ports(local_cloud.settings)
    onboard_tenant(onboarding_stores(local_cloud.settings), contracted)
    defaults = alarm_settings_of(contracted)
    settings = dataclasses.replace(
        defaults,
        thresholds=dataclasses.replace(
            defaults.thresholds, power_factor_min=Decimal("0.99"), silence_hours=Decimal(20) / 3600
        ),
    )
    ports.settings.put_settings(TenantContext(TENANT), settings)
    yield settings
    onboard_tenant(onboarding_stores(local_cloud.settings), tenant)


def get(cloud, key: str, path: str, **params: str) -> requests.Response:
    response = requests.get(f"{cloud.api_url}{path}", params=params, headers={"x-api-key": key}, timeout=10)
    assert_conforms(
        response.url, {"x-api-key": key}, response.status_code, dict(response.headers), response.content
    )
    return response


def alarms_of(cloud, key: str, **params: str) -> list[dict[str, Any]]:
    response = get(cloud, key, "/v1/alarms", **params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


@pytest.fixture(scope="module")
def modbus_rtu_published(local_cloud, alarm_settings, tmp_path_factory) -> datetime:
    """The RTU's agent polled its Modbus meters once (48 hours of load profile) and stopped."""
    tenant = local_cloud.tenants[TENANT]
    now = datetime.now(UTC)
    clock = SimClock(start=now, speed=1)
    with ModbusMeterSimulator(
        meters_from_tenant(tenant, RTU), clock=clock, history_start=now - timedelta(days=2)
    ) as sim:
        config = agent_config(local_cloud, tenant, RTU, sim.port, tmp_path_factory.mktemp("alarm-agent"))

        async def once():
            async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
                return await Agent(config, publisher).poll_once()

        report = run(once())
    assert report.failed_meters == []
    return now


def test_low_power_factor_and_demand_overrun_name_the_interval(local_cloud, api_keys, modbus_rtu_published):
    key = api_keys[TENANT]
    found = eventually(
        lambda: {a["type"]: a for a in alarms_of(local_cloud, key, meter_id=MODBUS_METER)},
        lambda alarms: {"demand_overrun", "low_power_factor"} <= set(alarms),
        timeout_s=60,
    )
    demand, pf = found["demand_overrun"], found["low_power_factor"]
    assert demand["severity"] == "major" and demand["state"] == "open"
    assert demand["subject"] == {"kind": "meter", "id": MODBUS_METER}
    assert demand["facts"]["contracted_kw"] == "20" and demand["facts"]["limit_kw"] == "21.00"
    # The named block is the tariff's 30-minute demand window (lv-business-tou), and its two
    # quarter hours in the load profile give the demand the alarm reports (kWh x 60 / 30).
    start = datetime.fromisoformat(demand["facts"]["interval_start"])
    end = datetime.fromisoformat(demand["facts"]["interval_end"])
    assert end - start == timedelta(minutes=30)
    profile = get(
        local_cloud,
        key,
        f"/v1/meters/{MODBUS_METER}/load-profile",
        **{"from": start.isoformat(), "to": end.isoformat()},
    ).json()
    first, second = profile["intervals"]
    block_kwh = Decimal(str(first["raw_value"])) + Decimal(str(second["raw_value"]))
    assert block_kwh * 2 == Decimal(demand["facts"]["demand_kw"])
    assert Decimal(demand["facts"]["demand_kw"]) > Decimal("21")
    # and the power factor the alarm names is below the reference, from that interval's energies
    assert Decimal(pf["facts"]["power_factor"]) < Decimal("0.99")
    pf_start = datetime.fromisoformat(pf["facts"]["interval_start"])
    assert pf_start.minute % 15 == 0 and pf_start <= modbus_rtu_published


def test_a_silent_rtu_raises_a_communication_failure_from_the_sweep(
    local_cloud, api_keys, modbus_rtu_published
):
    # Given the RTU delivered once and its agent stopped; when the sweep runs past the limit
    key = api_keys[TENANT]

    def sweep_then_list() -> list[dict[str, Any]]:
        local_cloud.run_schedule(ALARM_SWEEP.name)
        return alarms_of(local_cloud, key, type="communication_failure", state="open")

    found = eventually(
        sweep_then_list, lambda alarms: any(a["subject"] == {"kind": "rtu", "id": RTU} for a in alarms), 60
    )
    (alarm,) = [a for a in found if a["subject"] == {"kind": "rtu", "id": RTU}]
    assert alarm["facts"]["silent_hours"] >= 20 / 3600
    assert datetime.fromisoformat(alarm["facts"]["last_seen"]) <= datetime.now(UTC)


@pytest.fixture(scope="module")
def tampered_meter_published(local_cloud, alarm_settings, tmp_path_factory):
    """Yesterday (local) the DLMS meter lost supply 09:05-09:40 and its cover was opened at 12:20;
    the agent polled it once."""
    tenant = local_cloud.tenants[TENANT]
    start = local_yesterday(tenant)
    outage = (start + timedelta(hours=9, minutes=5), start + timedelta(hours=9, minutes=40))
    opened = start + timedelta(hours=12, minutes=20)
    faults = (Outage(start=outage[0], end=outage[1]), Tamper(type="cover_open", at=opened))
    report = poll_dlms_meter_once(
        local_cloud, tenant, RTU, DLMS_METER, faults, start, tmp_path_factory.mktemp("alarm-dlms")
    )
    assert report.failed_meters == []
    return outage, opened


def test_an_outage_alarm_closes_at_power_up(local_cloud, api_keys, tampered_meter_published):
    (down, up), _ = tampered_meter_published
    key = api_keys[TENANT]
    outages = eventually(
        lambda: alarms_of(local_cloud, key, meter_id=DLMS_METER, type="outage"),
        lambda alarms: any(a["state"] == "closed" for a in alarms),
        timeout_s=60,
    )
    (outage,) = [a for a in outages if datetime.fromisoformat(a["first_seen"]) == down]
    assert outage["state"] == "closed" and outage["count"] == 1
    assert datetime.fromisoformat(outage["closed_at"]) == up
    assert outage["facts"]["event"] == "power_down"
    assert outage["facts"]["cleared"]["event"] == "power_up"


def test_a_cover_opening_raises_an_alarm_and_the_theft_score(local_cloud, api_keys, tampered_meter_published):
    _, opened = tampered_meter_published
    key = api_keys[TENANT]
    covers = eventually(
        lambda: alarms_of(local_cloud, key, meter_id=DLMS_METER, type="cover_open"),
        lambda alarms: bool(alarms),
        timeout_s=60,
    )
    (cover,) = covers
    assert (cover["severity"], datetime.fromisoformat(cover["first_seen"])) == ("critical", opened)

    response = get(local_cloud, key, f"/v1/meters/{DLMS_METER}/theft-score")
    assert response.status_code == 200
    score = response.json()
    assert score["score"] >= 30 and score["level"] in ("medium", "high")
    (fact,) = [f for f in score["facts"] if f["kind"] == "cover_open"]
    assert fact["evidence"]["alarm_id"] == cover["id"]
    # a meter of another tenant is not found
    assert (
        get(local_cloud, api_keys["sul-energia"], f"/v1/meters/{DLMS_METER}/theft-score").status_code == 404
    )


def test_operators_acknowledge_and_customer_users_may_not(local_cloud, api_keys, tampered_meter_published):
    key = api_keys[TENANT]
    (cover,) = eventually(
        lambda: alarms_of(local_cloud, key, meter_id=DLMS_METER, type="cover_open"), bool, timeout_s=60
    )
    cognito = aws.client(local_cloud.target, "cognito-idp")
    users = {
        "alarm.operator": ("operator", None),
        "alarm.mall": ("customer", "northshore-mall"),  # cp-m-2003's customer
        "alarm.harbour": ("customer", "harbour-offices"),
    }
    tokens = {}
    for name, (group, customer) in users.items():
        local_cloud.add_portal_user(name, PASSWORD, group, TENANT, customer)
        tokens[name] = identity.login(cognito, local_cloud.user_pool, name, PASSWORD)["IdToken"]

    def ack(user: str) -> requests.Response:
        return requests.post(
            f"{local_cloud.api_url}/v1/alarms/{cover['id']}/ack",
            headers={"Authorization": f"Bearer {tokens[user]}"},
            timeout=10,
        )

    assert ack("alarm.mall").status_code == 403  # its own meter's alarm: seen, not acknowledged
    assert ack("alarm.harbour").status_code == 404  # another customer's meter
    response = ack("alarm.operator")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "acknowledged"
    assert response.json()["acknowledged_by"] == "user:alarm.operator"
    # the customer user sees it among its alarms; the other customer does not
    mall = requests.get(
        f"{local_cloud.api_url}/v1/alarms",
        headers={"Authorization": f"Bearer {tokens['alarm.mall']}"},
        timeout=10,
    ).json()["items"]
    assert cover["id"] in {a["id"] for a in mall}
    harbour = requests.get(
        f"{local_cloud.api_url}/v1/alarms",
        headers={"Authorization": f"Bearer {tokens['alarm.harbour']}"},
        timeout=10,
    ).json()["items"]
    assert cover["id"] not in {a["id"] for a in harbour}
