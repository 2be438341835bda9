"""Billing exports through the portal API on moto: an operator requests one on demand (202, pending,
listed at once), the billing function renders it from the requests queue, and GET shows it ready
with download URLs that fetch exactly the manifest's bytes; no other caller gets more than the
contract allows (customers see no exports, machine keys may not request them, a bad period is
400)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import boto3
import pytest
import requests
from chalice.test import Client

from hemera.definitions import BILLING_EXPORTS_FUNCTION, EXPORT_REQUESTS_QUEUE
from hemera.domain.final_series import ESPI_VALIDATED, FinalDay, FinalInterval, FinalStatus, QualityFlag
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.services.access import issue_api_key
from hemera.wiring import export_ports, portal_ports
from hemera_local.bridge import LambdaContext, load_handler, sqs_event
from tests.conftest import REPO_ROOT

TENANT, METER = "coastal-power", "cp-m-2001"
DAY = date(2026, 10, 5)


def final_day(moto_cloud) -> FinalDay:
    zone = portal_ports(moto_cloud).registry.get_tenant(TenantContext(TENANT)).zone
    start = datetime.combine(DAY, time(0), tzinfo=zone).astimezone(UTC)
    intervals = tuple(
        FinalInterval(
            start + timedelta(minutes=15 * n),
            15,
            Decimal("0.5"),
            Decimal("0.5"),
            FinalStatus.ACTUAL,
            QualityFlag.ACTUAL,
            ESPI_VALIDATED,
        )
        for n in range(96)
    )
    return FinalDay(METER, Channel.ACTIVE_IMPORT, DAY, zone.key, 15, 1, intervals, datetime.now(UTC))


@pytest.fixture
def api(moto_cloud, user_pool):
    export_ports(moto_cloud).final_series.save(TenantContext(TENANT), [final_day(moto_cloud)])
    spec = importlib.util.spec_from_file_location(
        "portal_exports_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_exports_app"] = module
    spec.loader.exec_module(module)
    with Client(module.app) as client:
        yield client, user_pool, moto_cloud


def billing_function_renders_the_requests():
    """The billing function takes what the requests queue holds (ExportRequested, forwarded by
    its rule), as Lambda's SQS event source hands it over; returns how many it took."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=EXPORT_REQUESTS_QUEUE.local_name)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
        "Messages", []
    )
    event = sqs_event(
        messages, f"arn:aws:sqs:us-east-1:123456789012:{EXPORT_REQUESTS_QUEUE.local_name}", "us-east-1"
    )
    result = load_handler(BILLING_EXPORTS_FUNCTION)(event, LambdaContext(BILLING_EXPORTS_FUNCTION.name))
    assert result == {"batchItemFailures": []}
    return len(messages)


def bearer(pool, user):
    return {"Authorization": "Bearer " + pool.id_token(user), "Content-Type": "application/json"}


def test_an_operator_requests_an_export_and_downloads_what_its_manifest_says(api):
    client, pool, _ = api
    # When an operator asks for October's NEM12 and CSV of one meter
    body = {"formats": ["nem12", "csv"], "from": "2026-10-01", "to": "2026-11-01", "meters": [METER]}
    response = client.http.post("/v1/exports", headers=bearer(pool, "otto.operator"), body=json.dumps(body))
    # Then it is accepted, pending (no version yet), by that user, at its Location
    assert response.status_code == 202, response.body
    accepted = json.loads(response.body)
    assert response.headers["Location"] == f"/v1/exports/{accepted['id']}"
    assert accepted["id"].startswith("20261001-od-") and accepted["meters"] == [METER]
    assert (accepted["state"], accepted["latest_version"], accepted["versions"]) == ("pending", None, [])
    assert (accepted["period_start"], accepted["period_end"], accepted["schedule_id"]) == (
        "2026-10-01",
        "2026-10-31",
        None,
    )
    assert accepted["requested_by"] == "user:otto.operator"
    # and the tenant lists it already, pending
    key = issue_api_key(portal_ports(api[2]).keys, TENANT, "billing system")
    listing = json.loads(client.http.get("/v1/exports", headers={"x-api-key": key}).body)
    assert [(e["id"], e["state"]) for e in listing["items"]] == [(accepted["id"], "pending")]
    # When the billing function takes the request from its queue
    assert billing_function_renders_the_requests() == 1
    # Then GET shows it ready: version 1, on demand, with download URLs
    one = client.http.get(response.headers["Location"], headers={"x-api-key": key})
    assert one.status_code == 200
    export = json.loads(one.body)
    assert (export["state"], export["latest_version"], export["failure"]) == ("ready", 1, None)
    assert export["created_at"] == accepted["created_at"]
    (v1,) = export["versions"]
    assert v1["reason"] == "on_demand" and [f["format"] for f in v1["files"]] == ["nem12", "csv"]
    # and each file downloads, byte for byte the manifest's sha256, with the day's 48 kWh
    manifest = requests.get(v1["manifest_url"], timeout=10).json()
    for file, listed in zip(v1["files"], manifest["files"], strict=True):
        content = requests.get(file["download_url"], timeout=10).content
        assert hashlib.sha256(content).hexdigest() == file["sha256"] == listed["sha256"]
        assert Decimal(file["totals"]["active_import_kWh"]) == Decimal(48)


def test_customers_see_no_exports_and_only_admins_and_operators_request_them(api):
    client, pool, moto_cloud = api
    created = client.http.post(
        "/v1/exports",
        headers=bearer(pool, "otto.operator"),
        body=json.dumps({"format": "csv", "period": "2026-10"}),
    )
    export_id = json.loads(created.body)["id"]
    customer = bearer(pool, "hugo.harbour")
    # A customer user: no exports listed, the export is not found, and may not request one
    assert json.loads(client.http.get("/v1/exports", headers=customer).body)["items"] == []
    assert client.http.get(f"/v1/exports/{export_id}", headers=customer).status_code == 404
    refused = client.http.post(
        "/v1/exports", headers=customer, body=json.dumps({"format": "csv", "period": "2026-10"})
    )
    assert refused.status_code == 403
    # A machine key of the tenant reads exports but may not request one
    key = {
        "x-api-key": issue_api_key(portal_ports(moto_cloud).keys, TENANT, "machine"),
        "Content-Type": "application/json",
    }
    assert client.http.get(f"/v1/exports/{export_id}", headers=key).status_code == 200
    assert (
        client.http.post(
            "/v1/exports", headers=key, body=json.dumps({"format": "csv", "period": "2026-10"})
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    "body",
    [
        {"format": "xlsx", "period": "2026-10"},
        {"format": "csv", "period": "October"},
        {"format": "csv", "from": "2026-10-01", "to": "2027-01-01"},
        {"format": "csv", "from": "2026-10-02", "to": "2026-10-01"},
        {"format": "csv", "period": "2026-10", "tenant": "sul-energia"},
    ],
)
def test_a_bad_request_is_400_and_writes_nothing(api, body):
    client, pool, moto_cloud = api
    response = client.http.post("/v1/exports", headers=bearer(pool, "otto.operator"), body=json.dumps(body))
    assert response.status_code == 400, response.body
    assert export_ports(moto_cloud).index.list(TenantContext(TENANT), None, 10).items == []
    assert billing_function_renders_the_requests() == 0  # nothing queued


def test_another_tenants_meter_is_not_found_in_a_request(api):
    client, pool, _ = api
    body = {"format": "csv", "period": "2026-10", "meters": ["sul-m-1001"]}
    response = client.http.post("/v1/exports", headers=bearer(pool, "otto.operator"), body=json.dumps(body))
    assert response.status_code == 404
