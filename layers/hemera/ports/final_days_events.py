"""Port of the `FinalDaysChanged` announcements (VEE puts them on the platform bus; alarms and
billing listen)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hemera.domain.final_series import FinalDayChange
from hemera.domain.tenancy import TenantContext


class FinalDaysAnnouncer(Protocol):
    def announce(self, ctx: TenantContext, changes: Sequence[FinalDayChange]) -> None:
        """Tell listeners that these final days were stored at new versions (at most 200 days an
        event; a failure raises, so the caller stores nothing and is retried)."""
        ...
