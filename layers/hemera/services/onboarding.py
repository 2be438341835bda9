"""Registering a tenant definition (`tenants/<id>.yaml`) in the platform's registry."""

from __future__ import annotations

from hemera.domain.registry import Customer, Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.ports import Registry
from hemera.tenants import TenantDefinition


def register_tenant(registry: Registry, definition: TenantDefinition) -> int:
    """Write the tenant, its customers and its meters (idempotent); returns the number of meters
    registered."""
    ctx = TenantContext(definition.id)
    registry.put_tenant(Tenant(definition.id, definition.name, definition.country, definition.timezone))
    registry.put_customers(
        ctx,
        [
            # `tax_id` is read with getattr: tenant files without registration data still load.
            Customer(definition.id, c.id, c.name, c.load_class, getattr(c, "tax_id", None))
            for c in definition.customers
        ],
    )
    registry.put_meters(
        ctx,
        [
            Meter(definition.id, m.id, m.model, m.protocol, m.rtu, m.customer, m.multiplier)
            for m in definition.meters
        ],
    )
    return len(definition.meters)
