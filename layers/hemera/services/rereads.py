"""The scheduled command sweeps of a tenant: automatic re-reads of missing data, and the expiry of
commands whose RTU never answered (`hemera.domain.rereads` for the re-read rules).

Re-reads: the sweep walks the tenant's meters (at most `max_meters_per_run` a run, resuming after
the last one), finds each meter's gaps in the last `lookback` from its stored series, and sends a
`read_range` command for exactly each gap to the meter's RTU — the agent reads that span of the
load profile again and publishes it; translate stores it and the gap is gone at the next run. After
`max_attempts` unanswered reads a `MeterReadsExhausted` event asks the alarms for a
communication-failure alarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from hemera.definitions import READS_EXHAUSTED
from hemera.domain.commands import CommandKind, MeterCommand, validate_params
from hemera.domain.registry import Meter
from hemera.domain.rereads import (
    REREAD_CHANNEL,
    Gap,
    RereadAttempt,
    RereadPolicy,
    find_gaps,
    plan_rereads,
    record_attempt,
)
from hemera.domain.tenancy import TenantContext
from hemera.observability import logger
from hemera.ports import PlatformEvents, ReadingStore, Registry
from hemera.ports.rereads import RereadLog
from hemera.services.commands import CommandPorts, expire_overdue, issue_command

SWEEP_REQUESTER = "hemera:reread-sweep"
SYSTEM_ROLE = "system"
DEFAULT_POLICY = RereadPolicy()


@dataclass(frozen=True, slots=True)
class SweepPorts:
    registry: Registry
    store: ReadingStore
    commands: CommandPorts
    rereads: RereadLog
    events: PlatformEvents


@dataclass(slots=True)
class RereadReport:
    tenant_id: str
    meters_swept: int = 0
    gaps: int = 0
    sent: list[MeterCommand] = field(default_factory=list)
    exhausted: list[RereadAttempt] = field(default_factory=list)
    closed: int = 0
    deferred: int = 0


def _meters_to_sweep(
    registry: Registry, ctx: TenantContext, cursor: str | None, limit: int
) -> tuple[list[Meter], str | None]:
    """Up to `limit` meters after `cursor`; the next cursor (None when the listing wrapped)."""
    page = registry.list_meters(ctx, cursor, limit)
    return page.items, page.next_cursor


def _days(start: datetime, end: datetime) -> list[date]:
    first, last = start.date(), end.date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def find_meter_gaps(
    ports: SweepPorts, ctx: TenantContext, meters: Sequence[Meter], now: datetime, lookback: timedelta
) -> list[Gap]:
    """Every gap of these meters within the last `lookback`, from their stored series."""
    window_start = now - lookback
    keys = [(m.id, REREAD_CHANNEL, day) for m in meters for day in _days(window_start, now)]
    stored = ports.store.read_series(ctx, keys)
    gaps: list[Gap] = []
    for meter in meters:
        readings = [
            r for (meter_id, _, _), day in stored.items() if meter_id == meter.id for r in day.readings
        ]
        if not readings:
            continue  # silent in the whole window: the alarms' communication failure, not a gap
        minutes = readings[0].length_minutes
        gaps.extend(find_gaps(meter.id, meter.device_id, (r.start for r in readings), minutes, window_start))
    return gaps


def sweep_rereads(
    ports: SweepPorts, ctx: TenantContext, now: datetime, policy: RereadPolicy = DEFAULT_POLICY
) -> RereadReport:
    """One run of the re-read sweep for one tenant (see the module docstring)."""
    report = RereadReport(ctx.tenant_id)
    meters, next_cursor = _meters_to_sweep(
        ports.registry, ctx, ports.rereads.scan_cursor(ctx), policy.max_meters_per_run
    )
    report.meters_swept = len(meters)
    gaps = find_meter_gaps(ports, ctx, meters, now, policy.lookback)
    report.gaps = len(gaps)
    attempts = ports.rereads.attempts(ctx)
    plan = plan_rereads(gaps, attempts, now, policy, frozenset(m.id for m in meters))
    by_id = {m.id: m for m in meters}
    sent_attempts = []
    for gap in plan.send:
        params = validate_params(
            CommandKind.READ_RANGE, {"from": gap.start.isoformat(), "to": gap.end.isoformat()}
        )
        command = issue_command(
            ports.commands,
            ctx,
            by_id[gap.meter_id],
            CommandKind.READ_RANGE,
            params,
            SWEEP_REQUESTER,
            SYSTEM_ROLE,
            now,
        )
        report.sent.append(command)
        sent_attempts.append(record_attempt(attempts.get(gap.key), gap, now, command.id))
    if plan.give_up:
        ports.events.put(READS_EXHAUSTED, [_exhausted_detail(ctx, a) for a in plan.give_up])
    ports.rereads.save(ctx, [*sent_attempts, *plan.give_up])
    ports.rereads.forget(ctx, plan.forget)
    ports.rereads.set_scan_cursor(ctx, next_cursor)
    report.exhausted = list(plan.give_up)
    report.closed = len(plan.forget)
    report.deferred = plan.deferred
    logger.info(
        "re-read sweep",
        extra={
            "tenant": ctx.tenant_id,
            "meters": report.meters_swept,
            "gaps": report.gaps,
            "sent": len(report.sent),
            "exhausted": len(report.exhausted),
            "closed": report.closed,
            "deferred": report.deferred,
        },
    )
    return report


def _exhausted_detail(ctx: TenantContext, attempt: RereadAttempt) -> dict[str, object]:
    return {
        "tenant": ctx.tenant_id,
        "meter_id": attempt.meter_id,
        "device_id": attempt.device_id,
        "channel": REREAD_CHANNEL.value,
        "gap_start": attempt.start.isoformat(),
        "gap_end": attempt.end.isoformat(),
        "attempts": attempt.attempts,
    }


def sweep_all_tenants(
    ports: SweepPorts, now: datetime, policy: RereadPolicy = DEFAULT_POLICY
) -> list[RereadReport]:
    return [sweep_rereads(ports, TenantContext(t.id), now, policy) for t in ports.registry.list_tenants()]


def expire_all_tenants(ports: SweepPorts, now: datetime) -> dict[str, int]:
    """Expire every tenant's overdue commands; how many per tenant."""
    expired = {}
    for tenant in ports.registry.list_tenants():
        ctx = TenantContext(tenant.id)
        expired[tenant.id] = len(expire_overdue(ports.commands.commands, ctx, now))
    return expired
