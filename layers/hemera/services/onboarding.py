"""Registering a tenant definition (`tenants/<id>.yaml`) in the platform's registry."""

from __future__ import annotations

from hemera.domain.registry import Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.ports import Registry
from hemera.tenants import TenantDefinition


def register_tenant(registry: Registry, definition: TenantDefinition) -> int:
    """Write the tenant and its meters (idempotent); returns the number of meters registered."""
    registry.put_tenant(Tenant(definition.id, definition.name, definition.country, definition.timezone))
    registry.put_meters(
        TenantContext(definition.id),
        [
            Meter(definition.id, m.id, m.model, m.protocol, m.rtu, m.customer, m.multiplier)
            for m in definition.meters
        ],
    )
    return len(definition.meters)
