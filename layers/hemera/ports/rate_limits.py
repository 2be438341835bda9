"""Port of the per-tenant request counters (the portal's rate limits)."""

from __future__ import annotations

from typing import Protocol

from hemera.domain.rate_limits import Window
from hemera.domain.tenancy import TenantContext


class RequestCounter(Protocol):
    def hit(self, ctx: TenantContext, window: Window) -> int:
        """Count one request of the tenant in `window`, atomically; return the window's new count."""
        ...
