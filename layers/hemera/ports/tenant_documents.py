"""Port of a tenant's settings document (one JSON document per tenant and kind of setting)."""

from __future__ import annotations

from typing import Any, Protocol

from hemera.domain.tenancy import TenantContext


class TenantDocuments(Protocol):
    def put(self, ctx: TenantContext, document: Any | None) -> None:
        """Store the tenant's document (None: remove it)."""
        ...

    def get(self, ctx: TenantContext) -> Any | None:
        """The tenant's document; None when it has none."""
        ...
