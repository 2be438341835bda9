"""Tenant definitions (`tenants/<id>.yaml`): the pydantic schema and the loader.

Validated in tests, at `cdk synth` and by the local cloud, so a bad tenant file fails the build
with the file, the path inside it and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time
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
    ValidationInfo,
    field_validator,
    model_validator,
)

from hemera.domain.billing.tariff import (
    ALL_POSTS,
    OVERRUN_TOLERANCE,
    PF_REFERENCE,
    BillingRules,
    MeterTariff,
)
from hemera.domain.billing.tou import FORA_PONTA, PONTA, PostWindow, TouCalendar
from hemera.domain.errors import HemeraError
from hemera.domain.nmi import check_serial, parse_nmi
from hemera.domain.tenancy import validate_id
from hemera.domain.vee.catalog import DisableableRule, EstimatorName
from hemera.domain.vee.config import VeeConfig

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
    # The day of the month the customer's meters are read (1-28); it overrides the reading day
    # of the meters' tariffs for this customer's billing cycle (README "Billing determinants").
    reading_day: int | None = Field(default=None, ge=1, le=28)


PostName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TouWindow(BaseModel):
    """A daily window of local time belonging to a post (`peak 14:00 for 6 h on business days`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    post: PostName
    start_hour: int = Field(ge=0, le=23)
    hours: int = Field(ge=1, le=24)
    business_days_only: bool = True


class Tariff(BaseModel):
    """A tariff a meter is billed under: its time-of-use calendar, billing cycle and the rules of
    its billing determinants (`hemera.domain.billing`; README "Billing determinants").

    The defaults are the Brazilian Group A tariff of ANEEL REN 414/1000: ponta = `ponta_hours` (3)
    consecutive hours from `ponta_start_hour` on business days (Monday-Friday except national
    holidays of the tenant's country), fora ponta otherwise; fR 0.92; capacitive window of 6 h
    from `capacitive_start` (inside 23:30-06:30); 15-minute demand; overrun past 5 %. A tariff
    with other posts lists `windows` (they replace the ponta window) and names `default_post`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: str = Field(min_length=1)
    # A label of the time-of-use schedule (free text; the calendar below is what billing uses).
    tou_schedule: str | None = None
    ponta_start_hour: int = Field(default=18, ge=0, le=23)
    ponta_hours: int = Field(default=3, ge=1, le=24)
    windows: tuple[TouWindow, ...] | None = None
    default_post: PostName = FORA_PONTA
    business_days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    # National holidays of this country (default: the tenant's); `holidays: false` for none.
    holidays: bool = True
    holiday_country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    holiday_subdivision: str | None = Field(default=None, min_length=1, max_length=10)
    # Days the utility also treats as holidays (e.g. Carnival Tuesday, Corpus Christi).
    extra_holidays: tuple[date, ...] = ()
    # Day of the month the meter is read: the billing cycle `YYYY-MM` ends the day before it.
    reading_day: int = Field(default=1, ge=1, le=28)
    pf_reference: Decimal = Field(default=PF_REFERENCE, gt=0, le=1)
    capacitive_start: time = time(0)
    capacitive_hours: int = Field(default=6, ge=1, le=7)
    demand_interval_minutes: Literal[5, 10, 15, 30, 60] = 15
    overrun_tolerance: Decimal = Field(default=OVERRUN_TOLERANCE, ge=0, lt=1)
    # True: a contracted and billed demand per post (azul); False: one for all posts (verde).
    demand_per_post: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Tariff:
        # The domain's own checks (overlapping windows, capacitive window inside 23:30-06:30);
        # those that depend on the tenant's country are made with the tenant (`_references`).
        self.billing_calendar("UTC", None)
        self.billing_rules()
        return self

    def billing_calendar(self, timezone: str, country: str | None) -> TouCalendar:
        """The tariff's calendar in the tenant's time zone and country (None: the tariff's own
        `holiday_country` only)."""
        if self.windows is None:
            windows: tuple[PostWindow, ...] = (
                PostWindow(PONTA, time(self.ponta_start_hour), self.ponta_hours),
            )
        else:
            windows = tuple(
                PostWindow(w.post, time(w.start_hour), w.hours, w.business_days_only) for w in self.windows
            )
        return TouCalendar(
            timezone=timezone,
            windows=windows,
            default_post=self.default_post,
            business_days=frozenset(_WEEKDAYS.index(d) for d in self.business_days),
            holiday_country=(self.holiday_country or country) if self.holidays else None,
            holiday_subdivision=self.holiday_subdivision,
            extra_holidays=frozenset(self.extra_holidays),
        )

    def billing_rules(self) -> BillingRules:
        return BillingRules(
            pf_reference=self.pf_reference,
            capacitive_start=self.capacitive_start,
            capacitive_hours=self.capacitive_hours,
            demand_interval_minutes=self.demand_interval_minutes,
            overrun_tolerance=self.overrun_tolerance,
            demand_per_post=self.demand_per_post,
        )

    def posts(self) -> tuple[str, ...]:
        return self.billing_calendar("UTC", None).posts

    def meter_tariff(
        self,
        timezone: str,
        country: str,
        contracted_kw: Decimal | None,
        contracted_by_post_kw: Mapping[str, Decimal] | None = None,
    ) -> MeterTariff:
        """What billing keeps with a meter billed under this tariff: a per-post contract
        (`contracted_by_post_kw`) wins over the meter's single `contracted_kw`."""
        calendar = self.billing_calendar(timezone, country)
        rules = self.billing_rules()
        by_post = dict(contracted_by_post_kw or {})
        if rules.demand_per_post:
            contracted = {p: by_post.get(p, contracted_kw) for p in calendar.posts}
        else:
            contracted = {ALL_POSTS: by_post.get(ALL_POSTS, contracted_kw)}
        return MeterTariff(
            tariff_id=self.id,
            name=self.name,
            calendar=calendar,
            rules=rules,
            reading_day=self.reading_day,
            contracted_demand_kw=tuple((p, kw) for p, kw in contracted.items() if kw is not None),
        )


class VeeOverrides(BaseModel):
    """The tenant's changes to the platform's VEE defaults (`hemera.domain.vee.VeeConfig`): each
    field left out keeps the default; the README's VEE section lists what each one does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spike_factor: Decimal | None = Field(default=None, gt=1)
    spike_min_delta_kw: Decimal | None = Field(default=None, ge=0)
    zero_run_intervals: int | None = Field(default=None, ge=1)
    zero_register_tolerance: Decimal | None = Field(default=None, ge=0)
    implausible_demand_multiple: Decimal | None = Field(default=None, gt=1)
    implausible_demand_kw: Decimal | None = Field(default=None, gt=0)
    clock_suspect_intervals: int | None = Field(default=None, ge=0)
    register_sum_tolerance: Decimal | None = Field(default=None, ge=0)
    register_sum_tolerance_ratio: Decimal | None = Field(default=None, ge=0, lt=1)
    register_window_minutes: int | None = Field(default=None, ge=0, le=60)
    usage_high_factor: Decimal | None = Field(default=None, gt=1)
    usage_low_factor: Decimal | None = Field(default=None, ge=0, lt=1)
    usage_history_days: int | None = Field(default=None, ge=1)
    usage_min_history_days: int | None = Field(default=None, ge=1)
    disabled_rules: tuple[DisableableRule, ...] | None = None
    estimation_order: tuple[EstimatorName, ...] | None = None
    linear_max_gap_minutes: int | None = Field(default=None, ge=0)
    like_day_max_age_days: int | None = Field(default=None, ge=1)
    average_like_day_count: int | None = Field(default=None, ge=1)
    average_like_day_min: int | None = Field(default=None, ge=1)
    average_like_day_window_days: int | None = Field(default=None, ge=1)
    previous_year_window_days: int | None = Field(default=None, ge=0)
    max_estimated_gap_intervals: int | None = Field(default=None, ge=0)
    scale_to_register: bool | None = None
    outage_zero_fill: bool | None = None
    decimals: int | None = Field(default=None, ge=0, le=6)

    @model_validator(mode="after")
    def _combines_with_the_defaults(self) -> VeeOverrides:
        """The overrides must make a consistent configuration together with the defaults."""
        try:
            VeeConfig.for_tenant(self)
        except ValidationError as exc:
            reasons = (str(e.get("ctx", {}).get("error", e["msg"])) for e in exc.errors())
            raise ValueError("; ".join(reasons)) from exc
        return self


def _alarm_type(name: str) -> str:
    from hemera.domain.alarms.catalog import AlarmType

    try:
        return AlarmType(name).value
    except ValueError as exc:
        raise ValueError(
            f"unknown alarm type {name!r} (one of {', '.join(t.value for t in AlarmType)})"
        ) from exc


class AlarmOverrides(BaseModel):
    """The tenant's changes to the platform's alarm defaults (`hemera.domain.alarms.thresholds`,
    README `## Alarms`): any threshold left out keeps its default; `disabled` switches alarm
    types off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # PRODIST Módulo 8 adequate band (default 0.93-1.05 pu of the nominal voltage).
    voltage_min_pu: float | None = Field(default=None, gt=0, lt=1)
    voltage_max_pu: float | None = Field(default=None, gt=1, lt=2)
    voltage_unbalance_max_pct: float | None = Field(default=None, gt=0, le=100)
    # REN 1000/2021 reference power factor (default 0.92).
    power_factor_min: float | None = Field(default=None, gt=0, le=1)
    # Demand above contracted x (1 + tolerance) is an overrun (default 0.05).
    demand_tolerance: float | None = Field(default=None, ge=0, le=1)
    current_present_a: float | None = Field(default=None, gt=0)
    no_energy_w: float | None = Field(default=None, ge=0)
    zero_voltage_pu: float | None = Field(default=None, gt=0, lt=1)
    # No data for this many hours is a communication failure (default 6).
    silence_hours: float | None = Field(default=None, gt=0, le=24 * 31)
    vee_failure_days: int | None = Field(default=None, ge=1, le=31)
    vee_window_days: int | None = Field(default=None, ge=1, le=31)
    quiet_close_hours: int | None = Field(default=None, ge=1, le=24 * 31)
    consumption_drop: float | None = Field(default=None, gt=0, le=1)
    disabled: tuple[Annotated[str, AfterValidator(_alarm_type)], ...] = ()

    @model_validator(mode="after")
    def _vee_window(self) -> AlarmOverrides:
        days, window = self.vee_failure_days, self.vee_window_days
        if days is not None and window is not None and days > window:
            raise ValueError("vee_failure_days cannot exceed vee_window_days")
        return self

    def threshold_values(self) -> dict[str, float | int | None]:
        """The thresholds the tenant set (None: the default applies), by threshold name."""
        return self.model_dump(exclude={"disabled"})


ExportFormatName = Literal["csv", "txt", "nem12", "green_button", "regulatory_xml"]


class ExportSchedule(BaseModel):
    """A billing export the tenant receives on a schedule (`hemera.services.exports` runs it).

    `period` is what one run covers, in the tenant's time zone: the previous calendar month
    (run on `day_of_month`), each meter's billing cycle when it closes (run on the reading day:
    the customer's, else the tariff's, else `day_of_month`; one run per reading day, covering the
    meters read that day), or the previous day (run every day). A run becomes due at `at_hour`
    local time; the hourly "exports due" job runs it once (its manifest says it is done).
    `meters`/`customers` narrow the export (empty: every meter of the tenant).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Short enough for the export id `<period start yyyymmdd>-<schedule id>` (63 characters).
    id: Annotated[Id, Field(max_length=54)]
    # One format (`format: nem12`) or several (`formats: [csv, regulatory_xml]`): one file each.
    format: ExportFormatName | None = None
    formats: tuple[ExportFormatName, ...] = ()
    period: Literal["previous_month", "billing_cycle", "previous_day"] = "previous_month"
    # Day of the month the previous period is exported (1-28: exists in every month); for a
    # billing cycle, the reading day of meters without a tariff.
    day_of_month: int = Field(default=1, ge=1, le=28)
    at_hour: int = Field(default=2, ge=0, le=23)
    meters: tuple[Id, ...] = ()
    customers: tuple[Id, ...] = ()

    @model_validator(mode="after")
    def _one_way_of_naming_formats(self) -> ExportSchedule:
        if (self.format is None) == (not self.formats):
            raise ValueError("give either format or formats (a non-empty list)")
        return self

    @property
    def all_formats(self) -> tuple[str, ...]:
        return (self.format,) if self.format is not None else tuple(dict.fromkeys(self.formats))


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
    # A contract that differs per post of the meter's tariff (azul: ponta and fora ponta), kW;
    # posts left out keep `contracted_demand_kw`.
    contracted_demand_by_post_kw: dict[PostName, Annotated[Decimal, Field(gt=0)]] | None = None
    tariff: Id | None = None
    # The NMI of an Australian (NEM) connection point: the 10 characters, or 11 with the AEMO
    # checksum digit, which is then checked (`hemera.domain.nmi`); the 10 are registered.
    # Unique per tenant. Meters without one are left out of NEM12 exports.
    nmi: str | None = None
    # The manufacturer's serial number, 1-12 characters (NEM12's MeterSerialNumber).
    serial: str | None = None

    @field_validator("nmi", "serial")
    @classmethod
    def _market_identity(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        meter = info.data.get("id", "?")
        try:
            return parse_nmi(value) if info.field_name == "nmi" else check_serial(value)
        except ValueError as exc:
            raise ValueError(f"meter {meter}: {exc}") from exc

    @property
    def multiplier(self) -> Decimal:
        return self.ct_ratio * self.vt_ratio


def brazilian_group_a(tariff: Tariff, country: str) -> bool:
    """A Brazilian Group A tariff: a Brazilian tenant's tariff on the default ponta calendar (a
    tariff with its own `windows`, e.g. Group B's tarifa branca, is not)."""
    return country == "BR" and tariff.windows is None


def _calendar_month_problems(definition: TenantDefinition) -> list[str]:
    """ANEEL REN 1.000/2021 Art. 261 and 282: a Group A consumer is read and billed on the
    calendar month, so a Brazilian Group A tariff's cycle closes on day 1, and no customer on one
    may have a reading day of its own."""
    group_a = {t.id for t in definition.tariffs if brazilian_group_a(t, definition.country)}
    rule = "Group A is billed on the calendar month (ANEEL REN 1.000 Art. 261): reading day 1"
    problems = [
        f"tariffs[{index}].reading_day: tariff {t.id}: {rule}, not {t.reading_day}"
        for index, t in enumerate(definition.tariffs)
        if t.id in group_a and t.reading_day != 1
    ]
    on_group_a = {m.customer for m in definition.meters if m.tariff in group_a}
    problems += [
        f"customers[{index}].reading_day: customer {c.id} has meters on a {rule}, not {c.reading_day}"
        for index, c in enumerate(definition.customers)
        if c.id in on_group_a and c.reading_day not in (None, 1)
    ]
    return problems


def _contract_problems(index: int, meter: MeterDef, tariffs: tuple[Tariff, ...]) -> list[str]:
    """A per-post contract names posts of the meter's tariff (`all` for a single-demand one)."""
    if not meter.contracted_demand_by_post_kw:
        return []
    where = f"meters[{index}].contracted_demand_by_post_kw"
    tariff = next((t for t in tariffs if t.id == meter.tariff), None)
    if tariff is None:
        return [f"{where}: needs the meter's tariff"]
    posts = tariff.posts() if tariff.demand_per_post else (ALL_POSTS,)
    return [
        f"{where}: {p} is not a demand post of tariff {tariff.id}"
        for p in meter.contracted_demand_by_post_kw
        if p not in posts
    ]


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
        for index, tariff in enumerate(self.tariffs):
            try:
                tariff.billing_calendar(self.timezone, self.country)
            except ValueError as exc:
                problems.append(f"tariffs[{index}]: tariff {tariff.id}: {exc}")
        problems += _calendar_month_problems(self)
        customers = {c.id for c in self.customers}
        rtus = {r.id for r in self.rtus}
        tariffs = {t.id for t in self.tariffs}
        nmis: dict[str, str] = {}
        for index, meter in enumerate(self.meters):
            if meter.nmi is not None:
                if meter.nmi in nmis:
                    problems.append(
                        f"meters[{index}].nmi: meter {meter.id}: NMI {meter.nmi} is already meter "
                        f"{nmis[meter.nmi]}'s (an NMI is unique per tenant)"
                    )
                nmis.setdefault(meter.nmi, meter.id)
            if meter.customer not in customers:
                problems.append(f"meters[{index}].customer: unknown customer {meter.customer}")
            if meter.rtu not in rtus:
                problems.append(f"meters[{index}].rtu: unknown rtu {meter.rtu}")
            if meter.tariff is not None and meter.tariff not in tariffs:
                problems.append(f"meters[{index}].tariff: unknown tariff {meter.tariff}")
            problems += _contract_problems(index, meter, self.tariffs)
        meter_ids = {m.id for m in self.meters}
        for index, export in enumerate(self.exports):
            problems += [
                f"exports[{index}].meters: unknown meter {m}" for m in export.meters if m not in meter_ids
            ]
            problems += [
                f"exports[{index}].customers: unknown customer {c}"
                for c in export.customers
                if c not in customers
            ]
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
