"""Full-jitter capped exponential backoff: bounds, cap, reset, and that a fleet spreads out."""

from __future__ import annotations

import asyncio
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hemera_agent.backoff import Backoff


@given(
    base=st.floats(0.01, 10),
    growth=st.floats(1, 1000),
    factor=st.floats(1, 4),
    seed=st.integers(0, 2**32),
    attempts=st.integers(1, 200),
)
def test_every_delay_is_between_zero_and_the_capped_exponential(
    base: float, growth: float, factor: float, seed: int, attempts: int
) -> None:
    backoff = Backoff(base, base * growth, factor, rng=random.Random(seed))
    for n in range(attempts):
        ceiling = min(base * growth, base * factor**n)
        delay = backoff.next_delay()
        assert 0 <= delay <= ceiling * (1 + 1e-9)


def test_the_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(1, 30, 2, rng=random.Random(1))
    ceilings = []
    for _ in range(8):
        ceilings.append(backoff.ceiling())
        backoff.next_delay()
    assert ceilings == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_long_outage_does_not_overflow() -> None:
    backoff = Backoff(1, 120, 2, rng=random.Random(1), attempt=10_000)
    assert 0 <= backoff.next_delay() <= 120


def test_a_success_resets_to_the_base() -> None:
    backoff = Backoff(1, 120, 2, rng=random.Random(1))
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.ceiling() == 1
    assert backoff.next_delay() <= 1


def test_a_fleet_reconnecting_after_an_outage_is_spread_over_the_window() -> None:
    # Given 1,000 RTUs that lost the broker at the same moment, each with its own random source
    fleet = [Backoff(1, 120, 2, rng=random.Random(rtu)) for rtu in range(1000)]
    for rtu in fleet:  # five failed attempts each: the window is now 32 s wide
        for _ in range(5):
            rtu.next_delay()

    delays = [rtu.next_delay() for rtu in fleet]

    # Then no second of the window gets more than a few percent of the fleet
    per_second = [sum(1 for d in delays if s <= d < s + 1) for s in range(32)]
    assert max(per_second) < 0.06 * len(fleet)
    assert 14 < statistics.mean(delays) < 18  # uniform on [0, 32]


def test_a_nonsensical_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(10, 1)


class _FakeCrtClient:
    """Stands in for the awscrt MQTT5 client: records start/stop and reports 'stopped' at once."""

    def __init__(self, publisher: object) -> None:
        self.calls: list[str] = []
        self.publisher = publisher

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")
        self.publisher._stopped.set()  # type: ignore[attr-defined]


def test_the_publisher_reconnects_after_full_jitter_delays_that_grow_and_reset() -> None:
    from hemera_agent.config import BrokerConfig
    from hemera_agent.publisher import Mqtt5Publisher

    # Given a publisher whose backoff draws from a seeded RNG and whose sleeps are recorded
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    broker = BrokerConfig(host="localhost", cert="c.crt", key="k.key")  # type: ignore[arg-type]
    publisher = Mqtt5Publisher(
        broker, "sul-energia:rtu-poa-01", backoff=Backoff(1, 8, 2, rng=random.Random(7)), sleep=fake_sleep
    )
    expected = Backoff(1, 8, 2, rng=random.Random(7))

    async def scenario() -> list[str]:
        publisher._loop = asyncio.get_running_loop()
        client = _FakeCrtClient(publisher)
        publisher._client = client
        # When five connection attempts fail in a row
        for _ in range(5):
            publisher._connection_down()
            assert publisher._reconnect is not None
            await publisher._reconnect
        # And then a connection succeeds and stays up (the stability timer fires)
        publisher._connection_up()
        publisher._connection_stable()
        publisher._closing = True
        return client.calls

    calls = asyncio.run(scenario())

    # Then each attempt stopped the client, slept the full-jitter draw, and started it again
    assert calls == ["stop", "start"] * 5
    assert slept == [expected.next_delay() for _ in range(5)]
    assert all(0 <= d <= c for d, c in zip(slept, [1, 2, 4, 8, 8], strict=True))
    # And after a stable connection the next failure starts again from the base
    assert publisher.backoff.ceiling() == 1
