"""The local scheduler: fires the schedules of `hemera.definitions.SCHEDULES` (EventBridge rules
in AWS) at their rate, divided by the clock speed, with the event EventBridge gives the target.

The CDK app gives each schedule's target the schedule's payload as its input (`RuleTargetInput`),
and EventBridge then hands the function that payload instead of the scheduled event; a schedule
without a payload delivers the scheduled event itself. The local scheduler does the same, so a
handler sees one shape in both clouds. A job that raises is logged and the others go on firing.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from hemera.definitions import ScheduleDef

log = logging.getLogger(__name__)

Invoke = Callable[[ScheduleDef, dict[str, Any]], None]


def scheduled_event(schedule: ScheduleDef, when: datetime, region: str = "us-east-1") -> dict[str, Any]:
    """What the schedule's function receives: its payload when it has one (the rule target's
    input), else EventBridge's scheduled event."""
    if schedule.payload:
        return dict(schedule.payload)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:000000000000:rule/{schedule.name}"],
        "detail": dict(schedule.payload),
    }


class LocalScheduler:
    def __init__(
        self,
        schedules: Sequence[ScheduleDef],
        invoke: Invoke,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._schedules = schedules
        self._invoke = invoke
        self._speed = speed
        self._clock = clock
        self._next: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired: dict[str, int] = {s.name: 0 for s in schedules}
        self.failed: dict[str, int] = {s.name: 0 for s in schedules}

    def period_s(self, schedule: ScheduleDef) -> float:
        return schedule.rate_minutes * 60 / self._speed

    def tick(self) -> list[str]:
        """Fire every schedule that is due; returns their names. The first run is one period in."""
        now = self._clock()
        fired = []
        for schedule in self._schedules:
            due = self._next.setdefault(schedule.name, now + self.period_s(schedule))
            if now >= due:
                self._next[schedule.name] = due + self.period_s(schedule)
                self.fired[schedule.name] += 1
                fired.append(schedule.name)
                try:
                    self._invoke(schedule, scheduled_event(schedule, datetime.now(UTC)))
                except Exception:  # one failing job must not stop the clock of the others
                    log.exception("schedule %s failed", schedule.name)
                    self.failed[schedule.name] += 1
        return fired

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="scheduler")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.tick()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
