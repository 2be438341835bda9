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
    reason = "invalid_tenant_file"


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
    return name


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: str
    load_class: LoadClass = "industry"


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

    @property
    def multiplier(self) -> Decimal:
        return self.ct_ratio * self.vt_ratio


class TenantDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    timezone: Annotated[str, AfterValidator(_zone)]
    customers: tuple[Customer, ...]
    rtus: tuple[Rtu, ...]
    meters: tuple[MeterDef, ...]

    @model_validator(mode="after")
    def _references(self) -> TenantDefinition:
        for kind, items in (("customer", self.customers), ("rtu", self.rtus), ("meter", self.meters)):
            ids = [i.id for i in items]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} ids: {', '.join(dupes)}")
        customers = {c.id for c in self.customers}
        rtus = {r.id for r in self.rtus}
        for meter in self.meters:
            if meter.customer not in customers:
                raise ValueError(f"meter {meter.id} names unknown customer {meter.customer}")
            if meter.rtu not in rtus:
                raise ValueError(f"meter {meter.id} names unknown rtu {meter.rtu}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def customer(self, customer_id: str) -> Customer:
        return next(c for c in self.customers if c.id == customer_id)

    def meters_of(self, rtu_id: str) -> tuple[MeterDef, ...]:
        return tuple(m for m in self.meters if m.rtu == rtu_id)


def load_tenant_file(path: Path) -> TenantDefinition:
    try:
        document = yaml.safe_load(path.read_text())
        tenant = TenantDefinition.model_validate(document)
    except yaml.YAMLError as exc:
        raise InvalidTenantFile(f"{path}: not YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidTenantFile(f"{path}: {problems}") from exc
    if tenant.id != path.stem:
        raise InvalidTenantFile(f"{path}: id {tenant.id!r} must equal the file name {path.stem!r}")
    return tenant


def load_tenant_dir(folder: Path) -> list[TenantDefinition]:
    """Every `*.yaml` under `folder`, validated; device ids are unique across tenants per tenant."""
    return [load_tenant_file(p) for p in sorted(folder.glob("*.yaml"))]
