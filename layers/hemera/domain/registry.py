"""What the platform knows about tenants, customers and meters (registered from the tenant files)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from hemera.domain.billing.tariff import MeterTariff
from hemera.domain.errors import InvalidMeterIdentity
from hemera.domain.nmi import check_serial, parse_nmi


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
    # Its NMI (the 10 characters, without the checksum digit) where the tenant is in Australia's
    # NEM; None: no NMI, and NEM12 exports leave the meter out (`hemera.domain.nmi`).
    nmi: str | None = None
    # The manufacturer's serial number (1-12 characters: NEM12's MeterSerialNumber).
    serial: str | None = None

    def __post_init__(self) -> None:
        try:
            if self.nmi is not None and parse_nmi(self.nmi) != self.nmi:
                raise ValueError(f"NMI {self.nmi!r} is registered without its checksum digit")
            if self.serial is not None:
                check_serial(self.serial)
        except ValueError as exc:
            raise InvalidMeterIdentity(f"meter {self.id}: {exc}") from exc


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
    # The day of the month the customer's meters are read (1-28): it closes the customer's
    # billing cycle instead of the tariff's reading day (None: the tariff's).
    reading_day: int | None = None

    def __post_init__(self) -> None:
        if self.reading_day is not None and not 1 <= self.reading_day <= 28:
            raise ValueError(f"customer {self.id}: reading day must be 1-28, not {self.reading_day}")
