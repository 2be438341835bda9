"""Admitting a portal request under its tenant's rate limit, and where the limits come from.

The limits travel to the function as one environment variable (`HEMERA_PORTAL_RATE_LIMITS`, JSON)
that `cdk synth` writes from the tenant files, parsed once at cold start: reading the tenant's
limit costs no extra DynamoDB read per request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from hemera.domain.rate_limits import RateDecision, RateLimit, RateLimited, RateLimits, Window, decide
from hemera.domain.tenancy import TenantContext
from hemera.ports.rate_limits import RequestCounter
from hemera.tenants import TenantDefinition

RATE_LIMITS_ENV_VAR = "HEMERA_PORTAL_RATE_LIMITS"


def admit(counter: RequestCounter, limits: RateLimits, ctx: TenantContext, now: float) -> RateDecision:
    """Count the request against its tenant's current window; raise `RateLimited` past the limit."""
    window = Window.at(now)
    decision = decide(limits.of(ctx.tenant_id), window, counter.hit(ctx, window), now)
    if not decision.allowed:
        raise RateLimited(ctx.tenant_id, decision)
    return decision


def limits_of_tenants(tenants: Iterable[TenantDefinition], default: RateLimit | None = None) -> RateLimits:
    """The tenants whose file has an `api` section override the platform default."""
    overrides = {
        t.id: RateLimit(t.api.requests_per_minute, t.api.burst) for t in tenants if t.api is not None
    }
    return RateLimits(default=default or RateLimit(), overrides=overrides)


def _limit(document: Mapping[str, int]) -> RateLimit:
    return RateLimit(int(document["requests_per_minute"]), int(document.get("burst", 0)))


def encode_limits(limits: RateLimits) -> str:
    def one(limit: RateLimit) -> dict[str, int]:
        return {"requests_per_minute": limit.requests_per_minute, "burst": limit.burst}

    overrides = limits.overrides or {}
    return json.dumps(
        {
            "default": one(limits.default),
            "tenants": {t: one(limit) for t, limit in sorted(overrides.items())},
        },
        separators=(",", ":"),
    )


def limits_from_environ(env: Mapping[str, str]) -> RateLimits:
    """The limits `cdk synth` wrote; unset means the platform default for every tenant."""
    raw = env.get(RATE_LIMITS_ENV_VAR)
    if not raw:
        return RateLimits()
    document = json.loads(raw)
    return RateLimits(
        default=_limit(document.get("default", {"requests_per_minute": RateLimit().requests_per_minute})),
        overrides={tenant: _limit(limit) for tenant, limit in document.get("tenants", {}).items()},
    )
