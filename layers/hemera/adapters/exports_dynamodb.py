"""The export index in the readings table (pynamodb), tenant-first like every item there:
`T#<tenant>#INDEX` / `EXP#<export id>`, one item per export holding its versions (files, sha256,
row counts, reasons, diffs) as JSON. Export ids start with the period's first day (`20261001-…`),
so one Query lists a tenant's exports newest period first and finds those near a changed day.
The per meter/channel totals stay in the manifests (S3).

The tenant's export schedules (from its tenant file, written at onboarding) are one item:
`T#<tenant>#EXPORTS` / `SCHEDULES`, the schedules as JSON.

Pending restatements sit beside the index: `T#<tenant>#INDEX` / `RST#<export id>#<meter>#<channel>#
<day>#<version>`, one item per changed final day (its `FinalDaysChanged` entry as JSON). One item
per change, not one per export, keeps a month of a large tenant's changes far from the 400 KB item
limit; the key makes recording idempotent, and clearing deletes exactly the keys a version used."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from pynamodb.attributes import NumberAttribute, NumberSetAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.models import Model

from hemera.adapters.dynamodb import bind_model
from hemera.config import AwsTarget
from hemera.domain.errors import ConcurrentUpdate
from hemera.domain.final_series import FinalDayChange
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.ports import Page
from hemera.ports.exports import (
    LONGEST_PERIOD_DAYS,
    ChannelDiff,
    Export,
    ExportedFile,
    ExportRendering,
    ExportState,
    ExportVersion,
    index_view,
)
from hemera.tenants import ExportSchedule

EXPORT_SK_PREFIX = "EXP#"


class ExportRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#INDEX
    sk = UnicodeAttribute(range_key=True)  # EXP#<export id>
    tenant = UnicodeAttribute()
    export = UnicodeAttribute()
    period_start = UnicodeAttribute()
    period_end = UnicodeAttribute()
    latest_version = NumberAttribute()  # 0 while pending (or failed)
    # pending / ready / failed; items written before on-demand requests were queued have none
    # (they were all written at once: ready).
    state = UnicodeAttribute(null=True)
    document = UnicodeAttribute()  # JSON (`export_document`)
    # A version rendered in parts: its number, and the parts recorded so far (added one at a
    # time by conditional updates, so the delivery that records the last one knows it is last).
    rendering_version = NumberAttribute(null=True)
    parts_done = NumberSetAttribute(null=True)


@cache
def export_model(table_name: str, target: AwsTarget, host: str | None) -> type[ExportRecord]:
    return bind_model(ExportRecord, table_name, target, host)


class ExportSchedulesRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#EXPORTS
    sk = UnicodeAttribute(range_key=True)  # SCHEDULES
    tenant = UnicodeAttribute()
    schedules = UnicodeAttribute()  # JSON list of ExportSchedule


@cache
def export_schedules_model(
    table_name: str, target: AwsTarget, host: str | None
) -> type[ExportSchedulesRecord]:
    return bind_model(ExportSchedulesRecord, table_name, target, host)


_SCHEDULES_SK = "SCHEDULES"


class DynamoExportSchedules:
    def __init__(self, model: type[ExportSchedulesRecord]) -> None:
        self._model = model

    def put_schedules(self, ctx: TenantContext, schedules: Sequence[ExportSchedule]) -> None:
        document = [s.model_dump(mode="json", exclude_defaults=True) for s in schedules]
        self._model(
            ctx.key_prefix + "EXPORTS",
            _SCHEDULES_SK,
            tenant=ctx.tenant_id,
            schedules=json.dumps(document, separators=(",", ":"), sort_keys=True),
        ).save()

    def schedules(self, ctx: TenantContext) -> tuple[ExportSchedule, ...]:
        try:
            record = self._model.get(ctx.key_prefix + "EXPORTS", _SCHEDULES_SK, consistent_read=True)
        except self._model.DoesNotExist:
            return ()
        return tuple(ExportSchedule.model_validate(s) for s in json.loads(record.schedules))


def export_document(export: Export) -> dict[str, Any]:
    return {
        "state": export.state.value,
        "requested_at": export.requested_at.isoformat() if export.requested_at else None,
        "failure": export.failure,
        "tenant": export.tenant_id,
        "id": export.id,
        "formats": list(export.formats),
        "period_start": export.period_start.isoformat(),
        "period_end": export.period_end.isoformat(),
        "schedule_id": export.schedule_id,
        "requested_by": export.requested_by,
        "meters": list(export.meters),
        "rendering": (
            {
                "version": export.rendering.version,
                "parts": export.rendering.parts,
                "meters_per_part": export.rendering.meters_per_part,
                "reason": export.rendering.reason,
                "created_at": export.rendering.created_at.isoformat(),
            }
            if export.rendering is not None
            else None
        ),
        "versions": [
            {
                "version": v.version,
                "created_at": v.created_at.isoformat(),
                "reason": v.reason,
                "manifest_key": v.manifest_key,
                "source_digest": v.source_digest,
                "parts": v.parts,
                "files": [f.document() for f in v.files],
                "diff": [
                    [d.meter_id, d.channel, str(d.old_total), str(d.new_total), d.intervals_changed]
                    for d in v.diff
                ],
            }
            for v in export.versions
        ],
    }


def _rendering(doc: dict[str, Any] | None, parts_done: set[float] | None) -> ExportRendering | None:
    if doc is None:
        return None
    return ExportRendering(
        version=doc["version"],
        parts=doc["parts"],
        meters_per_part=doc["meters_per_part"],
        reason=doc["reason"],
        created_at=datetime.fromisoformat(doc["created_at"]),
        parts_done=frozenset(int(p) for p in parts_done or ()),
    )


def export_of_document(doc: dict[str, Any], parts_done: set[float] | None = None) -> Export:
    return Export(
        tenant_id=doc["tenant"],
        id=doc["id"],
        formats=tuple(doc["formats"]),
        period_start=date.fromisoformat(doc["period_start"]),
        period_end=date.fromisoformat(doc["period_end"]),
        schedule_id=doc["schedule_id"],
        requested_by=doc["requested_by"],
        meters=tuple(doc["meters"]),
        versions=tuple(
            ExportVersion(
                version=v["version"],
                created_at=datetime.fromisoformat(v["created_at"]),
                reason=v["reason"],
                manifest_key=v["manifest_key"],
                source_digest=v["source_digest"],
                parts=v.get("parts", 1),
                files=tuple(ExportedFile.from_document(f) for f in v["files"]),
                diff=tuple(
                    ChannelDiff(meter, channel, Decimal(old), Decimal(new), changed)
                    for meter, channel, old, new, changed in v["diff"]
                ),
            )
            for v in doc["versions"]
        ),
        state=ExportState(doc.get("state", ExportState.READY)),
        requested_at=datetime.fromisoformat(doc["requested_at"]) if doc.get("requested_at") else None,
        failure=doc.get("failure"),
        rendering=_rendering(doc.get("rendering"), parts_done),
    )


def _export_of_record(record: ExportRecord) -> Export:
    return export_of_document(json.loads(record.document), record.parts_done)


class DynamoExportIndex:
    def __init__(self, model: type[ExportRecord]) -> None:
        self._record = model

    def _to_record(self, ctx: TenantContext, export: Export) -> ExportRecord:
        if export.tenant_id != ctx.tenant_id:
            raise ValueError("an export is stored only under its own tenant")
        return self._record(
            ctx.index_pk(),
            EXPORT_SK_PREFIX + validate_id(export.id, "export"),
            tenant=ctx.tenant_id,
            export=export.id,
            period_start=export.period_start.isoformat(),
            period_end=export.period_end.isoformat(),
            latest_version=export.latest_version or 0,
            state=export.state.value,
            document=json.dumps(export_document(index_view(export)), separators=(",", ":")),
            # parts are recorded by `record_part` only: a put starts a rendering with none
            rendering_version=export.rendering.version if export.rendering is not None else None,
        )

    def create(self, ctx: TenantContext, export: Export) -> None:
        try:
            self._to_record(ctx, export).save(condition=self._record.pk.does_not_exist())
        except PutError as exc:
            raise ConcurrentUpdate(f"export {export.id} exists") from exc

    def complete(self, ctx: TenantContext, export: Export) -> None:
        try:
            self._to_record(ctx, export).save(condition=self._record.state == ExportState.PENDING.value)
        except PutError as exc:
            raise ConcurrentUpdate(f"export {export.id} is no longer pending") from exc

    def add_version(self, ctx: TenantContext, export: Export, expected_version: int) -> None:
        try:
            # Only a ready export takes a version (items older than the state are all ready).
            ready = (self._record.state == ExportState.READY.value) | self._record.state.does_not_exist()
            self._to_record(ctx, export).save(
                condition=(self._record.latest_version == expected_version) & ready
            )
        except PutError as exc:
            raise ConcurrentUpdate(f"export {export.id} is no longer at version {expected_version}") from exc

    def start_rendering(self, ctx: TenantContext, export: Export, expected_version: int) -> None:
        if export.rendering is None:
            raise ValueError("start_rendering needs the rendering to record")
        not_failed = (self._record.state != ExportState.FAILED.value) | self._record.state.does_not_exist()
        try:
            self._to_record(ctx, export).save(
                condition=(self._record.latest_version == expected_version)
                & not_failed
                & self._record.rendering_version.does_not_exist()
            )
        except PutError as exc:
            raise ConcurrentUpdate(
                f"export {export.id} is not at version {expected_version} or renders"
            ) from exc

    def record_part(self, ctx: TenantContext, export_id: str, version: int, part: int) -> int:
        record = self._record(ctx.index_pk(), EXPORT_SK_PREFIX + validate_id(export_id, "export"))
        try:
            # One atomic update: DynamoDB applies concurrent ones one after the other, so exactly
            # one caller sees the set complete.
            record.update(
                actions=[self._record.parts_done.add({part})],
                condition=(self._record.rendering_version == version)
                & ~self._record.parts_done.contains(part),
            )
        except UpdateError as exc:
            raise ConcurrentUpdate(
                f"part {part} of {export_id} v{version} is recorded or not rendering"
            ) from exc
        return len(record.parts_done or ())

    def get(self, ctx: TenantContext, export_id: str) -> Export | None:
        sk = EXPORT_SK_PREFIX + validate_id(export_id, "export")
        try:
            record = self._record.get(ctx.index_pk(), sk, consistent_read=True)
        except self._record.DoesNotExist:
            return None
        return _export_of_record(record)

    def list(self, ctx: TenantContext, cursor: str | None, limit: int) -> Page[Export]:
        pk = ctx.index_pk()
        start = None
        if cursor is not None:
            start = {"pk": {"S": pk}, "sk": {"S": EXPORT_SK_PREFIX + validate_id(cursor, "cursor")}}
        records = list(
            self._record.query(
                pk,
                self._record.sk.startswith(EXPORT_SK_PREFIX),
                scan_index_forward=False,
                limit=limit + 1,
                page_size=limit + 1,
                last_evaluated_key=start,
            )
        )
        items = [_export_of_record(r) for r in records[:limit]]
        return Page(items, items[-1].id if len(records) > limit else None)

    def overlapping(self, ctx: TenantContext, first: date, last: date) -> Sequence[Export]:
        # Ids begin with the period's first day: every export that can reach `first` starts
        # within LONGEST_PERIOD_DAYS before it ('~' sorts after every id character).
        low = EXPORT_SK_PREFIX + f"{first - timedelta(days=LONGEST_PERIOD_DAYS):%Y%m%d}"
        high = EXPORT_SK_PREFIX + f"{last:%Y%m%d}~"
        records = self._record.query(ctx.index_pk(), self._record.sk.between(low, high))
        found = [_export_of_record(r) for r in records]
        return sorted(
            (e for e in found if e.period_start <= last and e.period_end >= first), key=lambda e: e.id
        )


RESTATEMENT_SK_PREFIX = "RST#"


class PendingRestatementRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#INDEX
    sk = UnicodeAttribute(range_key=True)  # RST#<export id>#<meter>#<channel>#<day>#<version>
    tenant = UnicodeAttribute()
    export = UnicodeAttribute()
    change = UnicodeAttribute()  # JSON: the FinalDaysChanged entry (`FinalDayChange.detail`)


@cache
def pending_restatement_model(
    table_name: str, target: AwsTarget, host: str | None
) -> type[PendingRestatementRecord]:
    return bind_model(PendingRestatementRecord, table_name, target, host)


def _restatement_sk(export_id: str, change: FinalDayChange) -> str:
    return (
        f"{RESTATEMENT_SK_PREFIX}{validate_id(export_id, 'export')}#{validate_id(change.meter_id, 'meter')}"
        f"#{change.channel.value}#{change.local_day.isoformat()}#{change.version:010d}"
    )


class DynamoPendingRestatements:
    def __init__(self, model: type[PendingRestatementRecord]) -> None:
        self._model = model

    def record(self, ctx: TenantContext, export_id: str, changes: Sequence[FinalDayChange]) -> None:
        # Puts of the same key and content: a redelivered event writes the same items again.
        with self._model.batch_write() as batch:
            for change in changes:
                batch.save(
                    self._model(
                        ctx.index_pk(),
                        _restatement_sk(export_id, change),
                        tenant=ctx.tenant_id,
                        export=export_id,
                        change=json.dumps(change.detail(), separators=(",", ":"), sort_keys=True),
                    )
                )

    def pending(self, ctx: TenantContext) -> dict[str, tuple[FinalDayChange, ...]]:
        found: dict[str, list[FinalDayChange]] = {}
        for record in self._model.query(
            ctx.index_pk(), self._model.sk.startswith(RESTATEMENT_SK_PREFIX), consistent_read=True
        ):
            found.setdefault(record.export, []).append(FinalDayChange.from_detail(json.loads(record.change)))
        return {export_id: tuple(changes) for export_id, changes in sorted(found.items())}

    def clear(self, ctx: TenantContext, export_id: str, changes: Sequence[FinalDayChange]) -> None:
        with self._model.batch_write() as batch:
            for change in changes:
                batch.delete(self._model(ctx.index_pk(), _restatement_sk(export_id, change)))
