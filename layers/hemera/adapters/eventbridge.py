"""EventBridge adapter: meter-day data-version changes as platform events, tenant in every detail."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hemera.definitions import SERIES_CHANGED
from hemera.domain.tenancy import TenantContext
from hemera.ports import SeriesChange

# PutEvents takes at most 10 entries a call; an entry is billed per 64 KB. One entry lists up to
# CHANGES_PER_EVENT meter-days (~80 bytes each), so a translate batch is announced in one call.
_PUT_EVENTS_LIMIT = 10
CHANGES_PER_EVENT = 200


def change_detail(ctx: TenantContext, changes: Sequence[SeriesChange]) -> dict[str, Any]:
    """The detail of one MeterDaysChanged event: the tenant, and each meter-day's new version."""
    return {
        "tenant": ctx.tenant_id,
        "correlation_id": ctx.correlation_id,
        "changes": [
            {"meter": c.meter_id, "channel": c.channel.value, "day": c.day.isoformat(), "version": c.version}
            for c in changes
        ],
    }


class EventBridgePublisher:
    """Puts platform events on the bus: any detail-type, one entry per detail, ten per call.

    Every capability announces through this one adapter (MeterDaysChanged, FinalDaysChanged,
    MeterEventsRecorded, AlarmChanged, …); each detail must name its tenant."""

    def __init__(self, events: Any, bus_name: str, source: str) -> None:
        self._events, self._bus, self._source = events, bus_name, source

    def put(self, detail_type: str, details: Sequence[dict[str, Any]]) -> None:
        if any("tenant" not in d for d in details):
            raise ValueError("every platform event names its tenant")
        entries = [
            {
                "EventBusName": self._bus,
                "Source": self._source,
                "DetailType": detail_type,
                "Detail": json.dumps(d),
            }
            for d in details
        ]
        for start in range(0, len(entries), _PUT_EVENTS_LIMIT):
            response = self._events.put_events(Entries=entries[start : start + _PUT_EVENTS_LIMIT])
            if response.get("FailedEntryCount"):
                # Transient (throttling, an outage): the caller fails, the message is retried.
                raise RuntimeError(
                    f"EventBridge refused {response['FailedEntryCount']} {detail_type} event(s)"
                )


class EventBridgeChangeEvents:
    def __init__(self, events: Any, bus_name: str, source: str) -> None:
        self._publisher = EventBridgePublisher(events, bus_name, source)

    def announce(self, ctx: TenantContext, changes: Sequence[SeriesChange]) -> None:
        self._publisher.put(
            SERIES_CHANGED,
            [
                change_detail(ctx, changes[start : start + CHANGES_PER_EVENT])
                for start in range(0, len(changes), CHANGES_PER_EVENT)
            ],
        )
