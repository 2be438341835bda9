"""In-memory re-read log (tests), with the DynamoDB adapter's semantics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hemera.domain.rereads import RereadAttempt
from hemera.domain.tenancy import TenantContext


class MemoryRereadLog:
    def __init__(self) -> None:
        self._attempts: dict[str, dict[tuple[str, datetime], RereadAttempt]] = {}
        self._cursors: dict[str, str | None] = {}

    def attempts(self, ctx: TenantContext) -> dict[tuple[str, datetime], RereadAttempt]:
        return dict(self._attempts.get(ctx.tenant_id, {}))

    def save(self, ctx: TenantContext, attempts: Sequence[RereadAttempt]) -> None:
        stored = self._attempts.setdefault(ctx.tenant_id, {})
        for attempt in attempts:
            stored[attempt.key] = attempt

    def forget(self, ctx: TenantContext, attempts: Sequence[RereadAttempt]) -> None:
        stored = self._attempts.get(ctx.tenant_id, {})
        for attempt in attempts:
            stored.pop(attempt.key, None)

    def scan_cursor(self, ctx: TenantContext) -> str | None:
        return self._cursors.get(ctx.tenant_id)

    def set_scan_cursor(self, ctx: TenantContext, meter_id: str | None) -> None:
        self._cursors[ctx.tenant_id] = meter_id
