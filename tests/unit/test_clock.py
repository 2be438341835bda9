"""SimClock: fast until it catches up with the wall clock, then real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hemera_agent.clock import SimClock, SystemClock

WALL0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Wall:
    def __init__(self, now: datetime = WALL0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_fast_clock_runs_speed_times_faster_than_the_wall() -> None:
    # Given a clock started a day ago at 96x
    wall = Wall()
    clock = SimClock(start=WALL0 - timedelta(days=1), speed=96, wall=wall)

    # When 10 wall minutes pass
    wall.now += timedelta(minutes=10)

    # Then 960 simulated minutes have passed
    assert clock.now() == WALL0 - timedelta(days=1) + timedelta(minutes=960)


def test_a_fast_clock_stops_at_real_time_and_then_follows_it() -> None:
    wall = Wall()
    clock = SimClock(start=WALL0 - timedelta(hours=1), speed=3600, wall=wall)

    # When two wall seconds pass (two simulated hours: one more than the backlog)
    wall.now += timedelta(seconds=2)

    # Then the clock shows real time, never the future
    assert clock.now() == wall.now
    wall.now += timedelta(minutes=5)
    assert clock.now() == wall.now


def test_speed_one_started_now_is_a_real_clock() -> None:
    wall = Wall()
    clock = SimClock(start=WALL0, speed=1, wall=wall)
    for step in (0, 1, 61, 3600):
        wall.now = WALL0 + timedelta(seconds=step)
        assert clock.now() == wall.now


def test_a_clock_started_in_the_future_shows_real_time() -> None:
    wall = Wall()
    clock = SimClock(start=WALL0 + timedelta(days=1), speed=10, wall=wall)
    assert clock.now() == WALL0


def test_the_clock_answers_in_utc_whatever_zone_it_was_started_in() -> None:
    wall = Wall()
    brasilia = WALL0.astimezone(datetime.now().astimezone().tzinfo)
    clock = SimClock(start=brasilia - timedelta(hours=2), speed=1, wall=wall)
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.now() == WALL0 - timedelta(hours=2)


@pytest.mark.parametrize("speed", [0, -1])
def test_speed_must_be_positive(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        SimClock(start=WALL0, speed=speed, wall=Wall())


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        SimClock(start=datetime(2026, 1, 1), speed=1, wall=Wall())


def test_the_system_clock_is_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)
