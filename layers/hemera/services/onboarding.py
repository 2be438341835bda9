"""Registering a tenant definition (`tenants/<id>.yaml`) in the platform's registry."""

from __future__ import annotations

from hemera.domain.registry import Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.ports import Registry
from hemera.tenants import TenantDefinition


def register_tenant(registry: Registry, definition: TenantDefinition) -> int:
    """Write the tenant and its meters (idempotent); returns the number of meters registered."""
    registry.put_tenant(Tenant(definition.id, definition.name, definition.country, definition.timezone))
    ctx = TenantContext(definition.id)
    for meter in definition.meters:
        registry.put_meter(
            ctx,
            Meter(
                definition.id,
                meter.id,
                meter.model,
                meter.protocol,
                meter.rtu,
                meter.customer,
                meter.multiplier,
            ),
        )
    return len(definition.meters)
