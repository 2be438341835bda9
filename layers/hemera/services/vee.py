"""VEE service: runs the VEE engine (`hemera.domain.vee`) on tenant-local days and stores the result.

Three triggers recompute a (meter, channel, local day) and store a new final version when anything
differs (the engine says `changed`), each with its cause:
- ingest changed a UTC meter-channel-day (`MeterDaysChanged`): every local day it overlaps is
  recomputed — cause `ingest`, or `late_data` when the day held estimates where actual data now
  arrived;
- an operator's edit (`POST /v1/meters/{id}/edits`, synchronous) — cause `edit`;
- the nightly sweep, which recomputes yesterday's local day of every meter so that a meter that
  sent nothing still gets its day estimated — cause `sweep` (bounded per run, see `sweep`).

Every new version is announced as `FinalDaysChanged` (source `hemera.vee`) *before* it is stored,
as ingest does: a failed announcement stops the write and the trigger is retried, so no version is
stored unannounced; a write that then fails leaves a harmless announcement (listeners re-read).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from time import monotonic
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import holidays as holiday_calendars

from hemera.domain.errors import EditForbidden, InvalidEdit, InvalidQuery, TenantNotFound, VersionConflict
from hemera.domain.final_series import ESPI_RAW, FinalDay, FinalDayChange, FinalStatus
from hemera.domain.meter_events import Subject
from hemera.domain.readings import Channel, IntervalReading
from hemera.domain.registry import Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.domain.vee import IntervalEdit, VeeConfig, VeeInputs, VeeOutcome, validate_estimate_edit
from hemera.ports import ReadingStore, Registry
from hemera.ports.edits import EditStore
from hemera.ports.final_days_events import FinalDaysAnnouncer
from hemera.ports.final_series import FinalSeriesReader, FinalSeriesStore
from hemera.ports.meter_events import MeterEventLog, RegisterLog
from hemera.services.access import Caller, PortalPorts, load_profile, owned_meter
from hemera.services.commands import COMMANDING_ROLES
from hemera.services.curate import ChangeNotLanded, DayChanged
from hemera.services.tenant_settings import VeeSettingsStore
from hemera.tenants import VeeOverrides

# Causes of a final version (FinalDay.cause).
CAUSE_INGEST = "ingest"
CAUSE_LATE_DATA = "late_data"
CAUSE_EDIT = "edit"
CAUSE_SWEEP = "sweep"

# History the engine estimates from: the last 8 weeks, and the same weekday ±7 days a year back.
HISTORY_WEEKS = 8
PREVIOUS_YEAR_DAYS = 364  # 52 weeks: the same weekday
PREVIOUS_YEAR_WINDOW_DAYS = 7
# Register readings this close outside the day still bracket it (a meter reads them on the hour).
REGISTER_MARGIN = timedelta(hours=1)
# The demand limit VEE checks against: the contracted demand plus the 5 % tolerance before an
# overrun is charged (REFERENCE.md, Brazilian Group A terms; the same margin serves every tenant).
DEMAND_LIMIT_MARGIN = Decimal("1.05")
# A final day whose version another writer took meanwhile is recomputed this many times.
_SAVE_ATTEMPTS = 3
# An edit request carries at most this many intervals (a day of 5-minute data, DST long day).
MAX_EDITS_PER_REQUEST = 300

# The nightly sweep's bound: at most this many meter-channel-days per run, and it stops early
# when less than `SWEEP_RESERVE_MS` of the invocation's time is left. At ~100 ms a day (ten
# DynamoDB calls and the engine) 2,000 days take ~3-4 minutes of the function's 10.
SWEEP_MAX_DAYS = 2000
SWEEP_RESERVE_MS = 60_000
SWEEP_JOB = "vee_sweep"


# --- tenant settings -------------------------------------------------------------------------
class VeeConfigSource(Protocol):
    def config(self, tenant_id: str) -> VeeConfig:
        """The VEE configuration of `tenant_id`: the defaults with its overrides applied."""
        ...


class StoredVeeSettings:
    """Each tenant's VEE configuration from the overrides stored at onboarding
    (`onboard_tenant`), kept for `ttl_s` per warm function: a changed tenant file takes
    effect within that time, and a new tenant needs no redeploy (nothing is in the functions'
    environment, whose 4 KB would not hold many tenants' overrides)."""

    def __init__(
        self, store: VeeSettingsStore, ttl_s: float = 60.0, clock: Callable[[], float] = monotonic
    ) -> None:
        self._store, self._ttl, self._clock = store, ttl_s, clock
        self._cached: dict[str, tuple[float, VeeConfig]] = {}

    def config(self, tenant_id: str) -> VeeConfig:
        now = self._clock()
        cached = self._cached.get(tenant_id)
        if cached is None or now - cached[0] >= self._ttl:
            cached = (now, _config(self._store.overrides(TenantContext(tenant_id))))
            self._cached[tenant_id] = cached
        return cached[1]


@cache
def _config(overrides: VeeOverrides | None) -> VeeConfig:
    return VeeConfig.for_tenant(overrides)


def demand_limit_kw(meter: Meter | None) -> Decimal | None:
    """The highest contracted demand of the meter's tariff (any post) plus the tolerance."""
    if meter is None or meter.tariff is None or not meter.tariff.contracted_demand_kw:
        return None
    return max(kw for _post, kw in meter.tariff.contracted_demand_kw) * DEMAND_LIMIT_MARGIN


# --- ports -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VeePorts:
    registry: Registry
    readings: ReadingStore
    final: FinalSeriesStore
    edits: EditStore
    announcer: FinalDaysAnnouncer
    settings: VeeConfigSource
    # Device events/outages and registers; None where their storage is not wired (the engine
    # then runs without the rules that need them).
    events: MeterEventLog | None = None
    registers: RegisterLog | None = None


# --- local days --------------------------------------------------------------------------------
def local_day_span(local_day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC [start, end) of a tenant-local day: 23, 24 or 25 hours."""
    start = datetime.combine(local_day, time(), tzinfo=zone)
    end = datetime.combine(local_day + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_days_overlapping(utc_day: date, zone: ZoneInfo) -> list[date]:
    """The tenant-local days that share at least one instant with a UTC day."""
    start = datetime.combine(utc_day, time(), tzinfo=UTC)
    last = start + timedelta(days=1) - timedelta(microseconds=1)
    first_local, last_local = start.astimezone(zone).date(), last.astimezone(zone).date()
    return [first_local + timedelta(days=n) for n in range((last_local - first_local).days + 1)]


def utc_days_of(local_day: date, zone: ZoneInfo) -> list[date]:
    """The UTC days (ingest's item days) a tenant-local day touches."""
    start, end = local_day_span(local_day, zone)
    last = (end - timedelta(microseconds=1)).date()
    return [start.date() + timedelta(days=n) for n in range((last - start.date()).days + 1)]


@cache
def _holidays_of_year(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holiday_calendars.country_holidays(country, years=year).keys())
    except NotImplementedError:  # a country the package has no calendar for: no holidays
        return frozenset()


def tenant_holidays(country: str, days: Iterable[date]) -> frozenset[date]:
    """The tenant country's public holidays in the years of `days` (the `holidays` package)."""
    found: frozenset[date] = frozenset()
    for year in sorted({d.year for d in days}):
        found |= _holidays_of_year(country, year)
    return found


# --- computing one day -------------------------------------------------------------------------
@dataclass(frozen=True)
class DayKey:
    meter_id: str
    channel: Channel
    local_day: date


@dataclass(frozen=True)
class ComputedDay:
    """A recomputed day that changed: the version to store and its announcement."""

    outcome: VeeOutcome
    change: FinalDayChange


def compute_day(
    ports: VeePorts, ctx: TenantContext, tenant: Tenant, key: DayKey, cause: str, now: datetime
) -> ComputedDay | None:
    """Run the engine on one local day from what is stored now; None when nothing changed."""
    zone = tenant.zone
    start, end = local_day_span(key.local_day, zone)
    series = ports.readings.read_series(
        ctx, [(key.meter_id, key.channel, d) for d in utc_days_of(key.local_day, zone)]
    )
    readings = sorted(
        (r for day in series.values() for r in day.readings if start <= r.start < end), key=lambda r: r.start
    )
    source_versions = tuple(sorted((d, s.version) for (_, _, d), s in series.items()))
    current = ports.final.final_days(ctx, key.meter_id, key.channel, key.local_day, key.local_day)
    previous = current[0] if current else None
    history = _history(ports.final, ctx, key)
    minutes = (
        readings[0].length_minutes
        if readings
        else previous.interval_minutes
        if previous is not None
        else history[-1].interval_minutes
        if history
        else 15
    )
    cause = _late_data(cause, previous, readings)
    inputs = VeeInputs(
        meter_id=key.meter_id,
        channel=key.channel,
        local_day=key.local_day,
        timezone=tenant.timezone,
        interval_minutes=minutes,
        readings=readings,
        history=history,
        registers=(
            ports.registers.register_readings(
                ctx, key.meter_id, key.channel, start - REGISTER_MARGIN, end + REGISTER_MARGIN
            )
            if ports.registers is not None
            else ()
        ),
        events=(
            ports.events.events(ctx, Subject.METER, key.meter_id, start, end)
            if ports.events is not None
            else ()
        ),
        outages=ports.events.outages(ctx, key.meter_id, start, end) if ports.events is not None else (),
        edits=ports.edits.edits(ctx, key.meter_id, key.channel, start, end),
        holidays=tenant_holidays(
            tenant.country,
            [key.local_day, *(d.local_day for d in history), key.local_day - timedelta(days=371)],
        ),
        max_demand_kw=demand_limit_kw(ports.registry.get_meter(ctx, key.meter_id)),
        previous=previous,
    )
    outcome = validate_estimate_edit(inputs, ports.settings.config(tenant.id), now, cause)
    if not outcome.changed:
        return None
    # The engine does not know the UTC items it was computed from: the day records them here.
    day = replace(outcome.day, source_versions=source_versions)
    outcome = VeeOutcome(day, outcome.changed, outcome.failures, outcome.missing)
    change = FinalDayChange(
        meter_id=key.meter_id,
        channel=key.channel,
        local_day=key.local_day,
        version=day.version,
        previous_version=None if previous is None else previous.version,
        cause=day.cause,
        failed_rules=outcome.failed_rules,
        estimated=sum(1 for i in day.intervals if i.status is FinalStatus.ESTIMATED),
        missing=sum(1 for i in day.intervals if i.value is None),
    )
    return ComputedDay(outcome, change)


def _history(final: FinalSeriesReader, ctx: TenantContext, key: DayKey) -> list[FinalDay]:
    recent = final.final_days(
        ctx,
        key.meter_id,
        key.channel,
        key.local_day - timedelta(weeks=HISTORY_WEEKS),
        key.local_day - timedelta(days=1),
    )
    year_ago = key.local_day - timedelta(days=PREVIOUS_YEAR_DAYS)
    earlier = final.final_days(
        ctx,
        key.meter_id,
        key.channel,
        year_ago - timedelta(days=PREVIOUS_YEAR_WINDOW_DAYS),
        year_ago + timedelta(days=PREVIOUS_YEAR_WINDOW_DAYS),
    )
    return [*earlier, *recent]


def _late_data(cause: str, previous: FinalDay | None, readings: Sequence[IntervalReading]) -> str:
    """`late_data` when ingest brought actual data for intervals the stored day had estimated."""
    if cause != CAUSE_INGEST or previous is None:
        return cause
    estimated = {i.start for i in previous.intervals if i.status is FinalStatus.ESTIMATED or i.value is None}
    return CAUSE_LATE_DATA if any(r.start in estimated for r in readings) else cause


def recompute_days(
    ports: VeePorts, ctx: TenantContext, tenant: Tenant, keys: Sequence[DayKey], cause: str, now: datetime
) -> tuple[list[FinalDayChange], dict[DayKey, Exception]]:
    """Recompute, announce and store the days of one tenant; a day another writer stored first is
    recomputed from the new state. Returns the stored changes and the days that failed."""
    stored: list[FinalDayChange] = []
    failures: dict[DayKey, Exception] = {}
    pending = list(dict.fromkeys(keys))
    for _attempt in range(_SAVE_ATTEMPTS):
        computed: dict[DayKey, ComputedDay] = {}
        for key in pending:
            try:
                result = compute_day(ports, ctx, tenant, key, cause, now)
            except Exception as error:  # this day only: the others go on
                failures[key] = error
                continue
            if result is not None:
                computed[key] = result
        if not computed:
            return stored, failures
        changes = [c.change for c in computed.values()]
        try:
            ports.announcer.announce(ctx, changes)
        except Exception as error:
            for key in computed:
                failures[key] = error
            return stored, failures
        conflicts = []
        for key, result in computed.items():
            try:
                ports.final.save(ctx, [result.outcome.day])
            except VersionConflict as error:
                conflicts.append(key)
                failures[key] = error
                continue
            except Exception as error:
                failures[key] = error
                continue
            stored.append(result.change)
        if not conflicts:
            return stored, failures
        for key in conflicts:
            failures.pop(key, None)
        pending = conflicts
    return stored, failures


# --- trigger 1: ingest's MeterDaysChanged -----------------------------------------------------
@dataclass(frozen=True)
class VeeBatchOutcome:
    """What a batch did: the final days stored and, by record id, the records that failed."""

    changes: tuple[FinalDayChange, ...] = ()
    failures: Mapping[str, Exception] = field(default_factory=dict)


def on_days_changed(
    ports: VeePorts, announcements: Mapping[str, Sequence[DayChanged]], now: datetime
) -> VeeBatchOutcome:
    """Recompute every tenant-local day the announced UTC days overlap (record id → the changes it
    lists). A record fails (and is delivered again) when one of its UTC days has not landed at
    the announced version or one of its local days could not be computed or stored."""
    # tenant → UTC series → the records announcing it, each with the version it announced
    by_tenant: dict[str, dict[tuple[str, Channel, date], list[tuple[str, int]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for record_id, changes in announcements.items():
        for change in changes:
            series = (change.meter_id, change.channel, change.day)
            by_tenant[change.tenant_id][series].append((record_id, change.version))
    stored: list[FinalDayChange] = []
    failures: dict[str, Exception] = {}
    for tenant_id, wanted in sorted(by_tenant.items()):
        ctx = TenantContext(tenant_id)
        try:
            tenant = _tenant(ports.registry, ctx)
            landed = ports.readings.read_series(ctx, sorted(wanted))
        except Exception as error:
            _fail(failures, [r for announced in wanted.values() for r, _ in announced], error)
            continue
        records_of: dict[DayKey, list[str]] = defaultdict(list)
        for series, announced in sorted(wanted.items()):
            meter_id, channel, utc_day = series
            held = landed.get(series)
            held_version = 0 if held is None else held.version
            # A record announcing a version not stored yet fails alone; the others go on.
            for record_id, version in announced:
                if version > held_version:
                    _fail(
                        failures,
                        [record_id],
                        ChangeNotLanded(
                            f"{meter_id} {channel.value} {utc_day}: announced {version}, stored {held_version}"
                        ),
                    )
            records = [r for r, version in announced if version <= held_version]
            if not records:
                continue
            for local_day in local_days_overlapping(utc_day, tenant.zone):
                # A day still under way is left for later: computing it now would estimate the
                # hours still to come, and every delivery during the day would store a version.
                if local_day_span(local_day, tenant.zone)[1] <= now:
                    records_of[DayKey(meter_id, channel, local_day)] += records
        new_versions, failed = recompute_days(ports, ctx, tenant, list(records_of), CAUSE_INGEST, now)
        stored += new_versions
        for key, day_error in failed.items():
            _fail(failures, records_of[key], day_error)
    return VeeBatchOutcome(tuple(stored), failures)


def _tenant(registry: Registry, ctx: TenantContext) -> Tenant:
    tenant = registry.get_tenant(ctx)
    if tenant is None:
        raise TenantNotFound(f"tenant {ctx.tenant_id} is not registered")
    return tenant


def _fail(failures: dict[str, Exception], record_ids: Iterable[str], error: Exception) -> None:
    for record_id in record_ids:
        failures.setdefault(record_id, error)


# --- trigger 2: operators' edits ---------------------------------------------------------------
@dataclass(frozen=True)
class EditResult:
    meter_id: str
    channel: Channel
    edits: int
    days: tuple[FinalDayChange, ...]


def record_edits(
    ports: VeePorts, caller: Caller, edited_by: str, meter_id: str, body: Mapping[str, Any], now: datetime
) -> EditResult:
    """Store an operator's edits of the caller's meter and recompute the local days they fall in
    at once, so the answer names the new versions. Admins and operators only: the same decision
    as for meter commands (a foreign meter is 404 before the role is looked at, so a 403 only
    ever tells a caller about its own meter)."""
    meter = owned_meter(ports.registry, caller, meter_id)
    if caller.role not in COMMANDING_ROLES:
        raise EditForbidden(f"a {caller.role.value} may read the meter's data but not edit it")
    tenant = _tenant(ports.registry, caller.ctx)
    channel, edits = parse_edits(body, edited_by, now)
    keys = list(
        dict.fromkeys(DayKey(meter.id, channel, e.start.astimezone(tenant.zone).date()) for e in edits)
    )
    unfinished = [k.local_day for k in keys if local_day_span(k.local_day, tenant.zone)[1] > now]
    if unfinished:
        raise InvalidEdit(f"the local day {unfinished[0]} is not over yet: edit it once it is")
    ports.edits.add_edits(caller.ctx, meter.id, channel, edits)
    changes, failures = recompute_days(ports, caller.ctx, tenant, keys, CAUSE_EDIT, now)
    if failures:
        raise next(iter(failures.values()))
    return EditResult(meter.id, channel, len(edits), tuple(sorted(changes, key=lambda c: c.local_day)))


def parse_edits(body: Mapping[str, Any], user: str, now: datetime) -> tuple[Channel, list[IntervalEdit]]:
    """`{"channel": …, "edits": [{"start": ISO time with offset, "value": number, "reason": text}]}`."""
    unknown = set(body) - {"channel", "edits"}
    if unknown:
        raise InvalidEdit(f"unknown fields {sorted(unknown)}; an edit request has channel and edits")
    try:
        channel = Channel(str(body.get("channel", Channel.ACTIVE_IMPORT.value)))
    except ValueError as exc:
        raise InvalidEdit(f"channel must be one of {', '.join(c.value for c in Channel)}") from exc
    listed = body.get("edits")
    if not isinstance(listed, list) or not 1 <= len(listed) <= MAX_EDITS_PER_REQUEST:
        raise InvalidEdit(f"edits is a list of 1 to {MAX_EDITS_PER_REQUEST} intervals")
    edits = [_edit(entry, n, user, now) for n, entry in enumerate(listed)]
    if len({e.start for e in edits}) != len(edits):
        raise InvalidEdit("an interval is edited at most once per request")
    return channel, edits


def _edit(entry: object, n: int, user: str, now: datetime) -> IntervalEdit:
    if not isinstance(entry, dict) or set(entry) - {"start", "value", "reason"}:
        raise InvalidEdit(f"edits[{n}] is an object with start, value and reason")
    try:
        start = datetime.fromisoformat(str(entry["start"]).replace("Z", "+00:00"))
        raw_value = entry["value"]
        if isinstance(raw_value, bool) or not isinstance(raw_value, int | float | str):
            raise ValueError("value")
        value = Decimal(str(raw_value))
        reason = entry["reason"]
    except (KeyError, ValueError, InvalidOperation) as exc:
        raise InvalidEdit(
            f"edits[{n}] needs start (ISO time with offset), value (number) and reason"
        ) from exc
    if start.tzinfo is None:
        raise InvalidEdit(f"edits[{n}].start needs a UTC offset")
    if not value.is_finite() or value < 0:
        raise InvalidEdit(f"edits[{n}].value must be a finite number ≥ 0")
    if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= 200:
        raise InvalidEdit(f"edits[{n}].reason is a text of 1 to 200 characters")
    start = start.astimezone(UTC)
    if start.second or start.microsecond or start.minute % 5:
        raise InvalidEdit(f"edits[{n}].start is not the start of an interval")
    if start > now:
        raise InvalidEdit(f"edits[{n}].start is in the future")
    return IntervalEdit(start=start, value=value, reason=reason.strip(), user=user, at=now)


# --- trigger 3: the nightly sweep ----------------------------------------------------------------
@dataclass(frozen=True)
class SweepOutcome:
    days_checked: int
    changes: tuple[FinalDayChange, ...]
    failures: int
    # True when the run stopped at its bound (days or time) before visiting every meter.
    truncated: bool


def sweep(
    ports: VeePorts,
    now: datetime,
    max_days: int = SWEEP_MAX_DAYS,
    remaining_ms: Callable[[], int] | None = None,
) -> SweepOutcome:
    """Recompute yesterday's local day (each tenant's own yesterday) of every meter of every
    tenant, for the channels the meter delivered on that day or the day before. Bounded: at
    most `max_days` meter-channel-days per run, and it stops when less than `SWEEP_RESERVE_MS` of
    the invocation is left (`remaining_ms`); the outcome says whether it stopped early."""
    checked, failed = 0, 0
    stored: list[FinalDayChange] = []
    for tenant in ports.registry.list_tenants():
        ctx = TenantContext(tenant.id)
        yesterday = now.astimezone(tenant.zone).date() - timedelta(days=1)
        utc_days = sorted(
            {*utc_days_of(yesterday, tenant.zone), *utc_days_of(yesterday - timedelta(days=1), tenant.zone)}
        )
        cursor: str | None = None
        while True:
            page = ports.registry.list_meters(ctx, cursor, 100)
            for meter in page.items:
                if checked >= max_days or (remaining_ms is not None and remaining_ms() < SWEEP_RESERVE_MS):
                    return SweepOutcome(checked, tuple(stored), failed, truncated=True)
                held = ports.readings.read_series(ctx, [(meter.id, c, d) for c in Channel for d in utc_days])
                channels = sorted({c for (_, c, _) in held}, key=lambda c: c.value)
                keys = [DayKey(meter.id, c, yesterday) for c in channels]
                checked += len(keys)
                changes, failures = recompute_days(ports, ctx, tenant, keys, CAUSE_SWEEP, now)
                stored += changes
                failed += len(failures)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return SweepOutcome(checked, tuple(stored), failed, truncated=False)


# --- the load profile with provenance -----------------------------------------------------------
@dataclass(frozen=True)
class ProfileInterval:
    """One interval of the portal's load profile: final (VEE'd) when VEE has computed its day,
    else the meter's data as stored (status `raw`)."""

    start: datetime
    length_minutes: int
    value: Decimal | None
    raw_value: Decimal | None
    status: str
    quality_flag: str
    source: str
    method_flag: int | None = None
    reason_code: int | None = None
    espi_quality: int | None = None
    rule_id: str | None = None
    rule_version: int | None = None
    data_version: int | None = None
    meter_flags: int | None = None  # the meter's status bits (stored meter data only)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.length_minutes)


@dataclass(frozen=True)
class FinalProfile:
    tenant: Tenant
    meter_id: str
    channel: Channel
    start: datetime
    end: datetime
    intervals: list[ProfileInterval]
    # The local days served from final data, with the version served.
    versions: dict[date, int]


_SOURCE_OF_STATUS = {
    FinalStatus.ACTUAL: "meter",
    FinalStatus.ESTIMATED: "estimated",
    FinalStatus.EDITED: "edited",
    FinalStatus.FAILED: "meter",
}


def final_load_profile(
    portal: PortalPorts,
    final: FinalSeriesReader,
    caller: Caller,
    meter_id: str,
    channel: str,
    start: datetime,
    end: datetime,
    version: int | None = None,
) -> FinalProfile:
    """The load profile of `[start, end)`: each tenant-local day VEE has computed comes from its
    final day (the current version, or `version` when the range is one local day), every other
    day from the stored meter data. Access and range checks are the raw load profile's."""
    raw = load_profile(portal, caller, meter_id, channel, start, end)
    zone = raw.tenant.zone
    first_day, last_day = (
        start.astimezone(zone).date(),
        (end - timedelta(microseconds=1)).astimezone(zone).date(),
    )
    if version is not None:
        if first_day != last_day:
            raise InvalidQuery("version names the data version of one local day: ask for one day")
        day = final.final_day_version(caller.ctx, raw.meter.id, raw.channel, first_day, version)
        if day is None:
            raise InvalidQuery(f"the day {first_day} has no data version {version}")
        days = [day]
    else:
        days = final.final_days(caller.ctx, raw.meter.id, raw.channel, first_day, last_day)
    final_days = {d.local_day: d for d in days}
    intervals = [
        ProfileInterval(
            start=i.start,
            length_minutes=i.length_minutes,
            value=i.value,
            raw_value=i.raw_value,
            status=i.status.value,
            quality_flag=i.quality_flag.value,
            source=_SOURCE_OF_STATUS[i.status],
            method_flag=i.method_flag,
            reason_code=i.reason_code,
            espi_quality=i.espi_quality,
            rule_id=i.rule_id,
            rule_version=i.rule_version,
            data_version=d.version,
        )
        for d in days
        for i in d.intervals
        if start <= i.start < end
    ]
    intervals += [
        ProfileInterval(
            start=r.start,
            length_minutes=r.length_minutes,
            value=r.value,
            # What the meter reported in the channel's unit, as a final interval's raw value.
            raw_value=r.value,
            status=r.status.value,
            quality_flag=r.quality_flag,
            source=r.source.value,
            espi_quality=ESPI_RAW,
            meter_flags=r.meter_flags,
        )
        for r in raw.intervals
        if r.start.astimezone(zone).date() not in final_days
    ]
    intervals.sort(key=lambda i: i.start)
    return FinalProfile(
        raw.tenant, raw.meter.id, raw.channel, start, end, intervals, {d.local_day: d.version for d in days}
    )
