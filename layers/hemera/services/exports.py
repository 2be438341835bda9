"""Billing exports: scheduled runs, on-demand requests, restatements, and reading them back.

- **Schedules.** Each tenant file's `exports:` entries (`hemera.tenants.ExportSchedule`) are
  stored at onboarding (`register_export_schedules`) and read at each run. ONE hourly job
  ("exports due", `hemera.definitions.EXPORTS_DUE_SCHEDULE`) looks at every schedule: the latest
  period whose run time (day and hour in the tenant's zone) has passed is exported
  unless its export exists. The export id is `<period start yyyymmdd>-<schedule id>` and is
  created with a conditional put, so a job that runs twice (at-least-once) writes it once.
- **Files.** One file per format, rendered by `hemera.domain.exports.render` from the final
  (VEE'd) days, written under `tenants/<t>/exports/<id>/v<version>/` with a `manifest.json`
  (files with sha256 and row counts, period, version, per meter/channel totals, diff), then an
  index item (the readings table) and an `ExportWritten` event.
- **On demand.** `POST /v1/exports` only validates and indexes the export as `pending`, then
  announces `ExportRequested`; the billing function renders it (`render_requested_export`) into
  version 1 (`ready`) or marks it `failed` with the problem. A ready or failed export is never
  rendered again, so a redelivered request does nothing.
- **Parts.** A version of more than `PART_METER_DAYS` meter-days is rendered in parts: the
  export's meters (in their stable order) split into parts of at most that many meter-days. The
  run that makes the version (the due job, an on-demand request, the restatements job) records
  it as rendering with its part count (`ExportIndex.start_rendering`) and queues one
  `ExportRequested` per part (detail with `version` and `part`; the requests queue delivers one
  a time). Each part loads only its meters' final days, writes its own file per format
  (`…_part-0001.csv`; each a complete file: NEM12 with 100/900, ESPI a feed, the XML valid) and
  a part record (files, totals) under `v<n>/_parts/`, then records itself with a conditional
  update (`record_part`); the delivery that records the LAST part writes `manifest.json` (every
  file, totals over all parts), makes the version current and announces `ExportWritten` — the
  index's conditional update lets one delivery do it, once. A part that fails after its retries
  fails the version (`failed` export; a failed restatement keeps the export at its version with
  the problem, its changes pending). A version of one part is rendered inline, as before.
- **Restatements, debounced.** A `FinalDaysChanged` batch whose days fall inside an exported
  period only records them as pending restatements of that export (`record_restatements`). The
  restatements job (`definitions.RESTATEMENTS_SCHEDULE`, every 15 minutes) renders ONE new version
  per export with every change gathered since its last version: the combined reason (`edit`,
  `late_data`, or `edit+late_data`) and a diff per meter and channel; it then clears exactly the
  changes it rendered, so one recorded meanwhile waits for the next run. Earlier versions stay.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hemera.domain.errors import (
    ConcurrentUpdate,
    ExportForbidden,
    ExportNotFound,
    HemeraError,
    InvalidQuery,
    InvalidTenantId,
    TenantNotFound,
)
from hemera.domain.exports import (
    ExportFormat,
    ExportRequest,
    MeterExportData,
    RenderedFile,
    render,
)
from hemera.domain.final_series import FinalDay, FinalDayChange
from hemera.domain.readings import Channel
from hemera.domain.registry import Meter, Tenant
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.ports import Page, Registry
from hemera.ports.exports import (
    EXPORTS_AREA,
    LONGEST_PERIOD_DAYS,
    MANIFEST_NAME,
    ChannelDiff,
    ChannelTotal,
    Export,
    ExportedFile,
    ExportEvents,
    ExportFiles,
    ExportIndex,
    ExportRendering,
    ExportRequests,
    ExportScheduleStore,
    ExportState,
    ExportVersion,
    PendingRestatements,
)
from hemera.ports.final_series import FinalSeriesReader
from hemera.services.access import Caller, Role, decode_cursor, encode_cursor, owned_meter, page_size
from hemera.services.billing import tariff_of_customer
from hemera.tenants import ExportSchedule, TenantDefinition

# An on-demand export spans at most this many days (two billing months); restatements look this
# far back for exports that may contain a changed day.
MAX_EXPORT_DAYS = LONGEST_PERIOD_DAYS
# One invocation of the billing function (1024 MB, 300 s) renders at most this many meter-days
# (meters x days of the period) of a version: a larger one is rendered in parts (one invocation
# each), so no export is too large for the function. Measured with `tests/bench/exports.py` (200
# meters x 31 days, four channels, all five formats, on in-process moto, 2-core dev machine under
# load): a part of 496 meter-days (16 meters of a month) peaks at 415 MB of Python allocations
# (tracemalloc, moto's own included: 0.84 MB a meter-day, an upper bound) and takes 42-49 s, of
# which about a third is moto serving the final days (cProfile). So a part stays well inside
# 1024 MB with the runtime's ~150 MB, and at Lambda's CPU share for 1024 MB (~0.6 vCPU) about a
# minute; 5,000 meters for a month are ~313 parts.
PART_METER_DAYS = 500
# A Green Button download covers at most a year (ESPI's "Download My Data" use).
MAX_GREEN_BUTTON_DAYS = 366
DOWNLOAD_URL_SECONDS = 900
REQUESTING_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})
MANIFEST_SCHEMA = "hemera.export-manifest/1"
EVENT_DIFF_ENTRIES = 100
EVENT_FILE_ENTRIES = 100


@dataclass(frozen=True, slots=True)
class ExportPorts:
    registry: Registry
    final_series: FinalSeriesReader
    index: ExportIndex
    files: ExportFiles
    events: ExportEvents
    schedules: ExportScheduleStore
    requests: ExportRequests
    restatements: PendingRestatements
    # The most meter-days one invocation renders (a parameter, so tests can ask for parts).
    part_meter_days: int = PART_METER_DAYS


# --- schedules ---------------------------------------------------------------------------------
def register_export_schedules(store: ExportScheduleStore, definition: TenantDefinition) -> None:
    """Store a tenant file's export schedules (onboarding, and every change of the file)."""
    store.put_schedules(TenantContext(definition.id), definition.exports)


def tenant_schedules(registry: Registry, store: ExportScheduleStore) -> dict[str, tuple[ExportSchedule, ...]]:
    """Every registered tenant's export schedules (tenants without any are left out)."""
    found = {t.id: store.schedules(TenantContext(t.id)) for t in registry.list_tenants()}
    return {tenant: schedules for tenant, schedules in found.items() if schedules}


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _last_day_of_month(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def due_period(schedule: ExportSchedule, zone: ZoneInfo, as_of: datetime) -> tuple[date, date]:
    """The latest period of `schedule` whose run time has passed at `as_of`: (first, last) local
    days, both inclusive. A run is due at `at_hour` on the run day, in the tenant's zone."""
    local = as_of.astimezone(zone)
    run_hour = time(schedule.at_hour)
    if schedule.period == "previous_day":
        run_day = local.date() if local.time() >= run_hour else local.date() - timedelta(days=1)
        day = run_day - timedelta(days=1)
        return day, day
    run_day = local.date().replace(day=schedule.day_of_month)
    if (local.date(), local.time()) < (run_day, run_hour):
        run_day = _month_start(local.date(), 1).replace(day=schedule.day_of_month)
    if schedule.period == "previous_month":
        first = _month_start(run_day, 1)
        return first, _last_day_of_month(first)
    # billing cycle: from the read day of the month before to the day before this read day
    first = _month_start(run_day, 1).replace(day=schedule.day_of_month)
    return first, run_day - timedelta(days=1)


def scheduled_export_id(schedule: ExportSchedule, first: date) -> str:
    return validate_id(f"{first:%Y%m%d}-{schedule.id}", "export")


def on_demand_export_id(first: date) -> str:
    return f"{first:%Y%m%d}-od-{secrets.token_hex(4)}"


# --- writing an export version -----------------------------------------------------------------
def _tenant(registry: Registry, ctx: TenantContext) -> Tenant:
    tenant = registry.get_tenant(ctx)
    if tenant is None:
        raise TenantNotFound(f"tenant {ctx.tenant_id} is not registered")
    return tenant


def _all_meters(registry: Registry, ctx: TenantContext) -> list[Meter]:
    meters: list[Meter] = []
    cursor = None
    while True:
        page = registry.list_meters(ctx, cursor, 200, None)
        meters += page.items
        if page.next_cursor is None:
            return meters
        cursor = page.next_cursor


def schedule_meters(registry: Registry, ctx: TenantContext, schedule: ExportSchedule) -> list[Meter]:
    """The meters a schedule covers: its `meters`, the meters of its `customers`, or all."""
    meters = _all_meters(registry, ctx)
    if schedule.meters or schedule.customers:
        meters = [m for m in meters if m.id in schedule.meters or m.customer_id in schedule.customers]
    return sorted(meters, key=lambda m: m.id)


@dataclass(frozen=True, slots=True)
class _Rendered:
    """A version's data, totals and source digest; its files are rendered one format at a time
    (`files`), so only one file is in memory at once (a Green Button feed takes ~0.2 MB per
    meter-channel-day while it is built)."""

    request: ExportRequest  # every meter's final days (the format is set per file)
    formats: tuple[str, ...]
    totals: tuple[ChannelTotal, ...]
    source_digest: str

    def files(self) -> Iterator[tuple[str, RenderedFile]]:
        for name in self.formats:
            yield name, render(replace(self.request, format=ExportFormat(name)))


def _final_days(
    ports: ExportPorts, ctx: TenantContext, meter_id: str, first: date, last: date
) -> list[FinalDay]:
    days: list[FinalDay] = []
    for channel in Channel:
        days += ports.final_series.final_days(ctx, meter_id, channel, first, last)
    return days


def _export_data(meter: Meter, tenant: Tenant, days: Sequence[FinalDay]) -> MeterExportData:
    # The NMI and serial registered from the tenant file: NEM12 leaves a meter without an NMI
    # out (listed as skipped in the manifest), CSV and the regulatory XML show the serial.
    return MeterExportData(
        meter_id=meter.id,
        serial=meter.serial,
        nmi=meter.nmi,
        customer_id=meter.customer_id,
        timezone=tenant.timezone,
        days=tuple(days),
    )


def _render(
    ports: ExportPorts,
    ctx: TenantContext,
    tenant: Tenant,
    formats: Sequence[str],
    meters: Sequence[Meter],
    first: date,
    last: date,
    version: int,
    now: datetime,
    part: int | None = None,
    other_nmis: frozenset[str] = frozenset(),
) -> _Rendered:
    """The data of `meters` (the whole export, or one `part` of it: `other_nmis` are the NMIs
    of its meters in other parts) and their totals and source digest."""
    data = []
    totals = []
    sources = []
    for meter in meters:
        days = _final_days(ports, ctx, meter.id, first, last)
        data.append(_export_data(meter, tenant, days))
        by_channel: dict[str, list[FinalDay]] = defaultdict(list)
        for day in days:
            by_channel[day.channel.value].append(day)
            sources.append(f"{meter.id}|{day.channel.value}|{day.local_day.isoformat()}|{day.version}")
        totals += [
            ChannelTotal(
                meter.id,
                channel,
                sum((d.total() for d in channel_days), Decimal(0)),
                len(channel_days),
                sum(len(d.intervals) for d in channel_days),
            )
            for channel, channel_days in sorted(by_channel.items())
        ]
    request = ExportRequest(
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        format=ExportFormat(formats[0]),
        period_start=first,
        period_end=last,
        created_at=now,
        version=version,
        meters=tuple(data),
        part=part,
        other_nmis=other_nmis,
    )
    digest = hashlib.sha256("\n".join(sorted(sources)).encode()).hexdigest()
    return _Rendered(request, tuple(formats), tuple(totals), digest)


def export_prefix(ctx: TenantContext, export_id: str, version: int) -> str:
    return f"{ctx.s3_prefix(EXPORTS_AREA)}{validate_id(export_id, 'export')}/v{version}/"


def _number(value: Decimal) -> str:
    return str(value)


def manifest_document(export: Export, version: ExportVersion, timezone: str) -> dict[str, Any]:
    """The manifest written beside the files of one version (the record of what was sent)."""
    return {
        "schema": MANIFEST_SCHEMA,
        "tenant": export.tenant_id,
        "export_id": export.id,
        "version": version.version,
        "previous_version": version.version - 1 if version.version > 1 else None,
        "reason": version.reason,
        "created_at": version.created_at.astimezone(UTC).isoformat(),
        "schedule_id": export.schedule_id,
        "requested_by": export.requested_by,
        "formats": list(export.formats),
        "period": {
            "start": export.period_start.isoformat(),
            "end": export.period_end.isoformat(),
            "timezone": timezone,
        },
        "meters": list(export.meters),
        "parts": version.parts,
        "files": [f.document() for f in version.files],
        "totals": [_total_document(t) for t in version.totals],
        "diff": [diff_document(d) for d in version.diff],
        "source_digest": version.source_digest,
    }


def _total_document(t: ChannelTotal) -> dict[str, Any]:
    return {
        "meter_id": t.meter_id,
        "channel": t.channel,
        "total": _number(t.total),
        "days": t.days,
        "intervals": t.intervals,
    }


def diff_document(diff: ChannelDiff) -> dict[str, Any]:
    return {
        "meter_id": diff.meter_id,
        "channel": diff.channel,
        "old_total": _number(diff.old_total),
        "new_total": _number(diff.new_total),
        "intervals_changed": diff.intervals_changed,
    }


def totals_of_manifest(document: Mapping[str, Any]) -> tuple[ChannelTotal, ...]:
    return tuple(
        ChannelTotal(t["meter_id"], t["channel"], Decimal(t["total"]), int(t["days"]), int(t["intervals"]))
        for t in document.get("totals", ())
    )


def _write_files(
    ports: ExportPorts, ctx: TenantContext, prefix: str, rendered: _Rendered, part: int = 1
) -> tuple[ExportedFile, ...]:
    """Put the rendered files (one format at a time) under `prefix`; what the manifest lists."""
    files = []
    for name, file in rendered.files():
        key = prefix + file.name
        ports.files.put(ctx, key, file.content, file.content_type)
        files.append(
            ExportedFile(
                name=file.name,
                format=name,
                content_type=file.content_type,
                key=key,
                sha256=hashlib.sha256(file.content).hexdigest(),
                size=len(file.content),
                rows=file.rows,
                totals=dict(file.totals),
                skipped=file.skipped,
                part=part,
            )
        )
        del file  # before the next format is rendered: one file in memory at a time
    return tuple(files)


def _put_manifest(
    ports: ExportPorts, ctx: TenantContext, tenant: Tenant, export: Export, version: ExportVersion
) -> None:
    manifest = manifest_document(
        replace(export, versions=(*export.versions, version)), version, tenant.timezone
    )
    ports.files.put(ctx, version.manifest_key, json.dumps(manifest, indent=2).encode(), "application/json")


def _write_version(
    ports: ExportPorts,
    ctx: TenantContext,
    tenant: Tenant,
    export: Export,
    rendered: _Rendered,
    number: int,
    reason: str,
    now: datetime,
    diff: tuple[ChannelDiff, ...] = (),
) -> ExportVersion:
    """Put the files and the manifest of one version rendered at once; return the version (not
    yet indexed)."""
    prefix = export_prefix(ctx, export.id, number)
    version = ExportVersion(
        version=number,
        created_at=now,
        reason=reason,
        manifest_key=prefix + MANIFEST_NAME,
        files=_write_files(ports, ctx, prefix, rendered),
        totals=rendered.totals,
        diff=diff,
        source_digest=rendered.source_digest,
    )
    _put_manifest(ports, ctx, tenant, export, version)
    return version


def written_detail(export: Export) -> dict[str, Any]:
    """The detail of an `ExportWritten` event: enough for a tenant's system to fetch the files."""
    latest = export.latest
    return {
        "tenant": export.tenant_id,
        "export_id": export.id,
        "version": latest.version,
        "reason": latest.reason,
        "schedule_id": export.schedule_id,
        "formats": list(export.formats),
        "period_start": export.period_start.isoformat(),
        "period_end": export.period_end.isoformat(),
        "manifest_key": latest.manifest_key,
        # A version in many parts has many files: the first ones here, all of them in the manifest.
        "files": [
            {"name": f.name, "key": f.key, "sha256": f.sha256, "rows": f.rows}
            for f in latest.files[:EVENT_FILE_ENTRIES]
        ],
        "file_count": len(latest.files),
        # An event entry is at most 256 KB: the first changes here, all of them in the manifest.
        "diff": [diff_document(d) for d in latest.diff[:EVENT_DIFF_ENTRIES]],
        "diff_count": len(latest.diff),
    }


def _first_version(
    ports: ExportPorts,
    ctx: TenantContext,
    tenant: Tenant,
    export: Export,
    meters: Sequence[Meter],
    reason: str,
    rendered_at: datetime,
    now: datetime,
) -> Export:
    """`export` with version 1 written (files and manifest; not yet indexed). The files carry
    `rendered_at` as their creation time."""
    rendered = _render(
        ports, ctx, tenant, export.formats, meters, export.period_start, export.period_end, 1, rendered_at
    )
    version = _write_version(ports, ctx, tenant, export, rendered, 1, reason, now)
    return replace(export, versions=(version,), state=ExportState.READY, failure=None)


def create_export(
    ports: ExportPorts,
    ctx: TenantContext,
    export_id: str,
    formats: Sequence[str],
    meters: Sequence[Meter],
    first: date,
    last: date,
    schedule_id: str | None,
    requested_by: str,
    reason: str,
    now: datetime,
) -> Export:
    """Render, write and index version 1 of an export and announce it. ConcurrentUpdate if an
    export with this id exists (another run wrote it)."""
    tenant = _tenant(ports.registry, ctx)
    export = Export(
        tenant_id=ctx.tenant_id,
        id=export_id,
        formats=tuple(formats),
        period_start=first,
        period_end=last,
        schedule_id=schedule_id,
        requested_by=requested_by,
        meters=tuple(m.id for m in meters),
        versions=(),
    )
    rendering = _plan(ports, export, 1, reason, now)
    if rendering is not None:
        # Too large for one invocation: indexed pending with its parts, which are queued.
        export = replace(export, state=ExportState.PENDING, rendering=rendering)
        ports.index.create(ctx, export)
        _queue_parts(ports, ctx, export)
        return export
    export = _first_version(ports, ctx, tenant, export, meters, reason, now, now)
    ports.index.create(ctx, export)
    ports.events.written(ctx, written_detail(export))
    return export


# --- versions in parts ---------------------------------------------------------------------------
PARTS_FOLDER = "_parts/"  # under a version's prefix: the part records (and a restatement's changes)


def meters_per_part(days: int, part_meter_days: int) -> int:
    """How many meters of a period of `days` days one part holds (at least one)."""
    return max(1, part_meter_days // max(1, days))


def _plan(
    ports: ExportPorts, export: Export, version: int, reason: str, created_at: datetime
) -> ExportRendering | None:
    """The parts of a version of `export` (its meters, in their order, split into parts of at
    most `ports.part_meter_days` meter-days), or None when one invocation renders it."""
    days = (export.period_end - export.period_start).days + 1
    per_part = meters_per_part(days, ports.part_meter_days)
    parts = -(-len(export.meters) // per_part)
    if parts <= 1:
        return None
    return ExportRendering(version, parts, per_part, reason, created_at)


def part_detail(export: Export, version: int, part: int) -> dict[str, Any]:
    """The detail of the `ExportRequested` event of one part of a version."""
    return {"tenant": export.tenant_id, "export_id": export.id, "version": version, "part": part}


def part_of_detail(detail: Mapping[str, Any]) -> tuple[int, int] | None:
    """(version, part) of an `ExportRequested` detail of a part, None for a whole request."""
    if "part" not in detail:
        return None
    version, part = int(detail["version"]), int(detail["part"])
    if version < 1 or part < 1:
        raise ValueError(f"version {version} part {part}: both count from 1")
    return version, part


def _parts_prefix(ctx: TenantContext, export_id: str, version: int) -> str:
    return export_prefix(ctx, export_id, version) + PARTS_FOLDER


def _part_record_key(ctx: TenantContext, export_id: str, version: int, part: int) -> str:
    return f"{_parts_prefix(ctx, export_id, version)}part-{part:04d}.json"


def _changes_key(ctx: TenantContext, export_id: str, version: int) -> str:
    return f"{_parts_prefix(ctx, export_id, version)}changes.json"


def _queue_parts(ports: ExportPorts, ctx: TenantContext, export: Export) -> None:
    """Queue every part of the export's rendering; if they cannot be queued, the rendering fails
    (nothing else would ever render it) and the error is raised."""
    rendering = export.rendering
    assert rendering is not None
    try:
        ports.requests.parts_requested(
            ctx, [part_detail(export, rendering.version, p) for p in range(1, rendering.parts + 1)]
        )
    except Exception:
        _fail_rendering(ports, ctx, export, "its parts could not be queued")
        raise


def _fail_rendering(ports: ExportPorts, ctx: TenantContext, export: Export, problem: str) -> Export | None:
    """End a rendering that cannot finish: a first version fails the export; a restatement
    leaves the export at its version, with the problem (its changes stay pending). None when
    another delivery ended it first."""
    rendering = export.rendering
    try:
        if export.state is ExportState.PENDING or rendering is None or not export.versions:
            failed = _failed(export, problem)
            ports.index.complete(ctx, failed)
            return failed
        kept = replace(export, rendering=None, failure=f"version {rendering.version}: {problem}")
        ports.index.add_version(ctx, kept, export.latest.version)
        return kept
    except ConcurrentUpdate:
        return None


def _render_part(
    ports: ExportPorts, ctx: TenantContext, export: Export, rendering: ExportRendering, part: int
) -> None:
    """Render and write one part's files (its meters' final days only) and its record."""
    tenant = _tenant(ports.registry, ctx)
    by_id = {m.id: m for m in _all_meters(ports.registry, ctx)}
    first = (part - 1) * rendering.meters_per_part
    ids = export.meters[first : first + rendering.meters_per_part]
    inside = set(ids)
    other_nmis = frozenset(
        nmi for m in export.meters if m not in inside and m in by_id and (nmi := by_id[m].nmi) is not None
    )
    rendered = _render(
        ports,
        ctx,
        tenant,
        export.formats,
        [by_id[m] for m in ids if m in by_id],
        export.period_start,
        export.period_end,
        rendering.version,
        rendering.created_at,
        part,
        other_nmis,
    )
    files = _write_files(ports, ctx, export_prefix(ctx, export.id, rendering.version), rendered, part)
    record = {
        "part": part,
        "files": [f.document() for f in files],
        "totals": [_total_document(t) for t in rendered.totals],
        "source_digest": rendered.source_digest,
    }
    ports.files.put(
        ctx,
        _part_record_key(ctx, export.id, rendering.version, part),
        json.dumps(record, separators=(",", ":")).encode(),
        "application/json",
    )


def render_export_part(
    ports: ExportPorts,
    tenant_id: str,
    export_id: str,
    version: int,
    part: int,
    now: datetime,
    last_attempt: bool = True,
) -> Export | None:
    """Render one part of a version and record it; the delivery that records the last part
    finishes the version (manifest, index, `ExportWritten`). Returns the export as this delivery
    left it (still rendering, finished, or failed), or None when there was nothing to do: the
    part is recorded already (a redelivery), or the export does not render that version. An
    error a retry may not meet raises `RenderFailed` unless this is the `last_attempt`; a part
    that cannot be rendered, or fails its last attempt, fails the version."""
    ctx = TenantContext(tenant_id)
    export = ports.index.get(ctx, export_id)
    rendering = export.rendering if export is not None else None
    if (
        export is None
        or rendering is None
        or rendering.version != version
        or not 1 <= part <= rendering.parts
    ):
        return None
    if part in rendering.parts_done:
        # A redelivery. If every part is recorded, the delivery that recorded the last one may
        # have stopped before finishing: finish (the index lets only one finisher through).
        return _finish_parts(ports, ctx, export, rendering) if rendering.complete else None
    try:
        _render_part(ports, ctx, export, rendering, part)
    except (HemeraError, ValueError) as error:  # the part itself cannot be rendered
        return _fail_rendering(ports, ctx, export, f"part {part}: {type(error).__name__}: {error}")
    except Exception as error:
        if not last_attempt:
            raise RenderFailed(f"export {export_id} of {tenant_id}, part {part}: {error!r}") from error
        return _fail_rendering(
            ports, ctx, export, f"part {part}: rendering failed on every attempt ({type(error).__name__})"
        )
    try:
        done = ports.index.record_part(ctx, export_id, version, part)
    except ConcurrentUpdate:
        return None  # a concurrent delivery recorded it, or the version ended meanwhile
    recorded = replace(rendering, parts_done=rendering.parts_done | {part})
    if done < rendering.parts:
        return replace(export, rendering=recorded)
    return _finish_parts(ports, ctx, export, recorded)


def _finish_parts(
    ports: ExportPorts, ctx: TenantContext, export: Export, rendering: ExportRendering
) -> Export | None:
    """Every part is recorded: the manifest (every part's files, totals over all parts), then
    the version made current by a conditional update — only the delivery that passes it
    announces `ExportWritten`. None when another delivery finished first."""
    tenant = _tenant(ports.registry, ctx)
    records = [
        json.loads(ports.files.get(ctx, _part_record_key(ctx, export.id, rendering.version, p)))
        for p in range(1, rendering.parts + 1)
    ]
    files = tuple(ExportedFile.from_document(f) for r in records for f in r["files"])
    totals = tuple(t for r in records for t in totals_of_manifest(r))
    digest = hashlib.sha256("\n".join(r["source_digest"] for r in records).encode()).hexdigest()
    manifest_key = export_prefix(ctx, export.id, rendering.version) + MANIFEST_NAME
    version = ExportVersion(
        rendering.version,
        rendering.created_at,
        rendering.reason,
        manifest_key,
        files,
        totals,
        (),
        digest,
        rendering.parts,
    )
    if export.state is ExportState.PENDING:
        _put_manifest(ports, ctx, tenant, export, version)
        ready = replace(export, versions=(version,), state=ExportState.READY, failure=None, rendering=None)
        try:
            ports.index.complete(ctx, ready)
        except ConcurrentUpdate:
            return None
        ports.events.written(ctx, written_detail(ready))
        return ready
    changes = tuple(
        FinalDayChange.from_detail(c)
        for c in json.loads(ports.files.get(ctx, _changes_key(ctx, export.id, rendering.version)))
    )
    latest = export.latest
    if digest == latest.source_digest:  # the final days did not move: no new version
        kept = replace(export, rendering=None)
        try:
            ports.index.add_version(ctx, kept, latest.version)
        except ConcurrentUpdate:
            return None
        ports.restatements.clear(ctx, export.id, changes)
        return kept
    previous = json.loads(ports.files.get(ctx, latest.manifest_key))
    diff = _diff(totals_of_manifest(previous), totals, _intervals_changed(ports, ctx, changes))
    version = replace(version, diff=diff)
    _put_manifest(ports, ctx, tenant, export, version)
    restated = replace(export, versions=(*export.versions, version), rendering=None, failure=None)
    try:
        ports.index.add_version(ctx, restated, latest.version)
    except ConcurrentUpdate:
        return None
    ports.restatements.clear(ctx, export.id, changes)
    ports.events.written(ctx, written_detail(restated))
    return restated


# --- on-demand exports, rendered by the billing function ----------------------------------------
def requested_detail(export: Export) -> dict[str, Any]:
    """The detail of an `ExportRequested` event (the rest is in the index)."""
    return {"tenant": export.tenant_id, "export_id": export.id}


def request_of_detail(detail: Mapping[str, Any]) -> tuple[str, str]:
    """(tenant, export id) of an `ExportRequested` detail."""
    return validate_id(str(detail["tenant"]), "tenant"), validate_id(str(detail["export_id"]), "export")


class RenderFailed(Exception):
    """Rendering a requested export failed for a reason another attempt may not have (storage,
    throttling): the request is delivered again, and the last attempt marks the export failed."""


def _failed(export: Export, problem: str) -> Export:
    return replace(export, state=ExportState.FAILED, failure=problem, versions=(), rendering=None)


def render_requested_export(
    ports: ExportPorts, tenant_id: str, export_id: str, now: datetime, last_attempt: bool = True
) -> Export | None:
    """Render a pending on-demand export into version 1 (`ready`) and announce it, or mark it
    `failed` with the problem; one too large for an invocation is started in parts instead
    (returned pending, with its rendering). None when there is nothing to do: unknown, or already ready or
    failed (a redelivered request, or another delivery finished first). An error a retry may not
    meet (storage, throttling) raises `RenderFailed` unless this is the `last_attempt`."""
    ctx = TenantContext(tenant_id)
    export = ports.index.get(ctx, export_id)
    if export is None or export.state is not ExportState.PENDING or export.rendering is not None:
        return None  # done, or rendering in parts (another delivery queued them)
    rendering = _plan(ports, export, 1, "on_demand", export.requested_at or now)
    if rendering is not None:
        started = replace(export, rendering=rendering)
        try:
            ports.index.start_rendering(ctx, started, 0)
        except ConcurrentUpdate:
            return None
        _queue_parts(ports, ctx, started)
        return started
    try:
        tenant = _tenant(ports.registry, ctx)
        by_id = {m.id: m for m in _all_meters(ports.registry, ctx)}
        meters = [by_id[m] for m in export.meters if m in by_id]
        # The files carry the request's time: two deliveries rendering at once write equal bytes.
        rendered_at = export.requested_at or now
        outcome = _first_version(ports, ctx, tenant, export, meters, "on_demand", rendered_at, now)
    except (HemeraError, ValueError) as error:  # the request itself cannot be rendered
        outcome = _failed(export, f"{type(error).__name__}: {error}")
    except Exception as error:
        if not last_attempt:
            raise RenderFailed(f"export {export_id} of {tenant_id}: {error!r}") from error
        outcome = _failed(export, f"rendering failed on every attempt ({type(error).__name__})")
    try:
        ports.index.complete(ctx, outcome)
    except ConcurrentUpdate:
        return None  # another delivery completed it first
    if outcome.state is ExportState.READY:
        ports.events.written(ctx, written_detail(outcome))
    return outcome


# --- the hourly job ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DueRun:
    tenant_id: str
    schedule: ExportSchedule
    export_id: str
    first: date
    last: date
    # A billing-cycle run's meters (those whose cycle closes on its reading day); None: the
    # schedule's meters.
    meter_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class DueOutcome:
    written: tuple[Export, ...] = ()
    already_done: tuple[str, ...] = ()  # export ids
    failures: tuple[tuple[DueRun, Exception], ...] = ()
    rendering: tuple[Export, ...] = ()  # exports started in parts (the part messages finish them)


def due_runs(
    registry: Registry, schedules: Mapping[str, Sequence[ExportSchedule]], as_of: datetime
) -> list[DueRun]:
    """Every schedule's latest due period (done or not: the index tells)."""
    runs = []
    for tenant_id, tenant_schedules in sorted(schedules.items()):
        ctx = TenantContext(tenant_id)
        tenant = registry.get_tenant(ctx)
        if tenant is None:
            continue  # in the schedules but not (or no longer) registered
        for schedule in tenant_schedules:
            if schedule.period == "billing_cycle":
                runs += _billing_cycle_runs(registry, ctx, tenant, schedule, as_of)
                continue
            first, last = due_period(schedule, tenant.zone, as_of)
            runs.append(DueRun(tenant_id, schedule, scheduled_export_id(schedule, first), first, last))
    return runs


def _billing_cycle_runs(
    registry: Registry, ctx: TenantContext, tenant: Tenant, schedule: ExportSchedule, as_of: datetime
) -> list[DueRun]:
    """A billing-cycle schedule exports each meter's own cycle when it closes: its meters grouped
    by reading day (the customer's, else the tariff's — `tariff_of_customer`; the schedule's
    `day_of_month` for a meter without a tariff), one run per reading day, due at `at_hour` on
    that day. Two reading days never share a run (their cycles start on different days, hence
    different export ids). Each customer is read once."""
    meters = schedule_meters(registry, ctx, schedule)
    customers = {c: registry.get_customer(ctx, c) for c in {m.customer_id for m in meters}}
    by_day: dict[int, list[str]] = {}
    for meter in meters:
        tariff = tariff_of_customer(meter, customers[meter.customer_id])
        day = tariff.reading_day if tariff is not None else schedule.day_of_month
        by_day.setdefault(day, []).append(meter.id)
    runs = []
    for day, meter_ids in sorted(by_day.items()):
        cycle = schedule.model_copy(update={"day_of_month": day})
        first, last = due_period(cycle, tenant.zone, as_of)
        runs.append(
            DueRun(
                ctx.tenant_id, schedule, scheduled_export_id(schedule, first), first, last, tuple(meter_ids)
            )
        )
    return runs


def run_due_exports(
    ports: ExportPorts, schedules: Mapping[str, Sequence[ExportSchedule]], as_of: datetime, now: datetime
) -> DueOutcome:
    """Write every due export that does not exist yet (idempotent: run it as often as you like).
    One failing export does not stop the others; the job fails when any did (EventBridge retries)."""
    written: list[Export] = []
    rendering: list[Export] = []
    done: list[str] = []
    failures: list[tuple[DueRun, Exception]] = []
    for run in due_runs(ports.registry, schedules, as_of):
        ctx = TenantContext(run.tenant_id)
        if ports.index.get(ctx, run.export_id) is not None:
            done.append(run.export_id)
            continue
        try:
            meters = schedule_meters(ports.registry, ctx, run.schedule)
            if run.meter_ids is not None:
                meters = [m for m in meters if m.id in run.meter_ids]
            export = create_export(
                ports,
                ctx,
                run.export_id,
                run.schedule.all_formats,
                meters,
                run.first,
                run.last,
                run.schedule.id,
                f"schedule:{run.schedule.id}",
                "scheduled",
                now,
            )
            (rendering if export.rendering is not None else written).append(export)
        except ConcurrentUpdate:
            done.append(run.export_id)  # a concurrent run wrote it first
        except Exception as exc:
            failures.append((run, exc))
    return DueOutcome(tuple(written), tuple(done), tuple(failures), tuple(rendering))


# --- restatements ------------------------------------------------------------------------------
def changes_of_detail(detail: Mapping[str, Any]) -> tuple[str, tuple[FinalDayChange, ...]]:
    """The tenant and changes of one `FinalDaysChanged` event detail."""
    tenant = validate_id(str(detail["tenant"]), "tenant")
    return tenant, tuple(FinalDayChange.from_detail(d) for d in detail["days"])


def restatement_reason(changes: Iterable[FinalDayChange]) -> str:
    """The reasons of the changes a restatement gathers, joined: `edit` for an operator's edit,
    `late_data` for the rest (late or re-read meter data, a sweep's estimate replaced by
    actuals, …) — `edit+late_data` when both are among them."""
    reasons = {"edit" if c.cause == "edit" else "late_data" for c in changes}
    return "+".join(sorted(reasons)) or "late_data"


def _intervals_changed(
    ports: ExportPorts, ctx: TenantContext, changes: Iterable[FinalDayChange]
) -> dict[tuple[str, str], int]:
    """Per meter and channel: intervals whose final value differs between the day's version
    before the change and the newest changed version."""
    span: dict[tuple[str, Channel, date], tuple[int | None, int]] = {}
    for c in changes:
        key = (c.meter_id, c.channel, c.local_day)
        before, after = span.get(key, (c.previous_version, c.version))
        earliest = (
            c.previous_version
            if before is None or c.previous_version is None
            else min(before, c.previous_version)
        )
        span[key] = (earliest, max(after, c.version))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for (meter_id, channel, day), (before, after) in span.items():
        new = ports.final_series.final_day_version(ctx, meter_id, channel, day, after)
        old = ports.final_series.final_day_version(ctx, meter_id, channel, day, before) if before else None
        old_values = {i.start: i.value for i in old.intervals} if old is not None else {}
        new_values = {i.start: i.value for i in new.intervals} if new is not None else {}
        counts[(meter_id, channel.value)] += sum(
            1
            for start in old_values.keys() | new_values.keys()
            if old_values.get(start) != new_values.get(start)
        )
    return counts


def _diff(
    old: Sequence[ChannelTotal], new: Sequence[ChannelTotal], changed: Mapping[tuple[str, str], int]
) -> tuple[ChannelDiff, ...]:
    old_by = {(t.meter_id, t.channel): t.total for t in old}
    new_by = {(t.meter_id, t.channel): t.total for t in new}
    diffs = []
    for key in sorted(old_by.keys() | new_by.keys() | changed.keys()):
        before, after = old_by.get(key, Decimal(0)), new_by.get(key, Decimal(0))
        if before != after or changed.get(key, 0):
            diffs.append(ChannelDiff(key[0], key[1], before, after, changed.get(key, 0)))
    return tuple(diffs)


def restate_export(
    ports: ExportPorts,
    ctx: TenantContext,
    export: Export,
    changes: Sequence[FinalDayChange],
    now: datetime,
) -> Export | None:
    """The next version of `export` for `changes` (days inside its period), or None when the
    final days it was computed from did not move (a redelivered event). A version too large for
    one invocation is started in parts instead: returned with its `rendering` (its changes are
    kept beside the parts and cleared by the delivery that finishes it)."""
    tenant = _tenant(ports.registry, ctx)
    number = export.latest.version + 1
    rendering = _plan(ports, export, number, restatement_reason(changes), now)
    if rendering is not None:
        ports.files.put(
            ctx,
            _changes_key(ctx, export.id, number),
            json.dumps([c.detail() for c in changes], separators=(",", ":")).encode(),
            "application/json",
        )
        started = replace(export, rendering=rendering)
        ports.index.start_rendering(ctx, started, export.latest.version)
        _queue_parts(ports, ctx, started)
        return started
    meters_by_id = {m.id: m for m in _all_meters(ports.registry, ctx)}
    meters = [meters_by_id[m] for m in export.meters if m in meters_by_id]
    rendered = _render(
        ports, ctx, tenant, export.formats, meters, export.period_start, export.period_end, number, now
    )
    if rendered.source_digest == export.latest.source_digest:
        return None
    previous = json.loads(ports.files.get(ctx, export.latest.manifest_key))
    diff = _diff(totals_of_manifest(previous), rendered.totals, _intervals_changed(ports, ctx, changes))
    version = _write_version(
        ports, ctx, tenant, export, rendered, number, restatement_reason(changes), now, diff
    )
    restated = replace(export, versions=(*export.versions, version), failure=None)
    ports.index.add_version(ctx, restated, export.latest.version)
    ports.events.written(ctx, written_detail(restated))
    return restated


def _inside(export: Export, changes: Iterable[FinalDayChange]) -> list[FinalDayChange]:
    meters = set(export.meters)
    return [
        c for c in changes if export.period_start <= c.local_day <= export.period_end and c.meter_id in meters
    ]


def record_restatements(
    ports: ExportPorts, tenant_id: str, changes: Sequence[FinalDayChange]
) -> dict[str, int]:
    """Record the changes inside each ready export's period and meters as pending restatements of
    that export (idempotent); returns how many were recorded per export id."""
    if not changes:
        return {}
    ctx = TenantContext(tenant_id)
    first = min(c.local_day for c in changes)
    last = max(c.local_day for c in changes)
    recorded = {}
    for export in ports.index.overlapping(ctx, first, last):
        if export.state is not ExportState.READY:
            continue  # a pending export renders the newest data anyway; a failed one never will
        inside = _inside(export, changes)
        if inside:
            ports.restatements.record(ctx, export.id, inside)
            recorded[export.id] = len(inside)
    return recorded


@dataclass(frozen=True, slots=True)
class RestatementOutcome:
    restated: tuple[Export, ...] = ()
    unchanged: tuple[str, ...] = ()  # export ids whose final days did not move (changes cleared)
    failures: tuple[tuple[str, str, Exception], ...] = ()  # (tenant, export id, error)
    rendering: tuple[Export, ...] = ()  # restatements started in parts


def restate_pending(ports: ExportPorts, ctx: TenantContext, now: datetime) -> RestatementOutcome:
    """One new version of each of the tenant's exports with pending changes, gathering all of
    them; the changes rendered are cleared (those recorded during the render stay pending). An
    export whose version check fails (a concurrent run) keeps its changes for the next run."""
    restated: list[Export] = []
    unchanged: list[str] = []
    failures: list[tuple[str, str, Exception]] = []
    rendering: list[Export] = []
    for export_id, changes in ports.restatements.pending(ctx).items():
        try:
            export = ports.index.get(ctx, export_id)
            if export is None or export.state is not ExportState.READY:
                ports.restatements.clear(ctx, export_id, changes)
                continue
            if export.rendering is not None:
                continue  # a version renders in parts: what it does not gather stays pending
            new = restate_export(ports, ctx, export, changes, now)
            if new is not None and new.rendering is not None:
                rendering.append(new)  # its last part clears the changes it rendered
                continue
            ports.restatements.clear(ctx, export_id, changes)
            if new is None:
                unchanged.append(export_id)
            else:
                restated.append(new)
        except ConcurrentUpdate:
            continue  # a concurrent run added the version; what it did not gather stays pending
        except Exception as error:  # the others go on; this one's changes stay pending
            failures.append((ctx.tenant_id, export_id, error))
    return RestatementOutcome(tuple(restated), tuple(unchanged), tuple(failures), tuple(rendering))


def run_restatements(ports: ExportPorts, now: datetime) -> RestatementOutcome:
    """The restatements job: every registered tenant's pending restatements."""
    restated: list[Export] = []
    unchanged: list[str] = []
    failures: list[tuple[str, str, Exception]] = []
    rendering: list[Export] = []
    for tenant in ports.registry.list_tenants():
        outcome = restate_pending(ports, TenantContext(tenant.id), now)
        restated += outcome.restated
        unchanged += outcome.unchanged
        failures += outcome.failures
        rendering += outcome.rendering
    return RestatementOutcome(tuple(restated), tuple(unchanged), tuple(failures), tuple(rendering))


# --- the portal API ----------------------------------------------------------------------------
def _tenant_wide(caller: Caller) -> bool:
    """Exports hold every meter of a tenant: only tenant-wide callers see them."""
    return caller.customer_id is None


def list_exports(ports: ExportPorts, caller: Caller, cursor: str | None, limit: int | None) -> Page[Export]:
    """The tenant's exports, newest period first (a customer-scoped caller sees none)."""
    after, size = decode_cursor(cursor), page_size(limit)
    if not _tenant_wide(caller):
        return Page([])
    page = ports.index.list(caller.ctx, after, size)
    return Page(page.items, encode_cursor(page.next_cursor))


def get_export(ports: ExportPorts, caller: Caller, export_id: str) -> Export:
    if not _tenant_wide(caller):
        raise ExportNotFound(f"export {export_id!r} not found")
    try:
        export = ports.index.get(caller.ctx, export_id)
    except InvalidTenantId as exc:
        raise ExportNotFound(f"export {export_id!r} not found") from exc
    if export is None:
        raise ExportNotFound(f"export {export_id!r} not found")
    return with_files(ports, caller.ctx, export)


def with_files(ports: ExportPorts, ctx: TenantContext, export: Export) -> Export:
    """`export` with the files of its versions in parts, which the index leaves to their
    manifests (read from S3, one object per such version)."""
    versions = []
    for version in export.versions:
        if version.parts > 1 and not version.files:
            manifest = json.loads(ports.files.get(ctx, version.manifest_key))
            version = replace(version, files=tuple(ExportedFile.from_document(f) for f in manifest["files"]))
        versions.append(version)
    return replace(export, versions=tuple(versions))


def download_url(ports: ExportPorts, caller: Caller, file: ExportedFile) -> str:
    return ports.files.download_url(caller.ctx, file.key, file.name, DOWNLOAD_URL_SECONDS)


def _date(value: object, name: str) -> date:
    if not isinstance(value, str):
        raise InvalidQuery(f"{name} is a date like 2026-10-01")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidQuery(f"{name}={value!r} is not a date like 2026-10-01") from exc


def _requested_period(body: Mapping[str, Any]) -> tuple[date, date]:
    if "period" in body:
        if "from" in body or "to" in body:
            raise InvalidQuery("give either period (YYYY-MM) or from and to")
        text = body["period"]
        try:
            first = date.fromisoformat(f"{text}-01") if isinstance(text, str) and len(text) == 7 else None
        except ValueError:
            first = None
        if first is None:
            raise InvalidQuery(f"period={text!r} is a calendar month like 2026-10")
        return first, _last_day_of_month(first)
    if "from" not in body or "to" not in body:
        raise InvalidQuery("give period (YYYY-MM) or from and to (dates; to is exclusive)")
    first, end = _date(body["from"], "from"), _date(body["to"], "to")
    if end <= first:
        raise InvalidQuery("to must be after from")
    if (end - first).days > MAX_EXPORT_DAYS:
        raise InvalidQuery(f"an export spans at most {MAX_EXPORT_DAYS} days")
    return first, end - timedelta(days=1)


def _requested_formats(body: Mapping[str, Any]) -> tuple[str, ...]:
    raw = body.get("formats", [body["format"]] if "format" in body else None)
    known = [f.value for f in ExportFormat]
    if not isinstance(raw, list) or not raw or not all(isinstance(f, str) and f in known for f in raw):
        raise InvalidQuery(f"format (or formats, a list) must be one of {', '.join(known)}")
    return tuple(dict.fromkeys(raw))


def request_export(
    ports: ExportPorts,
    caller: Caller,
    requested_by: str,
    body: Mapping[str, Any],
    now: datetime,
    new_id: Callable[[date], str] = on_demand_export_id,
) -> Export:
    """An export on demand (admins and operators): validated, indexed as `pending` and queued
    (`ExportRequested`); the billing function renders it. Returns the pending export."""
    if caller.role not in REQUESTING_ROLES:
        if not _tenant_wide(caller):
            raise ExportForbidden("exports hold every meter of the tenant: ask an operator")
        raise ExportForbidden(f"a {caller.role.value} may read exports but not request them")
    unknown = set(body) - {"format", "formats", "period", "from", "to", "meters"}
    if unknown:
        raise InvalidQuery(f"unknown fields {sorted(unknown)}")
    formats = _requested_formats(body)
    first, last = _requested_period(body)
    wanted = body.get("meters")
    if wanted is None:
        meters = sorted(_all_meters(ports.registry, caller.ctx), key=lambda m: m.id)
    else:
        if not isinstance(wanted, list) or not wanted or not all(isinstance(m, str) for m in wanted):
            raise InvalidQuery("meters is a non-empty list of meter ids")
        meters = sorted({owned_meter(ports.registry, caller, m) for m in wanted}, key=lambda m: m.id)
    # No cap on meters: a request larger than one invocation renders is rendered in parts.
    export = Export(
        tenant_id=caller.ctx.tenant_id,
        id=new_id(first),
        formats=formats,
        period_start=first,
        period_end=last,
        schedule_id=None,
        requested_by=requested_by,
        meters=tuple(m.id for m in meters),
        versions=(),
        state=ExportState.PENDING,
        requested_at=now,
    )
    ports.index.create(caller.ctx, export)
    try:
        ports.requests.requested(caller.ctx, requested_detail(export))
    except Exception:
        # Not queued, never rendered: say so on the export instead of leaving it pending.
        ports.index.complete(caller.ctx, _failed(export, "the request could not be queued; ask again"))
        raise
    return export


def green_button(
    ports: ExportPorts, caller: Caller, meter_id: str, first: date, end: date, now: datetime
) -> RenderedFile:
    """One meter's final data as a Green Button (ESPI) feed, for the local days [first, end)."""
    meter = owned_meter(ports.registry, caller, meter_id)
    if end <= first:
        raise InvalidQuery("to must be after from")
    if (end - first).days > MAX_GREEN_BUTTON_DAYS:
        raise InvalidQuery(f"a Green Button download spans at most {MAX_GREEN_BUTTON_DAYS} days")
    tenant = _tenant(ports.registry, caller.ctx)
    last = end - timedelta(days=1)
    days = _final_days(ports, caller.ctx, meter.id, first, last)
    return render(
        ExportRequest(
            tenant_id=tenant.id,
            tenant_name=tenant.name,
            format=ExportFormat.GREEN_BUTTON,
            period_start=first,
            period_end=last,
            created_at=now,
            version=1,
            meters=(_export_data(meter, tenant, days),),
        )
    )
