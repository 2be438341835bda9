"""The agent reads the event logs of Modbus meters (hx300, mx40) from the simulator over TCP with
the cursor protocol of their maps, on the events schedule, entries since the last read, and ships
them as `events` envelopes; the cloud's own decoder turns them into the canonical events the
scenario's faults caused. An in-memory broker; the meters' time is the agent's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hemera.domain.envelope import FrameKind, parse_envelope
from hemera.domain.events_decode import decode_meter_events
from hemera.domain.meter_events import EventType, MeterEvent
from hemera_agent.agent import Agent
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import InMemoryPublisher
from hemera_agent.reader import MAX_EVENT_WINDOWS
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, SimulatedMeter
from hemera_agent.simulators.profile import meter_seed
from hemera_agent.simulators.scenario import (
    ClockReset,
    Fault,
    Outage,
    PhaseLoss,
    ReverseEnergy,
    Tamper,
)

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
TENANT, DEVICE = "sul-energia", "rtu-poa-01"
HX, MX = "sul-m-1001", "sul-m-1002"
HX_FAULTS: tuple[Fault, ...] = (
    Outage(start=DAY + timedelta(hours=10, minutes=5), end=DAY + timedelta(hours=10, minutes=50)),
    Tamper(
        type="cover_open", at=DAY + timedelta(hours=11, minutes=10), end=DAY + timedelta(hours=11, minutes=20)
    ),
    PhaseLoss(phase=2, start=DAY + timedelta(hours=13), end=DAY + timedelta(hours=14)),
    ClockReset(at=DAY + timedelta(hours=15), synced_at=DAY + timedelta(hours=16)),
)
MX_FAULTS: tuple[Fault, ...] = (
    ReverseEnergy(start=DAY + timedelta(hours=12), end=DAY + timedelta(hours=12, minutes=30)),
    Tamper(type="magnetic", at=DAY + timedelta(hours=18)),
)


class Frozen:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def meter(meter_id: str, unit_id: int, model: str, faults: tuple[Fault, ...]) -> SimulatedMeter:
    return SimulatedMeter(
        meter_id=meter_id,
        unit_id=unit_id,
        load_class="industry",
        peak_kw=400.0,
        timezone="America/Sao_Paulo",
        seed=meter_seed(TENANT, meter_id),
        model=model,
        country="BR",
        faults=faults,
    )


@pytest.fixture
def clock() -> Frozen:
    return Frozen(DAY + timedelta(days=1, seconds=30))


@pytest.fixture
def simulator(clock: Frozen) -> Iterator[ModbusMeterSimulator]:
    """An hx300 (unit 1) and an mx40 (unit 2) with a day of faults; the meters' clock is the test's."""
    meters = [meter(HX, 1, "hx300", HX_FAULTS), meter(MX, 2, "mx40", MX_FAULTS)]
    with ModbusMeterSimulator(
        meters, clock=SimClock(clock.at, speed=1, wall=clock.now), history_start=DAY
    ) as sim:
        yield sim


def make_agent(sim: ModbusMeterSimulator, state: Path, publisher: InMemoryPublisher, clock: Frozen) -> Agent:
    config = AgentConfig.model_validate(
        {
            "tenant": TENANT,
            "device": DEVICE,
            "broker": {"host": "localhost", "cert": "c", "key": "k"},
            "state_dir": state,
            "backfill_hours": 48,
            "meters": [
                {"id": HX, "model": "hx300", "unit_id": 1, "port": sim.port},
                {"id": MX, "model": "mx40", "unit_id": 2, "port": sim.port},
            ],
        }
    )
    return Agent(config, publisher, clock=clock)


def published_events(publisher: InMemoryPublisher, meter_id: str) -> list[list[MeterEvent]]:
    """The decoded events of each published events envelope of a meter, in publishing order."""
    found = []
    for topic, payload in publisher.messages:
        if topic.endswith("/up/telemetry"):
            envelope = parse_envelope(payload)
            if envelope.meter == meter_id and all(f.kind is FrameKind.EVENTS for f in envelope.frames):
                found.append(decode_meter_events(envelope))
    return found


def poll(agent: Agent) -> None:
    asyncio.run(agent.poll_once())


def test_the_faults_of_a_day_arrive_as_the_canonical_events_of_each_meter(simulator, clock, tmp_path):
    # Given an hx300 and an mx40 with a day of faults
    publisher = InMemoryPublisher()
    agent = make_agent(simulator, tmp_path / "state", publisher, clock)
    # When the agent polls once
    try:
        poll(agent)
    finally:
        agent.close()
    # Then the hx300's one events envelope holds its outage (with the duration), the cover, the
    # phase loss (with the phase) and the clock reset and sync, at the meter's time stamps
    [hx] = published_events(publisher, HX)
    assert [(e.type, e.at - DAY, e.detail) for e in hx] == [
        (EventType.POWER_DOWN, timedelta(hours=10, minutes=5), {}),
        (EventType.POWER_UP, timedelta(hours=10, minutes=50), {"duration_s": 45 * 60}),
        (EventType.COVER_OPEN, timedelta(hours=11, minutes=10), {"cover": "terminal"}),
        (EventType.COVER_CLOSED, timedelta(hours=11, minutes=20), {"cover": "terminal"}),
        (EventType.PHASE_LOSS, timedelta(hours=13), {"phase": 2}),
        (EventType.PHASE_RESTORED, timedelta(hours=14), {"phase": 2}),
        (EventType.CLOCK_RESET, timedelta(hours=15), {"clock_after": "2000-01-01T00:00:00+00:00"}),
        (EventType.CLOCK_ADJUSTED, timedelta(hours=16), {"clock_before": "2000-01-01T01:00:00+00:00"}),
    ]
    assert {e.device_id for e in hx} == {DEVICE} and {e.subject_id for e in hx} == {HX}
    # and the mx40's (its own codes, CDAB) its reverse energy and magnetic tamper
    [mx] = published_events(publisher, MX)
    assert [(e.type, e.at - DAY, e.code) for e in mx] == [
        (EventType.REVERSE_ENERGY, timedelta(hours=12), 0x0303),
        (EventType.REVERSE_ENERGY_CLEARED, timedelta(hours=12, minutes=30), 0x0304),
        (EventType.MAGNETIC_TAMPER, timedelta(hours=18), 0x0203),
    ]
    # each log fitted one window: one cursor write each
    assert simulator.stats(1).event_window_fills == 1 and simulator.stats(2).event_window_fills == 1


def test_the_next_reads_carry_only_the_entries_since_and_survive_a_restart(simulator, clock, tmp_path):
    # Given an agent that read the logs and stopped
    first = InMemoryPublisher()
    agent = make_agent(simulator, tmp_path / "state", first, clock)
    try:
        poll(agent)
    finally:
        agent.close()
    # When a new agent on the same state opens the hx300's relay, polls within the events
    # period, and again a quarter of an hour later
    later = InMemoryPublisher()
    agent = make_agent(simulator, tmp_path / "state", later, clock)
    try:
        clock.at += timedelta(minutes=1)
        opened_at = clock.at
        ack = asyncio.run(
            agent.handle_command(json.dumps({"id": "c-1", "type": "disconnect", "meter": HX}).encode())
        )
        clock.at += timedelta(minutes=1)
        poll(agent)
        within_period = [list(e) for e in published_events(later, HX)]
        clock.at += timedelta(minutes=15)
        poll(agent)
    finally:
        agent.close()
    assert ack is not None and ack.status == "ok"
    # Then the poll within the period read no log; the next carries the relay opening only
    assert within_period == []
    [[relay]] = published_events(later, HX)
    assert (relay.type, relay.at, relay.code) == (EventType.RELAY_OPEN, opened_at, 30)
    # and the mx40, whose log did not change, sent no events envelope again
    assert published_events(later, MX) == []


def test_a_log_longer_than_a_window_is_read_window_by_window_every_entry_once(clock, tmp_path):
    # Given an hx300 whose cover was opened and closed 30 times (60 entries, 24 a window)
    tampers = tuple(
        Tamper(
            type="cover_open",
            at=DAY + timedelta(hours=1, minutes=m),
            end=DAY + timedelta(hours=1, minutes=m + 1),
        )
        for m in range(0, 60, 2)
    )
    busy = meter(HX, 1, "hx300", tampers)
    with ModbusMeterSimulator(
        [busy], clock=SimClock(clock.at, speed=1, wall=clock.now), history_start=DAY
    ) as sim:
        publisher = InMemoryPublisher()
        config = AgentConfig.model_validate(
            {
                "tenant": TENANT,
                "device": DEVICE,
                "broker": {"host": "localhost", "cert": "c", "key": "k"},
                "state_dir": tmp_path / "state",
                "meters": [{"id": HX, "model": "hx300", "unit_id": 1, "port": sim.port}],
            }
        )
        agent = Agent(config, publisher, clock=clock)
        try:
            poll(agent)
        finally:
            agent.close()
        fills = sim.stats(1).event_window_fills
    # When the events envelope is decoded
    [events] = published_events(publisher, HX)
    # Then every opening and closing arrived once, in order, from three windows
    assert [e.at - DAY for e in events] == [timedelta(hours=1, minutes=m) for m in range(60)]
    assert [e.type for e in events[:2]] == [EventType.COVER_OPEN, EventType.COVER_CLOSED]
    assert 3 <= fills < MAX_EVENT_WINDOWS


def test_an_event_window_with_an_entry_before_the_cursor_is_a_garbage_answer(simulator, clock, tmp_path):
    # Given a meter that answers its event window with an entry older than the cursor asked for
    memory = simulator.memory(1)
    real = memory.event_window

    def stale(cursor_epoch: int, now: datetime) -> list[int]:
        window = real(cursor_epoch, now)
        return [0, 1, *window[2:]]  # the first entry stamped 1970-01-01T00:00:01 (hx300: ABCD)

    memory.event_window = stale  # type: ignore[method-assign]
    publisher = InMemoryPublisher()
    agent = make_agent(simulator, tmp_path / "state", publisher, clock)
    # When the agent polls
    try:
        report = asyncio.run(agent.poll_once())
    finally:
        agent.close()
    # Then the hx300 counts as failed with a garbage RTU event, no events envelope of it is sent,
    # and the mx40 is read as usual
    assert report.failed_meters == [HX]
    garbage = [json.loads(p) for t, p in publisher.messages if t.endswith("/up/events")]
    assert [(g["type"], g["meter"]) for g in garbage] == [("meter_garbage", HX)]
    assert published_events(publisher, HX) == []
    assert len(published_events(publisher, MX)) == 1


def test_a_read_stops_at_the_window_limit_and_the_next_continues_where_it_stopped(clock, tmp_path):
    # Given an hx300 that logged 400 cover entries (more than one read's 16 windows hold)
    tampers = tuple(
        Tamper(type="cover_open", at=DAY + timedelta(minutes=2 * m), end=DAY + timedelta(minutes=2 * m + 1))
        for m in range(200)
    )
    busy = meter(HX, 1, "hx300", tampers)
    with ModbusMeterSimulator(
        [busy], clock=SimClock(clock.at, speed=1, wall=clock.now), history_start=DAY
    ) as sim:
        publisher = InMemoryPublisher()
        config = AgentConfig.model_validate(
            {
                "tenant": TENANT,
                "device": DEVICE,
                "broker": {"host": "localhost", "cert": "c", "key": "k"},
                "state_dir": tmp_path / "state",
                "backfill_hours": 48,
                "meters": [{"id": HX, "model": "hx300", "unit_id": 1, "port": sim.port}],
            }
        )
        agent = Agent(config, publisher, clock=clock)
        # When the agent polls, and again when the events are due again
        try:
            poll(agent)
            clock.at += timedelta(minutes=15)
            poll(agent)
        finally:
            agent.close()
    first, second = published_events(publisher, HX)
    # Then the first read took 16 windows and stopped; the second went on from its newest entry
    # (read again: its second might have held more), and together they hold every entry once
    assert len(first) == 24 + 15 * 23
    assert second[0].at == first[-1].at
    everything = {e.event_id: e for e in first + second}
    assert sorted(e.at - DAY for e in everything.values()) == [timedelta(minutes=m) for m in range(400)]
