"""Meter commands through the portal API on moto: an operator requests one, it is published to the
RTU's down topic in the agent's schema, the RTU's ack (through the command_ack function) closes it,
and the audit trail shows who asked and what the RTU answered."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys

import boto3
import pytest
from chalice.test import Client

from hemera.definitions import COMMAND_ACK_FUNCTION, COMMAND_ACK_RULE
from hemera.services.access import issue_api_key
from hemera.wiring import portal_ports
from hemera_local.bridge import LambdaContext, apply_rule, load_handler
from tests.conftest import REPO_ROOT

METER, RTU, TENANT = "cp-m-2001", "rtu-syd-01", "coastal-power"


@pytest.fixture
def api(moto_cloud, user_pool, monkeypatch):
    # moto answers iot-data only on the generic data endpoints, not on the account-specific host
    # that iot:DescribeEndpoint gives (which the adapter uses in AWS).
    monkeypatch.setattr(
        "hemera.adapters.commands_iot.IotDataPublisher.endpoint",
        lambda self: "https://data-ats.iot.us-east-1.amazonaws.com",
    )
    spec = importlib.util.spec_from_file_location(
        "portal_commands_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_commands_app"] = module
    spec.loader.exec_module(module)
    with Client(module.app) as client:
        yield client, user_pool, moto_cloud


def bearer(pool, user):
    return {"Authorization": "Bearer " + pool.id_token(user), "Content-Type": "application/json"}


def post(client, headers, body, meter=METER):
    return client.http.post(f"/v1/meters/{meter}/commands", headers=headers, body=json.dumps(body))


def published():
    from moto.backends import get_backend

    backend = get_backend("iot-data")["123456789012"]["us-east-1"]
    return [(topic, json.loads(payload)) for topic, payload in backend.published_payloads]


def ack_record(topic, document):
    body = apply_rule(COMMAND_ACK_RULE, topic, json.dumps(document).encode())
    return {"messageId": "m-" + document["id"], "body": body, "eventSource": "aws:sqs", "attributes": {}}


def run_ack(*records):
    handler = load_handler(COMMAND_ACK_FUNCTION)
    return handler({"Records": list(records)}, LambdaContext(COMMAND_ACK_FUNCTION.name))


def ack(command_id, status="ok", result=None):
    return {"schema": "hemera.cmd-ack/1", "id": command_id, "status": status, "result": result or {},
            "started_at": "2026-11-22T12:00:01Z", "finished_at": "2026-11-22T12:00:02Z"}  # fmt: skip


def test_an_operators_disconnect_is_sent_to_the_rtu_and_closed_by_its_ack(api):
    client, pool, _ = api
    # Given an operator of the meter's tenant, when it asks for a disconnect
    response = post(client, bearer(pool, "otto.operator"), {"kind": "disconnect"})
    assert response.status_code == 201, response.body
    command = json.loads(response.body)
    assert (command["status"], command["requested_by"], command["requester_role"]) == (
        "sent", "user:otto.operator", "operator"
    )  # fmt: skip
    # then the RTU receives exactly the agent's command document on its down topic
    assert published() == [
        (
            f"hemera/{TENANT}/{RTU}/down/cmd",
            {"id": command["id"], "type": "disconnect", "meter": METER, "params": {}},
        )
    ]
    # and when the RTU acks it, the command is acknowledged with the RTU's result
    outcome = run_ack(
        ack_record(f"hemera/{TENANT}/{RTU}/up/cmd-ack", ack(command["id"], result={"relay": "open"}))
    )
    assert outcome == {"batchItemFailures": []}
    url = f"/v1/meters/{METER}/commands/{command['id']}"
    shown = json.loads(client.http.get(url, headers=bearer(pool, "otto.operator")).body)
    assert shown["status"] == "acknowledged"
    assert shown["ack"] == {"status": "ok", "result": {"relay": "open"}}


def test_an_ack_published_by_another_rtu_changes_nothing(api):
    client, pool, _ = api
    command = json.loads(post(client, bearer(pool, "ana.admin"), {"kind": "clock_sync"}).body)
    run_ack(ack_record(f"hemera/{TENANT}/rtu-other/up/cmd-ack", ack(command["id"])))
    url = f"/v1/meters/{METER}/commands/{command['id']}"
    assert json.loads(client.http.get(url, headers=bearer(pool, "ana.admin")).body)["status"] == "sent"
    # an error ack from the right RTU fails it with the agent's reason
    run_ack(
        ack_record(
            f"hemera/{TENANT}/{RTU}/up/cmd-ack", ack(command["id"], "error", {"reason": "not_supported"})
        )
    )
    shown = json.loads(client.http.get(url, headers=bearer(pool, "ana.admin")).body)
    assert (shown["status"], shown["detail"]) == ("failed", "not_supported")


def test_customer_users_and_api_keys_may_read_but_not_request_commands(api):
    client, pool, settings = api
    post(client, bearer(pool, "otto.operator"), {"kind": "connect"})
    key = issue_api_key(portal_ports(settings).keys, TENANT, "machine")
    machine = {"x-api-key": key, "Content-Type": "application/json"}
    for headers in (bearer(pool, "hugo.harbour"), machine):
        refused = post(client, headers, {"kind": "connect"})
        assert refused.status_code == 403, refused.body
        listing = json.loads(client.http.get(f"/v1/meters/{METER}/commands", headers=headers).body)
        assert [c["kind"] for c in listing["items"]] == ["connect"]
    # another customer's user does not learn the meter exists
    assert post(client, bearer(pool, "bea.bayside"), {"kind": "connect"}).status_code == 404


def test_a_bad_command_is_a_400_and_commands_list_newest_first_in_pages(api):
    client, pool, _ = api
    headers = bearer(pool, "otto.operator")
    assert post(client, headers, {"kind": "explode"}).status_code == 400
    assert post(client, headers, {"kind": "read_range", "params": {"from": "yesterday"}}).status_code == 400
    ids = [
        json.loads(post(client, headers, {"kind": k}).body)["id"]
        for k in ("connect", "disconnect", "clock_sync")
    ]
    first = json.loads(client.http.get(f"/v1/meters/{METER}/commands?limit=2", headers=headers).body)
    assert [c["id"] for c in first["items"]] == ids[::-1][:2]
    rest = client.http.get(
        f"/v1/meters/{METER}/commands?limit=2&cursor={first['next_cursor']}", headers=headers
    )
    assert [c["id"] for c in json.loads(rest.body)["items"]] == [ids[0]]


def test_the_rule_message_carries_the_ack_in_base64():
    body = json.loads(apply_rule(COMMAND_ACK_RULE, "hemera/t/d/up/cmd-ack", b"{}"))
    assert base64.b64decode(body["payload"]) == b"{}"
    assert boto3  # the suite runs on moto's clients
