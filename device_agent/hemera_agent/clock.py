"""Clocks for the device side: the real UTC clock and a simulated one that runs fast.

A demo or a test needs a day of 15-minute data in seconds, yet a meter must never claim an
interval that has not ended in real time (the cloud would rightly flag data from the future).
`SimClock` therefore runs `speed` times faster than the wall clock from `start` until it has
caught up with real time, and from then on at real time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


def utc_now() -> datetime:
    return datetime.now(UTC)


class Clock(Protocol):
    """Anything that tells the current UTC time (tz-aware)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return utc_now()


class SimClock:
    """Simulated UTC time = min(start + elapsed_wall * speed, wall_now).

    `wall` is the wall-time source (injected so tests control it); elapsed time is counted from
    the moment the clock is created. With `speed=1` and `start` = now this is a real clock.
    """

    def __init__(self, start: datetime, speed: float = 1.0, wall: Callable[[], datetime] = utc_now) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock start must be tz-aware")
        if speed <= 0:
            raise ValueError(f"SimClock speed must be positive, got {speed}")
        self._start = start.astimezone(UTC)
        self._speed = speed
        self._wall = wall
        self._origin = wall()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        wall_now = self._wall().astimezone(UTC)
        simulated = self._start + (wall_now - self._origin) * self._speed
        return min(simulated, wall_now)
