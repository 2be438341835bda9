"""Roles on the portal: Cognito users (tokens from moto's cognito-idp) and third parties with a
customer's consent, through the Chalice app."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta

import pytest
from chalice.test import Client

from hemera.services.access import grant_consent, revoke_consent
from hemera.wiring import portal_ports
from tests.conftest import REPO_ROOT


@pytest.fixture
def portal(user_pool):
    spec = importlib.util.spec_from_file_location(
        "portal_callers_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_callers_app"] = module
    spec.loader.exec_module(module)
    with Client(module.app) as client:
        yield client


def get(client, path, headers):
    response = client.http.get(path, headers=headers)
    return response.status_code, json.loads(response.body) if response.body else None


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_an_operator_sees_the_whole_tenant_and_a_customer_user_only_its_customer(portal, user_pool):
    status, body = get(portal, "/v1/customers", bearer(user_pool.id_token("otto.operator")))
    assert status == 200
    assert {"harbour-offices", "bayside-cold-store"} <= {c["id"] for c in body["items"]}

    status, body = get(portal, "/v1/customers", bearer(user_pool.id_token("hugo.harbour")))
    assert status == 200
    assert [c["id"] for c in body["items"]] == ["harbour-offices"]
    status, _ = get(portal, "/v1/customers/bayside-cold-store", bearer(user_pool.id_token("hugo.harbour")))
    assert status == 404


def test_an_admin_reads_its_tenant_and_nothing_of_another(portal, user_pool):
    token = user_pool.id_token("ana.admin")
    assert get(portal, "/v1/meters/cp-m-2001", bearer(token))[0] == 200
    assert get(portal, "/v1/meters/sul-m-1001", bearer(token))[0] == 404


@pytest.mark.parametrize(
    "kind", ["expired", "forged", "garbage", "access token without tenant", "basic scheme"]
)
def test_tokens_that_prove_nothing_are_401_problems(portal, user_pool, kind):
    token = {
        "expired": lambda: user_pool.expired_id_token("otto.operator"),
        "forged": lambda: user_pool.forged_id_token("otto.operator"),
        "garbage": lambda: "not.a.jwt",
        "access token without tenant": lambda: user_pool.access_token("otto.operator"),
        "basic scheme": lambda: None,
    }[kind]()
    headers = bearer(token) if token else {"Authorization": "Basic b3R0bzpwdw=="}
    response = portal.http.get("/v1/customers", headers=headers)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert json.loads(response.body)["status"] == 401


def test_a_third_party_reads_under_consent_until_it_is_revoked(portal, moto_cloud):
    ports = portal_ports(moto_cloud)
    consent, key = grant_consent(
        ports.consents,
        ports.keys,
        "coastal-power",
        "harbour-offices",
        "energy-advisor",
        datetime.now(UTC) + timedelta(days=30),
    )
    status, body = get(portal, "/v1/customers", {"x-api-key": key})
    assert status == 200
    assert [c["id"] for c in body["items"]] == ["harbour-offices"]
    assert get(portal, "/v1/customers/bayside-cold-store", {"x-api-key": key})[0] == 404

    assert revoke_consent(ports.consents, "coastal-power", consent.consent_id)
    status, body = get(portal, "/v1/customers", {"x-api-key": key})
    assert (status, body["type"]) == (401, "urn:hemera:problem:consent_not_valid")


def test_a_third_partys_key_stops_working_when_the_consent_expires(portal, moto_cloud):
    ports = portal_ports(moto_cloud)
    _, key = grant_consent(
        ports.consents,
        ports.keys,
        "coastal-power",
        "harbour-offices",
        "energy-advisor",
        datetime.now(UTC) - timedelta(seconds=1),
    )
    assert get(portal, "/v1/customers", {"x-api-key": key})[0] == 401
