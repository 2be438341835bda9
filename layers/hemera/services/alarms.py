"""Alarms: evaluate the rules on what the platform learns (device events, changed interval days,
VEE results, exhausted re-reads, and — in the periodic sweep — silence and instantaneous values),
keep one alarm per open condition, announce every transition, and serve the API (list,
acknowledge, theft score).

Each observation is applied to its key's latest alarm with a conditional write (the key's
version); a concurrent evaluation of the same key makes the write fail, and the observation is
applied again to what that evaluation stored. A transition is announced before its write: if the
write then fails the retry announces the same transition id again (notifications deliver once
per id), so no stored transition goes unannounced.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.alarms import (
    Alarm,
    AlarmConflict,
    AlarmForbidden,
    AlarmKey,
    AlarmNotFound,
    AlarmSettings,
    AlarmState,
    AlarmThresholds,
    AlarmType,
    Observation,
    Step,
    TheftScore,
    acknowledge,
    apply_observation,
    close_if_quiet,
    theft_score,
)
from hemera.domain.alarms.rules import (
    ReadsExhausted,
    demand_observations,
    event_observations,
    instantaneous_observations,
    power_factor_observations,
    reads_exhausted_observation,
    silence_observations,
    vee_failure_observation,
)
from hemera.domain.alarms.theft import HISTORY_DAYS, RECENT_DAYS, daily_totals
from hemera.domain.errors import InvalidQuery, InvalidTenantId, MeterNotFound
from hemera.domain.final_series import FinalDayChange
from hemera.domain.meter_events import MeterEvent, Subject
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.ports import Page, ReadingStore, Registry
from hemera.ports.alarms import AlarmAnnouncer, AlarmQuery, AlarmSettingsStore, AlarmStore, VeeTally
from hemera.ports.final_series import FinalSeriesReader
from hemera.ports.instantaneous import InstantaneousStore
from hemera.ports.meter_events import DeviceActivity
from hemera.services.access import Caller, Role, decode_cursor, encode_cursor, owned_meter, page_size
from hemera.tenants import AlarmOverrides, TenantDefinition

# Admins and operators, and the tenant's own systems (a tenant-wide API key); never a caller
# confined to one customer (customer users, customer keys, third parties).
ACKNOWLEDGING_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.MACHINE})
# A conditional write lost this many times in a row means something is wrong: fail the message.
MAX_ATTEMPTS = 5
# The theft score looks at the alarms of this many days.
THEFT_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class AlarmPorts:
    alarms: AlarmStore
    settings: AlarmSettingsStore
    vee: VeeTally
    announcer: AlarmAnnouncer
    registry: Registry
    readings: ReadingStore
    instantaneous: InstantaneousStore
    # Last-seen times of meters and RTUs; None: derived from the stored interval data.
    activity: DeviceActivity | None = None
    # The final (VEE'd) days: the theft score's consumption history (gaps estimated, so a
    # communication gap does not look like a drop); None or no final day yet: the raw series.
    final_series: FinalSeriesReader | None = None


# --- settings -------------------------------------------------------------------------------------
def thresholds_of(overrides: AlarmOverrides | None) -> AlarmThresholds:
    """The platform defaults with the tenant's overrides applied."""
    if overrides is None:
        return AlarmThresholds()
    values = {name: value for name, value in overrides.threshold_values().items() if value is not None}
    defaults = AlarmThresholds()
    converted: dict[str, Any] = {
        name: (Decimal(str(value)) if isinstance(getattr(defaults, name), Decimal) else int(value))
        for name, value in values.items()
    }
    return AlarmThresholds(**converted)


def alarm_settings_of(definition: TenantDefinition) -> AlarmSettings:
    """A tenant file's alarm settings: overrides, nominal voltage, contracted demands."""
    overrides = definition.alarms
    return AlarmSettings(
        tenant_id=definition.id,
        thresholds=thresholds_of(overrides),
        nominal_voltage_v=(
            Decimal(str(definition.nominal_voltage_v)) if definition.nominal_voltage_v is not None else None
        ),
        contracted_demand_kw={
            m.id: m.contracted_demand_kw for m in definition.meters if m.contracted_demand_kw is not None
        },
        disabled=frozenset(AlarmType(t) for t in (overrides.disabled if overrides else ())),
    )


def register_alarm_settings(store: AlarmSettingsStore, definition: TenantDefinition) -> AlarmSettings:
    """Store a tenant file's alarm settings (onboarding, and every change of the file)."""
    settings = alarm_settings_of(definition)
    store.put_settings(TenantContext(definition.id), settings)
    return settings


def settings_for(ports: AlarmPorts, ctx: TenantContext) -> AlarmSettings:
    return ports.settings.settings(ctx) or AlarmSettings(ctx.tenant_id)


# --- applying observations ------------------------------------------------------------------------
def _apply_one(ports: AlarmPorts, ctx: TenantContext, key: AlarmKey, step_of: Any) -> AlarmTransition | None:
    """Apply `step_of(current)` to the key's latest alarm, retrying on a lost conditional write."""
    for _attempt in range(MAX_ATTEMPTS):
        current, version = ports.alarms.current(ctx, key)
        step: Step = step_of(current)
        if step.alarm is None:
            return None
        if step.transition is not None:
            ports.announcer.announce([step.transition])
        try:
            ports.alarms.save(ctx, step.alarm, version)
        except AlarmConflict:
            continue
        return step.transition
    raise AlarmConflict(f"alarm key {key.text} kept changing; giving up after {MAX_ATTEMPTS} attempts")


def apply_observations(
    ports: AlarmPorts, ctx: TenantContext, observations: Iterable[Observation]
) -> list[AlarmTransition]:
    """Apply observations in time order; returns the transitions they caused."""
    transitions = []
    for observation in sorted(observations, key=lambda o: o.at):
        transition = _apply_one(
            ports,
            ctx,
            observation.key,
            lambda current, o=observation: apply_observation(ctx.tenant_id, current, o),
        )
        if transition is not None:
            transitions.append(transition)
    return transitions


# --- evaluations, one per kind of input ------------------------------------------------------------
def on_meter_events(
    ports: AlarmPorts, ctx: TenantContext, events: Sequence[MeterEvent]
) -> list[AlarmTransition]:
    """MeterEventsRecorded: outages, tamper, phase loss, reverse energy, clock, relay, RTU health."""
    return apply_observations(ports, ctx, event_observations(events, settings_for(ports, ctx)))


@dataclass(frozen=True, slots=True)
class ChangedDay:
    meter_id: str
    day: date  # UTC day of the meter-channel-day item


def on_series_changed(
    ports: AlarmPorts, ctx: TenantContext, days: Iterable[ChangedDay]
) -> list[AlarmTransition]:
    """MeterDaysChanged: power factor and demand on the stored intervals of the changed days (the
    meter's measured data, before estimation: an estimate never raises a demand alarm)."""
    settings = settings_for(ports, ctx)
    changed = sorted({(d.meter_id, d.day) for d in days})
    meters = ports.registry.get_meters(ctx, {meter_id for meter_id, _ in changed})  # one read a batch
    observations: list[Observation] = []
    for meter_id, day in changed:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        active = ports.readings.load_profile(ctx, meter_id, Channel.ACTIVE_IMPORT, start, end)
        if not active:
            continue
        reactive = ports.readings.load_profile(ctx, meter_id, Channel.REACTIVE_IMPORT, start, end)
        meter = meters.get(meter_id)
        tariff = meter.tariff if meter is not None else None
        capacitive = (
            ports.readings.load_profile(ctx, meter_id, Channel.REACTIVE_EXPORT, start, end) if tariff else []
        )
        observations += power_factor_observations(meter_id, active, reactive, settings, tariff, capacitive)
        observations += demand_observations(meter_id, active, settings, tariff)
    return apply_observations(ports, ctx, observations)


def on_final_days(
    ports: AlarmPorts, ctx: TenantContext, changes: Sequence[FinalDayChange], now: datetime
) -> list[AlarmTransition]:
    """FinalDaysChanged: tally the days whose VEE rules failed; repeated failures raise an alarm."""
    settings = settings_for(ports, ctx)
    window = settings.thresholds.vee_window_days
    latest: dict[str, date] = {}
    failed: dict[tuple[str, date], set[str]] = {}
    for change in changes:
        failed.setdefault((change.meter_id, change.local_day), set()).update(change.failed_rules)
        latest[change.meter_id] = max(latest.get(change.meter_id, change.local_day), change.local_day)
    for (meter_id, day), rules in failed.items():
        ports.vee.note_vee_day(ctx, meter_id, day, sorted(rules))
    observations = []
    for meter_id, day in sorted(latest.items()):
        days = ports.vee.vee_failed_days(ctx, meter_id, day - timedelta(days=window - 1), day)
        observations += vee_failure_observation(meter_id, days, day, now, settings)
    return apply_observations(ports, ctx, observations)


def on_reads_exhausted(
    ports: AlarmPorts, ctx: TenantContext, event: ReadsExhausted, now: datetime
) -> list[AlarmTransition]:
    """MeterReadsExhausted: the re-read sweep gave up on a gap of the meter."""
    return apply_observations(ports, ctx, reads_exhausted_observation(event, now, settings_for(ports, ctx)))


# --- the periodic sweep ----------------------------------------------------------------------------
@dataclass
class SweepOutcome:
    tenants: int = 0
    observations: int = 0
    transitions: list[AlarmTransition] = field(default_factory=list)


def _meters(registry: Registry, ctx: TenantContext, customer_id: str | None = None) -> Iterator[Any]:
    cursor = None
    while True:
        page = registry.list_meters(ctx, cursor, 200, customer_id)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def series_last_seen(
    ports: AlarmPorts, ctx: TenantContext, now: datetime, lookback: timedelta
) -> dict[tuple[Subject, str], datetime]:
    """Last-seen times from the stored interval data (the end of each meter's newest active-import
    interval within `lookback`; an RTU as its freshest meter), for runtimes without the device
    activity port. Meters with nothing in the lookback are left out (never judged)."""
    seen: dict[tuple[Subject, str], datetime] = {}
    for meter in _meters(ports.registry, ctx):
        intervals = ports.readings.load_profile(ctx, meter.id, Channel.ACTIVE_IMPORT, now - lookback, now)
        if not intervals:
            continue
        newest = max(r.start + timedelta(minutes=r.length_minutes) for r in intervals)
        seen[(Subject.METER, meter.id)] = newest
        rtu = (Subject.RTU, meter.device_id)
        seen[rtu] = max(seen.get(rtu, newest), newest)
    return seen


# Readings per meter one sweep judges at most: two 5-minute periods of 30-second reads.
MAX_READINGS_PER_SWEEP = 20


def sweep_tenant(ports: AlarmPorts, ctx: TenantContext, now: datetime, period: timedelta) -> SweepOutcome:
    """One tenant's sweep: communication failures from silence, the instantaneous rules on each
    meter's readings of the last two `period`s, oldest first (the overlap keeps a reading stored
    just after a sweep, or a late sweep, from going unjudged; the lifecycle counts a reading
    judged twice once), and the closing of quiet one-shot alarms."""
    settings = settings_for(ports, ctx)
    t = settings.thresholds
    if ports.activity is not None:
        last_seen = ports.activity.last_seen(ctx)
    else:
        # Twice the silence limit back (at least a day): a meter silent for longer stays open.
        lookback = max(timedelta(days=1), 2 * timedelta(hours=float(t.silence_hours)))
        last_seen = series_last_seen(ports, ctx, now, lookback)
    meters = list(_meters(ports.registry, ctx))
    observations = silence_observations(last_seen, now, settings, {m.id: m.device_id for m in meters})
    for meter in meters:
        recent = ports.instantaneous.newest_first(
            ctx, meter.id, now - 2 * period, now + timedelta(seconds=1), MAX_READINGS_PER_SWEEP
        )
        for reading in reversed(recent):
            observations += instantaneous_observations(reading, settings)
    outcome = SweepOutcome(tenants=1, observations=len(observations))
    outcome.transitions += apply_observations(ports, ctx, observations)
    quiet = timedelta(hours=t.quiet_close_hours)
    for alarm in ports.alarms.active(ctx):
        transition = _apply_one(ports, ctx, alarm.key, lambda current: _quiet_step(current, now, quiet))
        if transition is not None:
            outcome.transitions.append(transition)
    return outcome


def _quiet_step(current: Alarm | None, now: datetime, quiet: timedelta) -> Step:
    return Step(None) if current is None else close_if_quiet(current, now, quiet)


def sweep(ports: AlarmPorts, now: datetime, period: timedelta) -> SweepOutcome:
    """Every tenant's sweep (the scheduled job)."""
    total = SweepOutcome()
    for tenant in ports.registry.list_tenants():
        one = sweep_tenant(ports, TenantContext(tenant.id), now, period)
        total.tenants += 1
        total.observations += one.observations
        total.transitions += one.transitions
    return total


# --- the API -------------------------------------------------------------------------------------
def _reach(ports: AlarmPorts, caller: Caller) -> frozenset[str] | None:
    """The meters a customer-scoped caller reaches (None: the whole tenant)."""
    if caller.customer_id is None:
        return None
    return frozenset(m.id for m in _meters(ports.registry, caller.ctx, caller.customer_id))


def _visible(ports: AlarmPorts, caller: Caller, alarm: Alarm) -> bool:
    reach = _reach(ports, caller)
    return reach is None or (alarm.key.subject is Subject.METER and alarm.key.subject_id in reach)


def parse_alarm_query(
    ports: AlarmPorts, caller: Caller, params: dict[str, str], since: datetime | None, until: datetime | None
) -> AlarmQuery:
    """The listing's filters from the query string (`state`, `type`, `meter_id`, `from`, `to`)."""
    try:
        state = AlarmState(params["state"]) if "state" in params else None
    except ValueError as exc:
        raise InvalidQuery(f"state must be one of {', '.join(s.value for s in AlarmState)}") from exc
    try:
        alarm_type = AlarmType(params["type"]) if "type" in params else None
    except ValueError as exc:
        raise InvalidQuery(f"type must be one of {', '.join(t.value for t in AlarmType)}") from exc
    meter_id = params.get("meter_id")
    if meter_id is not None:
        try:
            validate_id(meter_id, "meter")
        except InvalidTenantId as exc:
            raise InvalidQuery(f"meter_id {meter_id!r} is not a valid id") from exc
    if since is not None and until is not None and until <= since:
        raise InvalidQuery("to must be after from")
    reach = _reach(ports, caller)
    if meter_id is not None:
        try:
            owned_meter(ports.registry, caller, meter_id)
        except MeterNotFound:
            # Like every listing filter: another tenant's or customer's meter finds nothing.
            reach = frozenset()
    return AlarmQuery(
        state=state, type=alarm_type, meter_ids=reach, meter_id=meter_id, since=since, until=until
    )


def list_alarms(
    ports: AlarmPorts, caller: Caller, query: AlarmQuery, cursor: str | None, limit: int | None
) -> Page[Alarm]:
    """The caller's alarms, newest first (a customer user sees its own meters' alarms only)."""
    page = ports.alarms.listing(caller.ctx, query, decode_cursor(cursor), page_size(limit))
    return Page(page.items, encode_cursor(page.next_cursor))


def get_alarm(ports: AlarmPorts, caller: Caller, alarm_id: str) -> Alarm:
    try:
        alarm = ports.alarms.get(caller.ctx, alarm_id)
    except InvalidTenantId as exc:
        raise AlarmNotFound(f"alarm {alarm_id!r} not found") from exc
    if alarm is None or not _visible(ports, caller, alarm):
        raise AlarmNotFound(f"alarm {alarm_id!r} not found")
    return alarm


def acknowledge_alarm(ports: AlarmPorts, caller: Caller, alarm_id: str, by: str, now: datetime) -> Alarm:
    """Acknowledge an open alarm (admins, operators, tenant-wide API keys). A customer-scoped
    caller gets 403 for an alarm of its own meters and 404 for any other; acknowledging twice or
    a closed alarm changes nothing."""
    alarm = get_alarm(ports, caller, alarm_id)
    if caller.role not in ACKNOWLEDGING_ROLES or caller.customer_id is not None:
        raise AlarmForbidden(f"a {caller.role.value} may read alarms but not acknowledge them")

    def step(current: Alarm | None) -> Step:
        if current is None or current.alarm_id != alarm.alarm_id:
            return Step(None)  # an older alarm of the key: closed long ago
        return acknowledge(current, by, now)

    _apply_one(ports, caller.ctx, alarm.key, step)
    return ports.alarms.get(caller.ctx, alarm.alarm_id) or alarm


def meter_theft_score(ports: AlarmPorts, caller: Caller, meter_id: str, now: datetime) -> TheftScore:
    """The meter's theft/tamper suspicion score: its tamper-type alarms of the last 30 days and
    its daily consumption (the recent week against the four before, tenant-local days; final
    days where VEE computed them, else the stored interval series)."""
    meter = owned_meter(ports.registry, caller, meter_id)
    settings = settings_for(ports, caller.ctx)
    tenant = ports.registry.get_tenant(caller.ctx)
    zone = tenant.zone if tenant is not None else UTC
    today = now.astimezone(zone).date()
    first_day = today - timedelta(days=RECENT_DAYS + HISTORY_DAYS)
    daily: dict[date, Decimal] = {}
    if ports.final_series is not None:
        final = ports.final_series.final_days(
            caller.ctx, meter.id, Channel.ACTIVE_IMPORT, first_day, today - timedelta(days=1)
        )
        daily = {d.local_day: d.total() for d in final}
    if not daily:
        first = datetime.combine(first_day, datetime.min.time(), zone)
        end = datetime.combine(today, datetime.min.time(), zone)
        intervals = ports.readings.load_profile(
            caller.ctx, meter.id, Channel.ACTIVE_IMPORT, first.astimezone(UTC), end.astimezone(UTC)
        )
        daily = daily_totals([(r.start.astimezone(zone).date(), r.value) for r in intervals])
    alarms = ports.alarms.of_meter(caller.ctx, meter.id, now - THEFT_WINDOW)
    return theft_score(meter.id, alarms, daily, now.astimezone(zone), settings.thresholds)
