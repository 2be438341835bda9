"""Port of the re-read sweep's memory: what it asked for each gap, and where its meter scan is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from hemera.domain.rereads import RereadAttempt
from hemera.domain.tenancy import TenantContext


class RereadLog(Protocol):
    def attempts(self, ctx: TenantContext) -> dict[tuple[str, datetime], RereadAttempt]:
        """Every gap the tenant's sweep has acted on and not forgotten, by (meter, gap start)."""
        ...

    def save(self, ctx: TenantContext, attempts: Sequence[RereadAttempt]) -> None: ...

    def forget(self, ctx: TenantContext, attempts: Sequence[RereadAttempt]) -> None: ...

    def scan_cursor(self, ctx: TenantContext) -> str | None:
        """The last meter id the previous run looked at (None: start from the first)."""
        ...

    def set_scan_cursor(self, ctx: TenantContext, meter_id: str | None) -> None: ...
