"""Portal users on the running local cloud: a token from its user pool (moto's cognito-idp) is
accepted by `chalice local`, which fetches the pool's key set over HTTP as it would from Cognito;
an expired or forged token is refused."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from hemera import aws
from hemera_local import identity

pytestmark = pytest.mark.integration

PASSWORD = "Portal-Users-2026!"
OPERATOR = "jwt.operator"
CUSTOMER_USER = "jwt.harbour"


@pytest.fixture(scope="module")
def tokens(local_cloud) -> dict[str, str]:
    local_cloud.add_portal_user(OPERATOR, PASSWORD, "operator", "coastal-power")
    local_cloud.add_portal_user(CUSTOMER_USER, PASSWORD, "customer", "coastal-power", "harbour-offices")
    cognito = aws.client(local_cloud.target, "cognito-idp")
    return {
        user: identity.login(cognito, local_cloud.user_pool, user, PASSWORD)["IdToken"]
        for user in (OPERATOR, CUSTOMER_USER)
    }


def meters(cloud, token: str) -> requests.Response:
    return requests.get(
        f"{cloud.api_url}/v1/meters", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def moto_signing_key() -> RSAKey:
    from moto.utilities.utils import load_resource

    return RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, moto_signing_key(), algorithms=["RS256"]).claims)


def test_the_operator_sees_the_tenant_and_the_customer_user_only_its_customer(local_cloud, tokens):
    operator = meters(local_cloud, tokens[OPERATOR])
    customer = meters(local_cloud, tokens[CUSTOMER_USER])

    assert operator.status_code == 200, operator.text
    assert customer.status_code == 200, customer.text
    tenant_meters = local_cloud.tenants["coastal-power"].meters
    assert {m["id"] for m in operator.json()["items"]} == {m.id for m in tenant_meters}
    assert {m["customer_id"] for m in customer.json()["items"]} == {"harbour-offices"}


def test_an_expired_token_of_the_pool_is_refused(local_cloud, tokens):
    claims = claims_of(tokens[OPERATOR])
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    expired = jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, moto_signing_key())

    response = meters(local_cloud, expired)

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_token_signed_by_another_key_is_refused(local_cloud, tokens):
    forged = jwt.encode(
        {"alg": "RS256", "kid": "dummy"}, claims_of(tokens[OPERATOR]), RSAKey.generate_key(2048)
    )

    assert meters(local_cloud, forged).status_code == 401
