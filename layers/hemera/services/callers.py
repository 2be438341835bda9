"""Who is calling the portal, resolved once per request: a Cognito user (bearer JWT: tenant admin,
tenant operator, customer user) or an API key (machine client, third party with consent).

Cognito ID tokens carry the user's groups (`cognito:groups`) and custom attributes
(`custom:tenant`, `custom:customer`); access tokens carry the groups but, without a
pre-token-generation trigger, no custom attributes, so an access token that names no tenant is
refused rather than guessed at.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from hemera.domain.errors import InvalidTenantId, InvalidToken, Unauthenticated
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.services.access import DEFAULT_SCOPES, READ, Caller, PortalPorts, Role, authenticate

# Cognito signs with RS256 only; pinning it refuses `alg: none` and HMAC-with-the-public-key.
_ALGORITHMS = ["RS256"]
# Groups in order of precedence: a user in several groups gets the widest role it holds.
_GROUP_ROLES = (("admin", Role.ADMIN), ("operator", Role.OPERATOR), ("customer", Role.CUSTOMER))
TENANT_CLAIM = "custom:tenant"
CUSTOMER_CLAIM = "custom:customer"


@dataclass(frozen=True, slots=True)
class UserPool:
    """The one Cognito user pool (and app client) whose tokens the API accepts."""

    issuer: str  # https://cognito-idp.<region>.amazonaws.com/<pool id>
    client_id: str

    @classmethod
    def of(cls, region: str, pool_id: str, client_id: str) -> UserPool:
        return cls(f"https://cognito-idp.{region}.amazonaws.com/{pool_id}", client_id)


class CognitoTokenVerifier:
    """Verifies Cognito JWTs: RS256 signature against the pool's JWKS (fetched on first use and
    kept for the life of the function), `exp`, `iss`, and the app client (`aud` of an ID token,
    `client_id` of an access token)."""

    def __init__(
        self,
        pool: UserPool,
        load_key_set: Callable[[], Mapping[str, Any]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._load_key_set = load_key_set
        self._clock = clock
        self._key_set: KeySet | None = None

    def _keys(self) -> KeySet:
        if self._key_set is None:
            self._key_set = KeySet.import_key_set(dict(self._load_key_set()))  # type: ignore[arg-type]
        return self._key_set

    def claims(self, token: str) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, self._keys(), algorithms=_ALGORITHMS)
            jwt.JWTClaimsRegistry(
                now=lambda: int(self._clock()),
                iss={"essential": True, "value": self._pool.issuer},
                exp={"essential": True},
                token_use={"essential": True, "values": ["id", "access"]},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise InvalidToken(f"bearer token refused: {type(exc).__name__}") from exc
        claims = dict(decoded.claims)
        audience = claims.get("aud") if claims["token_use"] == "id" else claims.get("client_id")
        if audience != self._pool.client_id:
            raise InvalidToken("bearer token was issued to another app client")
        return claims


def role_of(groups: object) -> Role:
    names = set(groups) if isinstance(groups, list) else set()
    for group, role in _GROUP_ROLES:
        if group in names:
            return role
    raise InvalidToken("the user is in none of the groups admin, operator, customer")


def caller_from_claims(claims: Mapping[str, Any], correlation_id: str = "") -> Caller:
    """Map verified Cognito claims to a Caller: the group gives the role, `custom:tenant` the
    tenant and, for a customer user, `custom:customer` the one customer it may see. A customer
    user without a customer is refused, never widened to the whole tenant."""
    role = role_of(claims.get("cognito:groups"))
    tenant, customer = claims.get(TENANT_CLAIM), claims.get(CUSTOMER_CLAIM)
    try:
        ctx = TenantContext(str(tenant), correlation_id) if isinstance(tenant, str) else None
        if role is Role.CUSTOMER:
            customer = validate_id(customer, "customer") if isinstance(customer, str) else None
    except InvalidTenantId as exc:
        raise InvalidToken("the token's tenant or customer is not a valid id") from exc
    if ctx is None:
        raise InvalidToken(f"the token names no tenant ({TENANT_CLAIM}); use the ID token")
    if role is Role.CUSTOMER:
        if customer is None:
            raise InvalidToken(f"a customer user's token needs {CUSTOMER_CLAIM}")
        return Caller(ctx, customer, role, DEFAULT_SCOPES)
    return Caller(ctx, None, role, DEFAULT_SCOPES)


def authenticate_request(
    ports: PortalPorts, headers: Mapping[str, str], correlation_id: str = "", scope: str = READ
) -> Caller:
    """The caller of one request: `Authorization: Bearer <Cognito JWT>` if present, else
    `x-api-key`. Raises Unauthenticated (401) for anything not proven, and for a caller whose
    scopes do not include `scope`."""
    authorization = headers.get("authorization")
    if authorization is not None:
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise InvalidToken("Authorization must be 'Bearer <token>'")
        if ports.tokens is None:
            raise Unauthenticated("this API has no user pool configured; use x-api-key")
        caller = caller_from_claims(ports.tokens.claims(token.strip()), correlation_id)
    else:
        caller = authenticate(ports.keys, headers.get("x-api-key"), correlation_id, ports.consents)
    if scope not in caller.scopes:
        raise Unauthenticated(f"these credentials do not grant the scope {scope!r}")
    return caller
