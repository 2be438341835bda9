"""EventBridge adapter: meter-day data-version changes as platform events, tenant in every detail."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hemera.definitions import SERIES_CHANGED
from hemera.domain.tenancy import TenantContext
from hemera.ports import SeriesChange

# PutEvents takes at most 10 entries a call.
_PUT_EVENTS_LIMIT = 10


class EventBridgeChangeEvents:
    def __init__(self, events: Any, bus_name: str, source: str) -> None:
        self._events, self._bus, self._source = events, bus_name, source

    def announce(self, ctx: TenantContext, changes: Sequence[SeriesChange]) -> None:
        entries = [
            {
                "EventBusName": self._bus,
                "Source": self._source,
                "DetailType": SERIES_CHANGED,
                "Detail": json.dumps(
                    {
                        "tenant": ctx.tenant_id,
                        "meter": c.meter_id,
                        "channel": c.channel.value,
                        "day": c.day.isoformat(),
                        "version": c.version,
                        "correlation_id": ctx.correlation_id,
                    }
                ),
            }
            for c in changes
        ]
        for start in range(0, len(entries), _PUT_EVENTS_LIMIT):
            response = self._events.put_events(Entries=entries[start : start + _PUT_EVENTS_LIMIT])
            if response.get("FailedEntryCount"):
                # Transient (throttling, an outage): the caller fails, the message is retried.
                raise RuntimeError(f"EventBridge refused {response['FailedEntryCount']} change event(s)")
