"""Tenant definitions (`tenants/<id>.yaml`): the pydantic schema and the loader.

Validated in tests, at `cdk synth` and by the local cloud, so a bad tenant file fails the build
with the file, the path inside it and the reason.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from hemera.domain.errors import HemeraError
from hemera.domain.tenancy import validate_id

Id = Annotated[str, AfterValidator(validate_id)]
LoadClass = Literal["industry", "commerce", "office"]


class InvalidTenantFile(HemeraError):
    """A tenant file that cannot be used: `problems` holds (path inside the file, reason) pairs,
    the path written as in the file (`meters[3].ct_ratio`)."""

    reason = "invalid_tenant_file"

    def __init__(self, file: Path, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = tuple(problems)
        super().__init__(f"{file}: " + "; ".join(f"{where}: {why}" for where, why in problems))


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
    return name


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    street: str = Field(min_length=1)
    city: str = Field(min_length=1)
    region: str | None = None  # state, province
    postal_code: str | None = None
    country: str = Field(pattern=r"^[A-Z]{2}$")


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    # A plausibility check, not RFC 5322: catches a phone number typed into the e-mail field.
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()-]{6,20}$")


class Customer(BaseModel):
    """A C&I customer of the tenant, with its registration data (the Customer Database)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: str
    load_class: LoadClass = "industry"
    # The customer's tax or company registration number as the country writes it (CNPJ, ABN…).
    tax_id: str | None = Field(default=None, min_length=1, max_length=40)
    address: Address | None = None
    contact: Contact | None = None


class Tariff(BaseModel):
    """A tariff a meter is billed under; its time-of-use posts come with the billing issue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: str = Field(min_length=1)
    # Name of the time-of-use schedule (posts and hours) this tariff uses, once billing has them.
    tou_schedule: str | None = None


class VeeOverrides(BaseModel):
    """The tenant's changes to the platform's VEE defaults (typed now, applied by the VEE issue)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spike_factor: float | None = Field(default=None, gt=1)
    max_estimated_gap_intervals: int | None = Field(default=None, ge=0)
    estimation_methods: tuple[Literal["linear", "like_day", "profile"], ...] | None = None


class AlarmOverrides(BaseModel):
    """The tenant's changes to the platform's alarm defaults (typed now, applied by the alarms issue)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    demand_exceeded_margin: float | None = Field(default=None, ge=0, le=1)
    power_factor_below: float | None = Field(default=None, gt=0, le=1)
    disabled: tuple[str, ...] = ()


class ExportSchedule(BaseModel):
    """A billing export the tenant receives (placeholder until the billing issue runs it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    format: Literal["csv", "nem12", "green_button"]
    # Day of the month the previous period is exported (1-28: exists in every month).
    day_of_month: int = Field(ge=1, le=28)


class NotificationChannel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["email", "webhook"]
    target: str = Field(min_length=1)


class ApiLimits(BaseModel):
    """The tenant's Customer Portal API allowance (default: 600 requests a minute, no burst)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int = Field(ge=1, le=100_000)
    burst: int = Field(default=0, ge=0, le=100_000)


class Rtu(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id


def _ratio(value: object) -> Decimal:
    """A transformer ratio as utilities write it: `400/5` (primary/secondary) or a number."""
    try:
        if isinstance(value, str) and "/" in value:
            primary, secondary = (Decimal(part.strip()) for part in value.split("/", 1))
            ratio = primary / secondary
        else:
            ratio = Decimal(str(value))
    except (InvalidOperation, ZeroDivisionError) as exc:
        raise ValueError(f"{value!r} is not a ratio like 400/5 or 80") from exc
    if not ratio.is_finite() or ratio <= 0:
        raise ValueError(f"ratio {value!r} must be positive")
    return ratio


Ratio = Annotated[Decimal, BeforeValidator(_ratio)]


class MeterDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    model: str
    protocol: Literal["modbus", "dlms", "canonical"]
    rtu: Id
    customer: Id
    unit_id: int = Field(default=1, ge=0, le=247)
    # Peak active demand of the simulated/expected load, kW (drives the simulator's profile).
    peak_kw: float = Field(default=250.0, gt=0)
    # Instrument transformers of a transformer-rated C&I meter: the meter measures the secondary
    # side, the customer is billed for the primary, so every energy value is multiplied by
    # ct_ratio x vt_ratio (e.g. CT 400/5 = 80). Direct-connected meters keep 1.
    ct_ratio: Ratio = Decimal(1)
    vt_ratio: Ratio = Decimal(1)
    # The demand the customer contracted, kW (alarms and billing compare measured demand to it).
    contracted_demand_kw: Decimal | None = Field(default=None, gt=0)
    tariff: Id | None = None

    @property
    def multiplier(self) -> Decimal:
        return self.ct_ratio * self.vt_ratio


class TenantDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    timezone: Annotated[str, AfterValidator(_zone)]
    # Nominal supply voltage (phase-to-neutral, V) of the tenant's low-voltage network.
    nominal_voltage_v: float | None = Field(default=None, gt=0, le=1_000_000)
    tariffs: tuple[Tariff, ...] = ()
    vee: VeeOverrides | None = None
    alarms: AlarmOverrides | None = None
    exports: tuple[ExportSchedule, ...] = ()
    notifications: tuple[NotificationChannel, ...] = ()
    api: ApiLimits | None = None
    customers: tuple[Customer, ...]
    rtus: tuple[Rtu, ...]
    meters: tuple[MeterDef, ...]

    @model_validator(mode="after")
    def _references(self) -> TenantDefinition:
        problems = []
        id_lists: dict[str, list[str]] = {
            "tariffs": [t.id for t in self.tariffs],
            "customers": [c.id for c in self.customers],
            "rtus": [r.id for r in self.rtus],
            "meters": [m.id for m in self.meters],
            "exports": [e.id for e in self.exports],
        }
        for kind, ids in id_lists.items():
            seen: set[str] = set()
            for index, item_id in enumerate(ids):
                if item_id in seen:
                    problems.append(f"{kind}[{index}].id: duplicate id {item_id}")
                seen.add(item_id)
        customers = {c.id for c in self.customers}
        rtus = {r.id for r in self.rtus}
        tariffs = {t.id for t in self.tariffs}
        for index, meter in enumerate(self.meters):
            if meter.customer not in customers:
                problems.append(f"meters[{index}].customer: unknown customer {meter.customer}")
            if meter.rtu not in rtus:
                problems.append(f"meters[{index}].rtu: unknown rtu {meter.rtu}")
            if meter.tariff is not None and meter.tariff not in tariffs:
                problems.append(f"meters[{index}].tariff: unknown tariff {meter.tariff}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def customer(self, customer_id: str) -> Customer:
        return next(c for c in self.customers if c.id == customer_id)

    def meters_of(self, rtu_id: str) -> tuple[MeterDef, ...]:
        return tuple(m for m in self.meters if m.rtu == rtu_id)


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as written in the file: `meters[3].ct_ratio`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or "<root>"


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for e in error.errors():
        cause = e.get("ctx", {}).get("error")
        if not e["loc"] and isinstance(cause, ValueError):
            # A cross-reference check: its message already lists `path: reason` pairs.
            for item in str(cause).split("; "):
                where, _, why = item.partition(": ")
                problems.append((where, why) if why else ("<root>", item))
        else:
            reason = str(cause) if isinstance(cause, ValueError) else e["msg"]
            problems.append((field_path(e["loc"]), reason))
    return problems


def load_tenant_file(path: Path) -> TenantDefinition:
    try:
        document = yaml.safe_load(path.read_text())
        tenant = TenantDefinition.model_validate(document)
    except yaml.YAMLError as exc:
        raise InvalidTenantFile(path, [("<root>", f"not YAML: {exc}")]) from exc
    except ValidationError as exc:
        raise InvalidTenantFile(path, _problems(exc)) from exc
    if tenant.id != path.stem:
        raise InvalidTenantFile(path, [("id", f"{tenant.id!r} must equal the file name {path.stem!r}")])
    return tenant


def load_tenant_dir(folder: Path) -> list[TenantDefinition]:
    """Every `*.yaml` under `folder`, validated; device ids are unique across tenants per tenant."""
    return [load_tenant_file(p) for p in sorted(folder.glob("*.yaml"))]
