"""Port of the final (VEE'd) series: the VEE function writes it; billing, exports, alarms and the
portal read it. Days are tenant-local (`FinalDay.local_day`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from hemera.domain.final_series import FinalDay
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext


class FinalSeriesReader(Protocol):
    def final_days(
        self, ctx: TenantContext, meter_id: str, channel: Channel, first: date, last: date
    ) -> list[FinalDay]:
        """The current version of each final day of one meter and channel with `first` ≤ local
        day ≤ `last`, in day order; days VEE has not computed are left out."""
        ...

    def final_day_version(
        self, ctx: TenantContext, meter_id: str, channel: Channel, local_day: date, version: int
    ) -> FinalDay | None:
        """One earlier (or the current) version of a final day; None if it never existed."""
        ...


class FinalSeriesStore(FinalSeriesReader, Protocol):
    def save(self, ctx: TenantContext, days: Sequence[FinalDay]) -> None:
        """Store new versions of final days; each `version` must be one more than the stored
        current version (or 1): a concurrent writer makes this raise `VersionConflict`."""
        ...
