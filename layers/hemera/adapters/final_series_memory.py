"""In-memory final series (tests and the fakes of other capabilities); same contract as the
DynamoDB adapter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from hemera.domain.errors import VersionConflict
from hemera.domain.final_series import FinalDay
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext

_Key = tuple[str, str, Channel, date]  # tenant, meter, channel, local day


class MemoryFinalSeries:
    def __init__(self) -> None:
        self._versions: dict[_Key, list[FinalDay]] = {}

    def save(self, ctx: TenantContext, days: Sequence[FinalDay]) -> None:
        for day in days:
            versions = self._versions.setdefault(
                (ctx.tenant_id, day.meter_id, day.channel, day.local_day), []
            )
            expected = len(versions) + 1
            if day.version != expected:
                raise VersionConflict(
                    f"final day {day.meter_id}/{day.channel.value}/{day.local_day} is at version "
                    f"{expected - 1}; cannot store version {day.version}"
                )
        for day in days:
            self._versions[(ctx.tenant_id, day.meter_id, day.channel, day.local_day)].append(day)

    def final_days(
        self, ctx: TenantContext, meter_id: str, channel: Channel, first: date, last: date
    ) -> list[FinalDay]:
        found = [
            versions[-1]
            for (tenant, meter, chan, day), versions in self._versions.items()
            if tenant == ctx.tenant_id and meter == meter_id and chan == channel and first <= day <= last
        ]
        return sorted(found, key=lambda d: d.local_day)

    def final_day_version(
        self, ctx: TenantContext, meter_id: str, channel: Channel, local_day: date, version: int
    ) -> FinalDay | None:
        versions = self._versions.get((ctx.tenant_id, meter_id, channel, local_day), [])
        return versions[version - 1] if 1 <= version <= len(versions) else None
