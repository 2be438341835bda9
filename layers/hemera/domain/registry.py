"""What the platform knows about tenants and meters (registered from the tenant files)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo


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
