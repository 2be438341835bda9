"""What the platform knows about tenants, customers and meters (registered from the tenant files)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from hemera.domain.billing.tariff import MeterTariff


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    country: str
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Meter:
    tenant_id: str
    id: str
    model: str
    protocol: str
    device_id: str
    customer_id: str
    # CT ratio x VT ratio: the factor from what the meter counts to what the customer uses.
    multiplier: Decimal = Decimal(1)
    # The tariff it is billed under, with its calendar and contracted demand (None: not billed).
    tariff: MeterTariff | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    """A C&I customer of a tenant, with its registration data from the tenant file."""

    tenant_id: str
    id: str
    name: str
    # industry / commerce / office: the load shape the tenant declared for the customer.
    load_class: str
    # Tax or company registration number (CNPJ, ABN…), when the tenant file gives one.
    tax_id: str | None = None
