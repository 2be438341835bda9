"""Isolation matrix: every route and method of `api_spec/openapi.yaml` (so a route added later is
covered without touching this file), called for objects of *another* tenant or customer, and with
missing, forged and revoked keys, and with Cognito JWTs of another tenant or customer, expired or
forged. Nothing may succeed: objects that exist elsewhere are 404 (never
403: the caller must not learn they exist), bad credentials 401, and listings leak no foreign id.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, date, datetime
from urllib.parse import urlencode

import pytest
import yaml
from chalice.test import Client

from hemera.domain.commands import CommandKind, MeterCommand
from hemera.domain.tenancy import TenantContext
from hemera.services.access import hash_api_key, issue_api_key, revoke_api_key
from hemera.wiring import command_ports, portal_ports
from tests.conftest import REPO_ROOT
from tests.openapi_contract import SPEC, assert_conforms

BASE = "http://127.0.0.1:8000"
OWNER, OTHER_TENANT = "coastal-power", "sul-energia"
# Objects of the owner tenant, all of one customer, by the parameter name that addresses them.
TARGETS = {"meter_id": "cp-m-2001", "customer_id": "harbour-offices", "command_id": "c019ab3c4d5e6-1a2b3c4d"}
# A billing export of the owner (seeded by `callers`, as the hourly job would write it).
TARGETS["export_id"] = "20261001-monthly-nem12"
# An alarm of the owner's meter (seeded by `callers`, as the alarms function would store it).
TARGETS["alarm_id"] = "al-20261122t000000-0123456789ab"
# What the owner's other customers and the other tenant own: never in a foreign caller's answer.
OWNER_OTHER_CUSTOMER = "bayside-cold-store"


def operations():
    document = yaml.safe_load(SPEC.read_text())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("security", document["security"]):
                yield path, method.upper(), operation


OPERATIONS = list(operations())


def request_for(path, operation):
    """Path and query with every id parameter pointing at the owner's objects and every other
    required parameter filled from the spec's example."""
    query = {}
    for param in operation.get("parameters", []):
        if "$ref" in param:
            continue  # shared optional parameters (cursor, limit, headers)
        name = param["name"]
        if name in TARGETS:
            value = TARGETS[name]
        elif param.get("required"):
            examples = param.get("examples") or {}
            assert examples, f"{path}: give required parameter {name!r} an example in the spec"
            value = next(iter(examples.values()))["value"]
        else:
            continue
        if param["in"] == "path":
            path = path.replace("{" + name + "}", value)
        elif param["in"] == "query":
            query[name] = value
    assert "{" not in path, f"{path}: add the parameter to TARGETS so the matrix can fill it"
    return path + ("?" + urlencode(query) if query else "")


@pytest.fixture(scope="module")
def portal():
    spec = importlib.util.spec_from_file_location(
        "portal_matrix_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_matrix_app"] = module
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture
def callers(moto_cloud, user_pool, portal, monkeypatch):
    # moto serves iot-data only on the generic endpoint (see test_portal_commands.py).
    monkeypatch.setattr(
        "hemera.adapters.commands_iot.IotDataPublisher.endpoint",
        lambda self: "https://data-ats.iot.us-east-1.amazonaws.com",
    )
    keys = portal_ports(moto_cloud).keys
    # A command of the owner's meter, so the routes that address one have an object to refuse.
    own_command = MeterCommand(
        OWNER, TARGETS["command_id"], TARGETS["meter_id"], "rtu-syd-01", CommandKind.CLOCK_SYNC, {},
        "user:otto.operator", "operator", datetime(2026, 11, 22, tzinfo=UTC),
    )  # fmt: skip
    command_ports(moto_cloud).commands.create(TenantContext(OWNER), own_command)
    # An export of the owner's, so GET /v1/exports/{export_id} has an object to refuse.
    from hemera.services.exports import create_export
    from hemera.wiring import export_ports

    exports = export_ports(moto_cloud)
    create_export(
        exports, TenantContext(OWNER), TARGETS["export_id"], ("nem12",),
        [portal_ports(moto_cloud).registry.get_meter(TenantContext(OWNER), TARGETS["meter_id"])],
        date(2026, 10, 1), date(2026, 10, 31), "monthly-nem12", "schedule:monthly-nem12", "scheduled",
        datetime(2026, 11, 1, tzinfo=UTC),
    )  # fmt: skip
    # An open alarm of the owner's meter, so the alarm routes have an object to refuse.
    from dataclasses import replace

    from hemera.domain.alarms import AlarmKey, AlarmType, Observation, apply_observation
    from hemera.domain.meter_events import Subject
    from hemera.wiring import alarm_ports

    key = AlarmKey(Subject.METER, TARGETS["meter_id"], AlarmType.COVER_OPEN)
    raised = apply_observation(OWNER, None, Observation(key, datetime(2026, 11, 22, tzinfo=UTC), True)).alarm
    assert raised is not None
    alarm_ports(moto_cloud).alarms.save(
        TenantContext(OWNER), replace(raised, alarm_id=TARGETS["alarm_id"]), 0
    )
    revoked = issue_api_key(keys, OWNER, "revoked")
    revoke_api_key(keys, revoked)
    owner = issue_api_key(keys, OWNER, "owner")
    found = {
        "owner": owner,
        "other tenant": issue_api_key(keys, OTHER_TENANT, "attacker"),
        "other customer": issue_api_key(keys, OWNER, "customer user", customer_id=OWNER_OTHER_CUSTOMER),
        "no key": None,
        "forged key": "hmk_" + "A" * 32,
        "stored hash as key": hash_api_key(owner),
        "revoked key": revoked,
        # Cognito users (tokens from moto's user pool), marked as bearer tokens by their prefix.
        # Writes (commands) are for admins and operators: the owner's control call uses one.
        "owner operator JWT": "Bearer " + user_pool.id_token("otto.operator"),
        "other tenant JWT": "Bearer " + user_pool.id_token("sara.sul"),
        "other customer JWT": "Bearer " + user_pool.id_token("bea.bayside"),
        "expired JWT": "Bearer " + user_pool.expired_id_token("otto.operator"),
        "forged JWT": "Bearer " + user_pool.forged_id_token("otto.operator"),
    }
    with Client(portal) as client:
        yield client, found


def request_body(operation):
    """The first example of an operation's JSON body (None for operations without one)."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    examples = content.get("examples") or {}
    assert examples, "give a request body an example in the spec"
    return json.dumps(next(iter(examples.values()))["value"]).encode()


def success_status(operation):
    return min(int(code) for code in operation["responses"] if code.startswith("2"))


def call(client, method, url, key, body=None):
    if key is None:
        headers = {}
    elif key.startswith("Bearer "):
        headers = {"Authorization": key}
    else:
        headers = {"x-api-key": key}
    if body is not None:
        headers["Content-Type"] = "application/json"
    response = client.http.request(method, url, headers=headers, body=body or b"")
    assert_conforms(
        BASE + url, headers, response.status_code, dict(response.headers), response.body, method, body
    )
    return response


def test_the_matrix_covers_the_routes_of_the_spec():
    paths = {path for path, _, _ in OPERATIONS}
    assert {
        "/v1/customers/{customer_id}",
        "/v1/meters/{meter_id}",
        "/v1/meters/{meter_id}/load-profile",
    } <= paths


@pytest.mark.parametrize(
    ("path", "method", "operation"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS]
)
def test_no_route_serves_anything_out_of_the_callers_reach(callers, path, method, operation):
    client, keys = callers
    url = request_for(path, operation)
    body = request_body(operation)
    # Control: the owner reaches the objects, so a 404 below is isolation, not a broken route.
    owner = keys["owner operator JWT"] if body is not None else keys["owner"]
    assert call(client, method, url, owner, body).status_code == success_status(operation)
    addresses_an_object = "{" in path
    for who in ("no key", "forged key", "stored hash as key", "revoked key", "expired JWT", "forged JWT"):
        response = call(client, method, url, keys[who], body)
        assert response.status_code == 401, (who, url, response.body)
        assert json.loads(response.body)["status"] == 401
    for who in ("other tenant", "other customer", "other tenant JWT", "other customer JWT"):
        response = call(client, method, url, keys[who], body)
        if addresses_an_object:
            assert response.status_code == 404, (who, url, response.body)
            assert response.headers["Content-Type"] == "application/problem+json"
        else:  # a listing answers, with nothing of the owner's customer in it; a create on a
            # collection (POST /v1/exports) acts in the caller's own tenant or is refused
            allowed = {200} if method == "GET" else {success_status(operation), 403}
            assert response.status_code in allowed, (who, url, response.body)
            text = response.body.decode()
            leaked = [v for v in TARGETS.values() if f'"{v}"' in text]
            assert leaked == [], (who, url, leaked)
