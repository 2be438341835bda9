"""EventBridge adapter: final (VEE'd) days stored at new versions, as `FinalDaysChanged` events
(source `hemera.vee`) on the platform bus, tenant in every detail."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hemera.definitions import SERIES_VALIDATED, VEE_SOURCE
from hemera.domain.final_series import FinalDayChange
from hemera.domain.tenancy import TenantContext

# PutEvents takes at most 10 entries a call. One entry lists up to DAYS_PER_EVENT days (~200
# bytes each, ~40 KB): within one 64 KB billing chunk and far below the 256 KB entry limit.
_PUT_EVENTS_LIMIT = 10
DAYS_PER_EVENT = 200


def final_days_detail(ctx: TenantContext, changes: Sequence[FinalDayChange]) -> dict[str, Any]:
    return {"tenant": ctx.tenant_id, "days": [c.detail() for c in changes]}


class EventBridgeFinalDays:
    def __init__(self, events: Any, bus_name: str) -> None:
        self._events, self._bus = events, bus_name

    def announce(self, ctx: TenantContext, changes: Sequence[FinalDayChange]) -> None:
        entries = [
            {
                "EventBusName": self._bus,
                "Source": VEE_SOURCE,
                "DetailType": SERIES_VALIDATED,
                "Detail": json.dumps(final_days_detail(ctx, changes[start : start + DAYS_PER_EVENT])),
            }
            for start in range(0, len(changes), DAYS_PER_EVENT)
        ]
        for start in range(0, len(entries), _PUT_EVENTS_LIMIT):
            response = self._events.put_events(Entries=entries[start : start + _PUT_EVENTS_LIMIT])
            if response.get("FailedEntryCount"):
                # Transient (throttling, an outage): the caller fails, the trigger is retried.
                raise RuntimeError(f"EventBridge refused {response['FailedEntryCount']} final-day event(s)")


class MemoryFinalDaysAnnouncer:
    """The announcements as a list (tests): one entry per event, as `final_days_detail` writes it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def announce(self, ctx: TenantContext, changes: Sequence[FinalDayChange]) -> None:
        for start in range(0, len(changes), DAYS_PER_EVENT):
            self.events.append(final_days_detail(ctx, changes[start : start + DAYS_PER_EVENT]))
