"""Per-tenant request limits of the Customer Portal API: a fixed one-minute window per tenant.

Every authenticated request counts against its tenant's window (`T#<tenant>#RATE`, `W#<window
start>`), so one tenant's burst never spends another tenant's allowance. A fixed window is the
cheapest counter that DynamoDB can keep atomically (one `UpdateItem ADD` per request); its known
weakness (up to twice the allowance across a window boundary) is acceptable for a fairness limit,
and the API Gateway stage throttling caps the whole API against floods.

Defaults: 600 requests a minute per tenant and no extra burst; a tenant file may raise or lower
them (`api: {requests_per_minute: …, burst: …}`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hemera.domain.errors import HemeraError
from hemera.domain.tenancy import TenantContext

WINDOW_SECONDS = 60
DEFAULT_REQUESTS_PER_MINUTE = 600
DEFAULT_BURST = 0
# A window's counter outlives its window a little (clock skew between function instances), then
# DynamoDB's TTL on `expires_at` removes it: the table never accumulates counters.
COUNTER_TTL_SECONDS = 2 * WINDOW_SECONDS


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A tenant's allowance: `requests_per_minute` per window, plus `burst` more in any window."""

    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    burst: int = DEFAULT_BURST

    def __post_init__(self) -> None:
        if self.requests_per_minute < 1 or self.burst < 0:
            raise ValueError(f"invalid rate limit {self.requests_per_minute}/min, burst {self.burst}")

    @property
    def per_window(self) -> int:
        """Requests one window admits (the `RateLimit-Limit` the caller sees)."""
        return self.requests_per_minute + self.burst


@dataclass(frozen=True, slots=True)
class Window:
    """One tenant's counting window: `[start, start + WINDOW_SECONDS)` in epoch seconds."""

    start: int

    @classmethod
    def at(cls, epoch_seconds: float) -> Window:
        return cls(int(epoch_seconds) // WINDOW_SECONDS * WINDOW_SECONDS)

    @property
    def end(self) -> int:
        return self.start + WINDOW_SECONDS

    @property
    def expires_at(self) -> int:
        return self.start + COUNTER_TTL_SECONDS


def window_sk(window: Window) -> str:
    return f"W#{window.start}"


def rate_pk(ctx: TenantContext) -> str:
    return f"{ctx.key_prefix}RATE"


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The verdict on one request: `count` is its position in the tenant's current window."""

    limit: int
    count: int
    retry_after: int  # seconds until the window ends (whole seconds, at least 1)

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def remaining(self) -> int:
        return max(self.limit - self.count, 0)


def decide(limit: RateLimit, window: Window, count: int, epoch_seconds: float) -> RateDecision:
    """Admit the `count`-th request of `window` if it is within the tenant's allowance."""
    retry_after = max(1, window.end - int(epoch_seconds))
    return RateDecision(limit=limit.per_window, count=count, retry_after=retry_after)


class RateLimited(HemeraError):
    """The tenant spent its window's allowance: 429 with `Retry-After`."""

    reason = "rate_limited"

    def __init__(self, tenant_id: str, decision: RateDecision) -> None:
        self.decision = decision
        super().__init__(
            f"tenant {tenant_id} made more than {decision.limit} requests this minute; "
            f"retry after {decision.retry_after} s"
        )
