"""Ports of billing exports: the files (S3, beside a manifest), the export index (one item per
export in the readings table, so the API pages exports without listing S3) and the
`ExportWritten` announcement on the platform bus.

Adapters: `hemera.adapters.exports_s3.S3ExportFiles`, `hemera.adapters.exports_dynamodb.DynamoExportIndex`,
`hemera.adapters.exports_s3.EventBridgeExportEvents` and the fakes of `hemera.adapters.exports_memory`.

An export is one run of a schedule (or one on-demand request) for one period: a file per format.
A restatement adds a *version* to the same export; every version keeps its own files and manifest
under `tenants/<tenant>/exports/<export id>/v<version>/`, so earlier versions stay downloadable.

An on-demand export is indexed `pending` (no version) when the portal accepts it, announced as
`ExportRequested`, and becomes `ready` (version 1) or `failed` (with the problem) when the billing
function has rendered it. A version of more meter-days than one invocation renders within its
memory and time is rendered in *parts* (`ExportRendering`): the index records the version as
rendering with its part count, one message per part goes to the requests queue, each part writes
its own files and records itself (`ExportIndex.record_part`), and the delivery that records the
last part writes the manifest and makes the version current. Restatements are debounced: the changed final days inside an export's
period wait as *pending restatements* (readings table, beside the index) until the restatements
job renders one version per export with all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from hemera.domain.exports.model import SkippedMeter
from hemera.domain.final_series import FinalDayChange
from hemera.domain.tenancy import TenantContext
from hemera.ports import Page
from hemera.tenants import ExportSchedule

MANIFEST_NAME = "manifest.json"
EXPORTS_AREA = "exports"  # the S3 area under a tenant's prefix: tenants/<t>/exports/
# No export covers more days (on-demand requests are held to it; schedules cover a month at most),
# so the exports that may contain a day start at most this many days before it.
LONGEST_PERIOD_DAYS = 62


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """One file of an export version, as its manifest lists it."""

    name: str
    format: str
    content_type: str
    key: str  # the object key (under the tenant's exports prefix)
    sha256: str  # hex digest of the object's bytes
    size: int
    rows: int
    totals: dict[str, Decimal] = field(default_factory=dict)
    # Meters of the export the file leaves out, and why (NEM12: `no_nmi`, `duplicate_nmi`).
    skipped: tuple[SkippedMeter, ...] = ()
    # The part of the version the file belongs to (1 when the version has a single part).
    part: int = 1

    def document(self) -> dict[str, Any]:
        """The JSON form a manifest, a part record and the export index list the file in."""
        return {
            "part": self.part,
            "name": self.name,
            "format": self.format,
            "content_type": self.content_type,
            "key": self.key,
            "sha256": self.sha256,
            "size": self.size,
            "rows": self.rows,
            "totals": {k: str(v) for k, v in sorted(self.totals.items())},
            "skipped": [{"meter_id": m.meter_id, "reason": m.reason} for m in self.skipped],
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ExportedFile:
        return cls(
            name=doc["name"],
            format=doc["format"],
            content_type=doc["content_type"],
            key=doc["key"],
            sha256=doc["sha256"],
            size=int(doc["size"]),
            rows=int(doc["rows"]),
            totals={k: Decimal(v) for k, v in doc["totals"].items()},
            skipped=tuple(SkippedMeter(m["meter_id"], m["reason"]) for m in doc.get("skipped", ())),
            part=int(doc.get("part", 1)),
        )


@dataclass(frozen=True, slots=True)
class ChannelTotal:
    """What one meter's channel adds up to in an export version (final values, kWh/kvarh)."""

    meter_id: str
    channel: str
    total: Decimal
    days: int
    intervals: int


@dataclass(frozen=True, slots=True)
class ChannelDiff:
    """How a restatement changed one meter's channel against the version before it."""

    meter_id: str
    channel: str
    old_total: Decimal
    new_total: Decimal
    intervals_changed: int


@dataclass(frozen=True, slots=True)
class ExportVersion:
    """One version of an export: 1 when first written, then one more per restatement."""

    version: int
    created_at: datetime
    reason: str  # "scheduled", "on_demand", "late_data", "edit", …
    manifest_key: str
    files: tuple[ExportedFile, ...]
    totals: tuple[ChannelTotal, ...] = ()
    diff: tuple[ChannelDiff, ...] = ()
    # sha256 over the (meter, channel, day, final version) the version was computed from: a
    # restatement whose sources did not move (a redelivered event) adds no version.
    source_digest: str = ""
    # How many parts it was rendered in. The index keeps the files of a version of one part only:
    # a version in parts may have thousands (a DynamoDB item holds 400 KB), its manifest has them.
    parts: int = 1


@dataclass(frozen=True, slots=True)
class ExportRendering:
    """A version being rendered in parts: `parts` parts of at most `meters_per_part` meters of
    the export (in its meter order), the parts recorded so far, and what the version will say
    (`reason`, `created_at`: the time its files carry, so a redelivered part writes equal bytes)."""

    version: int
    parts: int
    meters_per_part: int
    reason: str
    created_at: datetime
    parts_done: frozenset[int] = frozenset()

    @property
    def complete(self) -> bool:
        return len(self.parts_done) >= self.parts


class ExportState(StrEnum):
    """Where an export is: `pending` (accepted, not rendered yet: on-demand requests), `ready`
    (version 1 written; restatements add versions) or `failed` (never rendered; `failure` says why)."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Export:
    """An export and its versions (the newest last; none while pending or after a failure)."""

    tenant_id: str
    id: str
    formats: tuple[str, ...]
    period_start: date  # first local day, inclusive
    period_end: date  # last local day, inclusive
    schedule_id: str | None  # None: requested on demand
    requested_by: str  # "schedule:<id>" or the portal caller
    meters: tuple[str, ...]  # the meters it covers (resolved when first written)
    versions: tuple[ExportVersion, ...]
    state: ExportState = ExportState.READY
    # When it was asked for (on demand) — None for exports written at once (schedules).
    requested_at: datetime | None = None
    failure: str | None = None  # the problem, when failed (or when a restatement failed)
    # The version being rendered in parts, if any (a pending export's first one, or a
    # restatement of a ready export, which stays downloadable at its latest version meanwhile).
    rendering: ExportRendering | None = None

    @property
    def latest(self) -> ExportVersion:
        """The newest version (only of an export that has one: see `state`)."""
        return self.versions[-1]

    @property
    def latest_version(self) -> int | None:
        return self.versions[-1].version if self.versions else None

    def version(self, number: int) -> ExportVersion | None:
        return next((v for v in self.versions if v.version == number), None)


class ExportIndex(Protocol):
    def create(self, ctx: TenantContext, export: Export) -> None:
        """Store a new export (with its first version); ConcurrentUpdate if the id exists."""
        ...

    def complete(self, ctx: TenantContext, export: Export) -> None:
        """Replace a pending export by its outcome (`ready` with version 1, or `failed`), only if
        the stored one is still pending (else ConcurrentUpdate: another delivery finished it)."""
        ...

    def add_version(self, ctx: TenantContext, export: Export, expected_version: int) -> None:
        """Replace the stored export by `export` (one more version), only if the stored one is
        still at `expected_version` (else ConcurrentUpdate)."""
        ...

    def start_rendering(self, ctx: TenantContext, export: Export, expected_version: int) -> None:
        """Replace the stored export by `export`, whose `rendering` is set, only if the stored one
        is at `expected_version` (0: pending, no version yet), not failed, and renders nothing
        (else ConcurrentUpdate: another run started it)."""
        ...

    def record_part(self, ctx: TenantContext, export_id: str, version: int, part: int) -> int:
        """Record `part` of the rendering `version` as written, atomically; return how many of
        its parts are recorded now (the caller that sees all of them finishes the version).
        ConcurrentUpdate if the part is recorded already (a redelivery) or the export is not
        rendering `version` (finished, failed)."""
        ...

    def get(self, ctx: TenantContext, export_id: str) -> Export | None: ...

    def list(self, ctx: TenantContext, cursor: str | None, limit: int) -> Page[Export]:
        """The tenant's exports, newest period first, after `cursor` (an export id)."""
        ...

    def overlapping(self, ctx: TenantContext, first: date, last: date) -> Sequence[Export]:
        """The exports whose period shares a day with [first, last]."""
        ...


class ExportFiles(Protocol):
    def put(self, ctx: TenantContext, key: str, content: bytes, content_type: str) -> None:
        """Write one object; `key` must lie under the tenant's exports prefix."""
        ...

    def get(self, ctx: TenantContext, key: str) -> bytes: ...

    def download_url(self, ctx: TenantContext, key: str, filename: str, expires_s: int) -> str:
        """A pre-signed GET URL of one object, valid for `expires_s` seconds."""
        ...


class ExportEvents(Protocol):
    def written(self, ctx: TenantContext, detail: dict[str, Any]) -> None:
        """Announce an export version (`ExportWritten`, source `hemera.billing`)."""
        ...


class ExportRequests(Protocol):
    def requested(self, ctx: TenantContext, detail: dict[str, Any]) -> None:
        """Queue an on-demand export for rendering (`ExportRequested`, source `hemera.billing`;
        the rule forwards it to the billing function's requests queue)."""
        ...

    def parts_requested(self, ctx: TenantContext, details: Sequence[dict[str, Any]]) -> None:
        """Queue the parts of a version (`ExportRequested` with `version` and `part` in each
        detail, the same rule and queue), in as few calls as the bus allows."""
        ...


class PendingRestatements(Protocol):
    """Changed final days waiting to restate an export (debounce): recorded as `FinalDaysChanged`
    arrives, rendered together by the restatements job, then cleared."""

    def record(self, ctx: TenantContext, export_id: str, changes: Sequence[FinalDayChange]) -> None:
        """Keep `changes` (days inside the export's period) pending; recording one again is a
        no-op (SQS redelivers)."""
        ...

    def pending(self, ctx: TenantContext) -> dict[str, tuple[FinalDayChange, ...]]:
        """The tenant's pending changes by export id (exports without any are absent)."""
        ...

    def clear(self, ctx: TenantContext, export_id: str, changes: Sequence[FinalDayChange]) -> None:
        """Forget exactly `changes` (those a new version rendered): a change recorded since stays."""
        ...


def index_view(export: Export) -> Export:
    """What the index keeps of an export: everything but the per meter/channel totals (those can
    run to thousands of entries; the manifest in S3 holds them) and the files of a version in
    parts (as many; its manifest lists them)."""
    return replace(
        export,
        versions=tuple(replace(v, totals=(), files=v.files if v.parts == 1 else ()) for v in export.versions),
    )


class ExportScheduleStore(Protocol):
    """The tenants' export schedules (from their tenant files, written at onboarding): read by
    the hourly due-exports job, so adding a tenant needs no redeploy and no environment space."""

    def put_schedules(self, ctx: TenantContext, schedules: Sequence[ExportSchedule]) -> None: ...

    def schedules(self, ctx: TenantContext) -> tuple[ExportSchedule, ...]:
        """The tenant's schedules (empty when it has none)."""
        ...
