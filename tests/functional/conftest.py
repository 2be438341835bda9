"""Cognito on moto for the portal suites: the local cloud's user pool, users of each role, and
tokens that must be refused (expired ones signed by moto's pool key, forged ones signed by
another key)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from hemera_local.bridge import cold_start
from hemera_local.identity import UserPoolIds, add_user, ensure_user_pool, login

PASSWORD = "Meter-Reading-2026!"
# username -> (group, tenant, customer)
USERS = {
    "ana.admin": ("admin", "coastal-power", None),
    "otto.operator": ("operator", "coastal-power", None),
    "hugo.harbour": ("customer", "coastal-power", "harbour-offices"),
    "bea.bayside": ("customer", "coastal-power", "bayside-cold-store"),
    "sara.sul": ("operator", "sul-energia", None),
}


@dataclass
class UserPoolFixture:
    cognito: Any
    ids: UserPoolIds

    def id_token(self, username: str) -> str:
        return login(self.cognito, self.ids, username, PASSWORD)["IdToken"]

    def access_token(self, username: str) -> str:
        return login(self.cognito, self.ids, username, PASSWORD)["AccessToken"]

    def claims_of(self, username: str) -> dict[str, Any]:
        token = self.id_token(username)
        return dict(jwt.decode(token, RSAKey.import_key(_moto_key()), algorithms=["RS256"]).claims)

    def expired_id_token(self, username: str) -> str:
        """What moto's pool would have issued two hours ago: genuine signature, past `exp`."""
        claims = self.claims_of(username)
        claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
        return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, RSAKey.import_key(_moto_key()))

    def forged_id_token(self, username: str) -> str:
        """The same claims with moto's key id, signed by a key of the attacker's own."""
        claims = self.claims_of(username)
        return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, RSAKey.generate_key(2048))


def _moto_key() -> dict[str, Any]:
    from moto.utilities.utils import load_resource

    key: dict[str, Any] = load_resource("cognitoidp/resources/jwks-private.json")
    return key


@pytest.fixture
def user_pool(moto_cloud: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[UserPoolFixture]:
    # Deterministic ids: the portal app caches its settings across the tests of a module.
    monkeypatch.setenv("MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY", "HASH")
    monkeypatch.setenv("MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY", "HASH")
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    ids = ensure_user_pool(cognito)
    for username, (group, tenant, customer) in USERS.items():
        add_user(cognito, ids, username, PASSWORD, group, tenant, customer)
    monkeypatch.setenv("HEMERA_USER_POOL_ID", ids.pool_id)
    monkeypatch.setenv("HEMERA_USER_POOL_CLIENT_ID", ids.client_id)
    # In-process moto answers `requests` (not urllib) for the pool's JWKS URL.
    monkeypatch.setattr("hemera.adapters.jwks.fetch_json", lambda url: requests.get(url, timeout=5).json())
    cold_start()
    yield UserPoolFixture(cognito, ids)
