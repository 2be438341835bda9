"""Cognito claims to callers, and the token checks, without network: a key pair of our own plays
the user pool."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from hemera.domain.errors import InvalidToken
from hemera.services.access import Role
from hemera.services.callers import CognitoTokenVerifier, UserPool, caller_from_claims

POOL = UserPool.of("us-east-1", "us-east-1_pool", "portal-client")
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
NOW = 1_800_000_000


def claims(**extra):
    base = {"iss": POOL.issuer, "aud": POOL.client_id, "token_use": "id", "exp": NOW + 3600, "iat": NOW}
    return {**base, **extra}


def sign(payload, key=KEY):
    return jwt.encode({"alg": "RS256", "kid": "k1"}, payload, key)


def verifier(now=NOW):
    return CognitoTokenVerifier(POOL, lambda: KeySet([KEY]).as_dict(private=False), clock=lambda: now)


@pytest.mark.parametrize(
    ("groups", "role", "customer"),
    [
        (["admin"], Role.ADMIN, None),
        (["operator"], Role.OPERATOR, None),
        (["customer"], Role.CUSTOMER, "harbour-offices"),
        (["customer", "operator"], Role.OPERATOR, None),  # the widest group wins
    ],
)
def test_groups_and_attributes_make_the_caller(groups, role, customer):
    caller = caller_from_claims(
        {"cognito:groups": groups, "custom:tenant": "coastal-power", "custom:customer": "harbour-offices"}
    )
    assert (caller.role, caller.tenant_id, caller.customer_id) == (role, "coastal-power", customer)


@pytest.mark.parametrize(
    "bad",
    [
        {"cognito:groups": ["customer"], "custom:tenant": "coastal-power"},  # never widened
        {"cognito:groups": ["operator"]},
        {"cognito:groups": ["viewer"], "custom:tenant": "coastal-power"},
        {"cognito:groups": ["operator"], "custom:tenant": "Coastal#Power"},
        {},
    ],
)
def test_claims_that_do_not_name_a_role_tenant_and_customer_are_refused(bad):
    with pytest.raises(InvalidToken):
        caller_from_claims(bad)


def test_a_valid_token_verifies_and_the_same_token_after_exp_does_not():
    token = sign(claims(sub="u"))
    assert verifier().claims(token)["sub"] == "u"
    with pytest.raises(InvalidToken):
        verifier(now=NOW + 3601).claims(token)


@pytest.mark.parametrize(
    "token",
    [
        sign(claims(), RSAKey.generate_key(2048, parameters={"kid": "k1"})),  # another key
        sign(claims(iss="https://cognito-idp.us-east-1.amazonaws.com/other")),
        sign(claims(aud="another-client")),
        sign({k: v for k, v in claims().items() if k != "exp"}),
        sign(claims(token_use="refresh")),
        jwt.encode({"alg": "HS256"}, claims(), OctKey.import_key("s" * 32)),
    ],
    ids=["other key", "other issuer", "other client", "no exp", "token_use", "HS256"],
)
def test_forged_or_foreign_tokens_are_refused(token):
    with pytest.raises(InvalidToken):
        verifier().claims(token)


def test_the_key_set_is_fetched_once():
    fetches = []

    def load():
        fetches.append(1)
        return KeySet([KEY]).as_dict(private=False)

    checker = CognitoTokenVerifier(POOL, load, clock=lambda: NOW)
    for _ in range(3):
        checker.claims(sign(claims()))
    assert len(fetches) == 1
