"""In-memory VEE settings store: the fake the contract tests hold to the DynamoDB one."""

from __future__ import annotations

from hemera.domain.tenancy import TenantContext
from hemera.tenants import VeeOverrides


class MemoryVeeSettings:
    def __init__(self) -> None:
        self._overrides: dict[str, VeeOverrides] = {}

    def put_overrides(self, ctx: TenantContext, overrides: VeeOverrides | None) -> None:
        if overrides is None:
            self._overrides.pop(ctx.tenant_id, None)
        else:
            self._overrides[ctx.tenant_id] = overrides

    def overrides(self, ctx: TenantContext) -> VeeOverrides | None:
        return self._overrides.get(ctx.tenant_id)
