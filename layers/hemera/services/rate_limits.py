"""Admitting a portal request under its tenant's rate limit, and where the limits come from.

Each tenant's allowance (the `api:` section of its file) is stored at onboarding
(`ApiLimitStore`, the tenant's "APILIMITS" settings document); the portal reads it through
`StoredRateLimits`, kept a minute per tenant per warm function: one read a minute, not one per
request, and a new or changed tenant needs no redeploy (no environment variable holds every
tenant's allowance: Lambda's 4 KB would not).
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Protocol

from hemera.domain.rate_limits import RateDecision, RateLimit, RateLimited, Window, decide
from hemera.domain.tenancy import TenantContext
from hemera.ports.rate_limits import RequestCounter
from hemera.services.tenant_settings import ApiLimitStore
from hemera.tenants import TenantDefinition


class LimitSource(Protocol):
    def of(self, tenant_id: str) -> RateLimit:
        """The tenant's allowance."""
        ...


def admit(counter: RequestCounter, limits: LimitSource, ctx: TenantContext, now: float) -> RateDecision:
    """Count the request against its tenant's current window; raise `RateLimited` past the limit."""
    window = Window.at(now)
    decision = decide(limits.of(ctx.tenant_id), window, counter.hit(ctx, window), now)
    if not decision.allowed:
        raise RateLimited(ctx.tenant_id, decision)
    return decision


def limit_of(definition: TenantDefinition) -> RateLimit | None:
    """A tenant file's allowance (None: the platform default)."""
    api = definition.api
    return None if api is None else RateLimit(api.requests_per_minute, api.burst)


class StoredRateLimits:
    """Each tenant's stored allowance (the platform default when it has none), kept `ttl_s`."""

    def __init__(
        self,
        store: ApiLimitStore,
        default: RateLimit | None = None,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self._store, self._default, self._ttl, self._clock = store, default or RateLimit(), ttl_s, clock
        self._cached: dict[str, tuple[float, RateLimit]] = {}

    def of(self, tenant_id: str) -> RateLimit:
        now = self._clock()
        cached = self._cached.get(tenant_id)
        if cached is None or now - cached[0] >= self._ttl:
            cached = (now, self._store.limit(TenantContext(tenant_id)) or self._default)
            self._cached[tenant_id] = cached
        return cached[1]
