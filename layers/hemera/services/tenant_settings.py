"""Typed views of a tenant's settings documents (`hemera.ports.tenant_documents`): what onboarding
stores from the tenant file and the functions read at run time, each under its own name.

- `VeeSettingsStore` ("VEE"): the `vee:` overrides (VEE, the portal's edits);
- `ApiLimitStore` ("APILIMITS"): the `api:` allowance of the Customer Portal API.
"""

from __future__ import annotations

from hemera.domain.rate_limits import RateLimit
from hemera.domain.tenancy import TenantContext
from hemera.ports.tenant_documents import TenantDocuments
from hemera.tenants import VeeOverrides

VEE_DOCUMENT = "VEE"
API_LIMITS_DOCUMENT = "APILIMITS"


class VeeSettingsStore:
    def __init__(self, documents: TenantDocuments) -> None:
        self._documents = documents

    def put_overrides(self, ctx: TenantContext, overrides: VeeOverrides | None) -> None:
        """Store the tenant's overrides (None: the tenant runs on the defaults)."""
        document = None if overrides is None else overrides.model_dump(mode="json", exclude_none=True)
        self._documents.put(ctx, document)

    def overrides(self, ctx: TenantContext) -> VeeOverrides | None:
        """The tenant's overrides; None when it has none (or was never onboarded)."""
        document = self._documents.get(ctx)
        return None if document is None else VeeOverrides.model_validate(document)


class ApiLimitStore:
    def __init__(self, documents: TenantDocuments) -> None:
        self._documents = documents

    def put_limit(self, ctx: TenantContext, limit: RateLimit | None) -> None:
        """Store the tenant's allowance (None: the platform default applies)."""
        document = (
            None
            if limit is None
            else {"requests_per_minute": limit.requests_per_minute, "burst": limit.burst}
        )
        self._documents.put(ctx, document)

    def limit(self, ctx: TenantContext) -> RateLimit | None:
        document = self._documents.get(ctx)
        if document is None:
            return None
        return RateLimit(int(document["requests_per_minute"]), int(document.get("burst", 0)))
