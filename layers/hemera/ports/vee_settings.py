"""Port of each tenant's VEE overrides (the `vee:` section of its tenant file), stored at
onboarding and read by whatever runs VEE (the VEE function, the portal's edits)."""

from __future__ import annotations

from typing import Protocol

from hemera.domain.tenancy import TenantContext
from hemera.tenants import VeeOverrides


class VeeSettingsStore(Protocol):
    def put_overrides(self, ctx: TenantContext, overrides: VeeOverrides | None) -> None:
        """Store the tenant's overrides (None: the tenant runs on the defaults)."""
        ...

    def overrides(self, ctx: TenantContext) -> VeeOverrides | None:
        """The tenant's overrides; None when it has none (or was never onboarded)."""
        ...
