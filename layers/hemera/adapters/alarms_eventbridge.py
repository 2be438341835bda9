"""Alarm transitions as `AlarmChanged` events (source `hemera.alarms`) on the platform bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hemera.definitions import ALARM_CHANGED, ALARMS_SOURCE
from hemera.domain.alarm_transition import AlarmTransition

_PUT_EVENTS_LIMIT = 10  # entries per PutEvents call


class EventBridgeAlarmAnnouncer:
    def __init__(self, events: Any, bus_name: str) -> None:
        self._events, self._bus = events, bus_name

    def announce(self, transitions: Sequence[AlarmTransition]) -> None:
        entries = [
            {
                "EventBusName": self._bus,
                "Source": ALARMS_SOURCE,
                "DetailType": ALARM_CHANGED,
                "Detail": json.dumps(t.detail(), sort_keys=True, default=str),
            }
            for t in transitions
        ]
        for start in range(0, len(entries), _PUT_EVENTS_LIMIT):
            response = self._events.put_events(Entries=entries[start : start + _PUT_EVENTS_LIMIT])
            if response.get("FailedEntryCount"):
                # Transient: the evaluation fails and its message is retried (same transition ids).
                raise RuntimeError(f"EventBridge refused {response['FailedEntryCount']} alarm event(s)")
