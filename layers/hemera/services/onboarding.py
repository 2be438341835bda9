"""Registering a tenant definition (`tenants/<id>.yaml`) in the platform's registry."""

from __future__ import annotations

from dataclasses import dataclass

from hemera.domain.billing.tariff import MeterTariff
from hemera.domain.registry import Customer, Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.ports import Registry
from hemera.ports.alarms import AlarmSettingsStore
from hemera.ports.exports import ExportScheduleStore
from hemera.services.alarms import register_alarm_settings
from hemera.services.exports import register_export_schedules
from hemera.services.rate_limits import limit_of
from hemera.services.tenant_settings import ApiLimitStore, VeeSettingsStore
from hemera.tenants import MeterDef, TenantDefinition


def register_tenant(registry: Registry, definition: TenantDefinition) -> int:
    """Write the tenant, its customers and its meters (idempotent); returns the number of meters
    registered."""
    ctx = TenantContext(definition.id)
    registry.put_tenant(Tenant(definition.id, definition.name, definition.country, definition.timezone))
    registry.put_customers(
        ctx,
        [
            # `tax_id` is read with getattr: tenant files without registration data still load.
            Customer(
                definition.id,
                c.id,
                c.name,
                c.load_class,
                getattr(c, "tax_id", None),
                c.reading_day,
            )
            for c in definition.customers
        ],
    )
    registry.put_meters(
        ctx,
        [
            Meter(
                definition.id,
                m.id,
                m.model,
                m.protocol,
                m.rtu,
                m.customer,
                m.multiplier,
                _tariff(definition, m),
                nmi=m.nmi,
                serial=m.serial,
            )
            for m in definition.meters
        ],
    )
    return len(definition.meters)


def _tariff(definition: TenantDefinition, meter: MeterDef) -> MeterTariff | None:
    """The billing view of the meter's tariff (calendar in the tenant's zone, its contract)."""
    tariff = next((t for t in definition.tariffs if t.id == meter.tariff), None)
    if tariff is None:
        return None
    return tariff.meter_tariff(
        definition.timezone,
        definition.country,
        meter.contracted_demand_kw,
        meter.contracted_demand_by_post_kw,
    )


@dataclass(frozen=True, slots=True)
class OnboardingStores:
    """Where the running platform keeps what a tenant file says (`hemera.wiring.onboarding_stores`)."""

    registry: Registry
    alarm_settings: AlarmSettingsStore
    export_schedules: ExportScheduleStore
    vee_settings: VeeSettingsStore
    api_limits: ApiLimitStore


def onboard_tenant(stores: OnboardingStores, definition: TenantDefinition) -> int:
    """Everything the running platform keeps of a tenant file: the registry (`register_tenant`),
    the alarm settings (thresholds, nominal voltage, contracts; `register_alarm_settings`), the
    export schedules (`register_export_schedules`), the VEE overrides (its `vee:` section, read by
    VEE at run time) and the portal allowance (`api:`). Idempotent; returns the number of meters."""
    meters = register_tenant(stores.registry, definition)
    register_alarm_settings(stores.alarm_settings, definition)
    register_export_schedules(stores.export_schedules, definition)
    stores.vee_settings.put_overrides(TenantContext(definition.id), definition.vee)
    stores.api_limits.put_limit(TenantContext(definition.id), limit_of(definition))
    return meters
