"""In-memory fakes of the export ports, with the semantics of the AWS adapters (the same contract
tests run both)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from urllib.parse import quote

from hemera.adapters.exports_s3 import checked_export_key
from hemera.domain.errors import ConcurrentUpdate
from hemera.domain.final_series import FinalDayChange
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.ports import Page
from hemera.ports.exports import Export, ExportState, index_view
from hemera.tenants import ExportSchedule


class MemoryExportIndex:
    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Export] = {}

    def create(self, ctx: TenantContext, export: Export) -> None:
        key = (ctx.tenant_id, validate_id(export.id, "export"))
        if export.tenant_id != ctx.tenant_id:
            raise ValueError("an export is stored only under its own tenant")
        if key in self._items:
            raise ConcurrentUpdate(f"export {export.id} exists")
        self._items[key] = index_view(export)

    def complete(self, ctx: TenantContext, export: Export) -> None:
        key = (ctx.tenant_id, validate_id(export.id, "export"))
        stored = self._items.get(key)
        if stored is None or stored.state is not ExportState.PENDING:
            raise ConcurrentUpdate(f"export {export.id} is no longer pending")
        self._items[key] = index_view(export)

    def add_version(self, ctx: TenantContext, export: Export, expected_version: int) -> None:
        key = (ctx.tenant_id, validate_id(export.id, "export"))
        stored = self._items.get(key)
        if (
            stored is None
            or stored.state is not ExportState.READY
            or stored.latest.version != expected_version
        ):
            raise ConcurrentUpdate(f"export {export.id} is no longer at version {expected_version}")
        self._items[key] = index_view(export)

    def start_rendering(self, ctx: TenantContext, export: Export, expected_version: int) -> None:
        key = (ctx.tenant_id, validate_id(export.id, "export"))
        stored = self._items.get(key)
        if export.rendering is None:
            raise ValueError("start_rendering needs the rendering to record")
        if (
            stored is None
            or stored.state is ExportState.FAILED
            or (stored.latest_version or 0) != expected_version
            or stored.rendering is not None
        ):
            raise ConcurrentUpdate(f"export {export.id} is not at version {expected_version} or renders")
        self._items[key] = index_view(
            replace(export, rendering=replace(export.rendering, parts_done=frozenset()))
        )

    def record_part(self, ctx: TenantContext, export_id: str, version: int, part: int) -> int:
        key = (ctx.tenant_id, validate_id(export_id, "export"))
        stored = self._items.get(key)
        rendering = stored.rendering if stored is not None else None
        if (
            stored is None
            or rendering is None
            or rendering.version != version
            or part in rendering.parts_done
        ):
            raise ConcurrentUpdate(f"part {part} of {export_id} v{version} is recorded or not rendering")
        done = rendering.parts_done | {part}
        self._items[key] = replace(stored, rendering=replace(rendering, parts_done=done))
        return len(done)

    def get(self, ctx: TenantContext, export_id: str) -> Export | None:
        return self._items.get((ctx.tenant_id, validate_id(export_id, "export")))

    def list(self, ctx: TenantContext, cursor: str | None, limit: int) -> Page[Export]:
        ids = sorted((i for (t, i) in self._items if t == ctx.tenant_id), reverse=True)
        if cursor is not None:
            ids = [i for i in ids if i < cursor]
        page = [self._items[(ctx.tenant_id, i)] for i in ids[:limit]]
        return Page(page, page[-1].id if len(ids) > limit else None)

    def overlapping(self, ctx: TenantContext, first: date, last: date) -> Sequence[Export]:
        return sorted(
            (
                e
                for (t, _), e in self._items.items()
                if t == ctx.tenant_id and e.period_start <= last and e.period_end >= first
            ),
            key=lambda e: e.id,
        )


class MemoryExportFiles:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put(self, ctx: TenantContext, key: str, content: bytes, content_type: str) -> None:
        self.objects[checked_export_key(ctx, key)] = (content, content_type)

    def get(self, ctx: TenantContext, key: str) -> bytes:
        return self.objects[checked_export_key(ctx, key)][0]

    def download_url(self, ctx: TenantContext, key: str, filename: str, expires_s: int) -> str:
        return f"memory://exports/{quote(checked_export_key(ctx, key))}?expires={expires_s}"


@dataclass
class MemoryExportEvents:
    details: list[dict[str, Any]] = field(default_factory=list)

    def written(self, ctx: TenantContext, detail: dict[str, Any]) -> None:
        if detail.get("tenant") != ctx.tenant_id:
            raise ValueError("an event carries its own tenant")
        self.details.append(detail)


@dataclass
class MemoryExportRequests:
    details: list[dict[str, Any]] = field(default_factory=list)

    def requested(self, ctx: TenantContext, detail: dict[str, Any]) -> None:
        if detail.get("tenant") != ctx.tenant_id:
            raise ValueError("an event carries its own tenant")
        self.details.append(detail)

    def parts_requested(self, ctx: TenantContext, details: Sequence[dict[str, Any]]) -> None:
        if any(d.get("tenant") != ctx.tenant_id for d in details):
            raise ValueError("an event carries its own tenant")
        self.details += details


def change_key(change: FinalDayChange) -> tuple[str, str, str, int]:
    """What identifies a pending change: the meter-day at one final version."""
    return (change.meter_id, change.channel.value, change.local_day.isoformat(), change.version)


class MemoryPendingRestatements:
    def __init__(self) -> None:
        self._changes: dict[tuple[str, str], dict[tuple[str, str, str, int], FinalDayChange]] = {}

    def record(self, ctx: TenantContext, export_id: str, changes: Sequence[FinalDayChange]) -> None:
        kept = self._changes.setdefault((ctx.tenant_id, validate_id(export_id, "export")), {})
        for change in changes:
            kept.setdefault(change_key(change), change)

    def pending(self, ctx: TenantContext) -> dict[str, tuple[FinalDayChange, ...]]:
        return {
            export_id: tuple(changes[k] for k in sorted(changes))
            for (tenant, export_id), changes in sorted(self._changes.items())
            if tenant == ctx.tenant_id and changes
        }

    def clear(self, ctx: TenantContext, export_id: str, changes: Sequence[FinalDayChange]) -> None:
        kept = self._changes.get((ctx.tenant_id, validate_id(export_id, "export")), {})
        for change in changes:
            kept.pop(change_key(change), None)


class MemoryExportSchedules:
    def __init__(self) -> None:
        self._schedules: dict[str, tuple[ExportSchedule, ...]] = {}

    def put_schedules(self, ctx: TenantContext, schedules: Sequence[ExportSchedule]) -> None:
        self._schedules[ctx.tenant_id] = tuple(schedules)

    def schedules(self, ctx: TenantContext) -> tuple[ExportSchedule, ...]:
        return self._schedules.get(ctx.tenant_id, ())
