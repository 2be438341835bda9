"""The agent reads the Modbus meter simulator over real TCP and publishes what the meters hold.

The simulator runs in-process on 127.0.0.1 (port 0) with a fast simulated clock; the agent uses
its real pymodbus reader and an in-memory publisher. Every published envelope is decoded with the
cloud's own `decode_load_profile_window` and compared with the load model the simulator serves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hemera.domain.envelope import parse_envelope
from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera.domain.readings import METER_FLAG_POWER_OUTAGE, Channel
from hemera.tenants import load_tenant_file
from hemera_agent.agent import Agent
from hemera_agent.buffer import BUFFER_FILE, EnvelopeBuffer
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import InMemoryPublisher, PublishFailed
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, SimulatedMeter, meters_from_tenant
from hemera_agent.simulators.profile import interval_energy
from tests.builders import LOAD_PROFILE_ONLY

REPO = Path(__file__).resolve().parents[2]
DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
QUARTER = timedelta(minutes=15)
OUTAGE = (DAY + timedelta(hours=10), DAY + timedelta(hours=11, minutes=30))  # 6 intervals
INDUSTRY, COMMERCE = "sul-m-1001", "sul-m-1002"
MODEL = load_model("hx300")
CHANNEL_FIELD = {
    Channel.ACTIVE_IMPORT: "active_import_wh",
    Channel.ACTIVE_EXPORT: "active_export_wh",
    Channel.REACTIVE_IMPORT: "reactive_import_varh",
    Channel.REACTIVE_EXPORT: "reactive_export_varh",
}


class ManualWall:
    """Wall time the test moves by hand; far ahead of the simulated day so it never clamps."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Rig:
    def __init__(
        self, simulator: ModbusMeterSimulator, clock: SimClock, wall: ManualWall, meters: list[SimulatedMeter]
    ):
        self.simulator = simulator
        self.clock = clock
        self.wall = wall
        self.meters = {m.meter_id: m for m in meters}

    def config(self, state_dir: Path, **overrides: object) -> AgentConfig:
        document = {
            "tenant": "sul-energia",
            "device": "rtu-poa-01",
            "broker": {
                "host": "localhost",
                "cert": "unused.crt",
                "key": "unused.key",
                "flow_control": "none",
            },
            "state_dir": state_dir,
            "meters": [
                {"id": m.meter_id, "model": "hx300", "unit_id": m.unit_id, "port": self.simulator.port}
                for m in self.meters.values()
            ],
            **LOAD_PROFILE_ONLY,
            **overrides,
        }
        return AgentConfig.model_validate(document)

    def agent(self, state_dir: Path, publisher: InMemoryPublisher, **overrides: object) -> Agent:
        return Agent(self.config(state_dir, **overrides), publisher, clock=self.clock)

    def expected(self, meter_id: str, first: datetime, last: datetime) -> dict[tuple[datetime, Channel], int]:
        """Profile values of every interval in [first, last] the meter was on for."""
        meter = self.meters[meter_id]
        values: dict[tuple[datetime, Channel], int] = {}
        start = first
        while start <= last:
            if not any(
                start < off_end and start + QUARTER > off_start for off_start, off_end in meter.off_windows
            ):
                energy = interval_energy(
                    meter.seed, meter.load_class, meter.peak_kw, meter.timezone, start, country=meter.country
                )
                for channel, name in CHANNEL_FIELD.items():
                    values[(start, channel)] = getattr(energy, name)
            start += QUARTER
        return values


@pytest.fixture
def rig() -> Iterator[Rig]:
    """Given the two meters of RTU rtu-poa-01 (sul-energia), the commerce one off 10:00-11:30 UTC,
    holding history from DAY 00:00 and a clock 30 s after the day ended."""
    tenant = load_tenant_file(REPO / "tenants" / "sul-energia.yaml")
    meters = meters_from_tenant(tenant, "rtu-poa-01", {COMMERCE: [OUTAGE]})
    wall = ManualWall()
    # 60x: each wall second the test advances is a simulated minute.
    clock = SimClock(start=DAY + timedelta(days=1, seconds=30), speed=60, wall=wall)
    with ModbusMeterSimulator(meters, clock=clock, history_start=DAY) as simulator:
        yield Rig(simulator, clock, wall, meters)


def decoded(publisher: InMemoryPublisher) -> dict[str, dict[tuple[datetime, Channel], int]]:
    """meter → {(interval start, channel): raw value} of everything published."""
    out: dict[str, dict[tuple[datetime, Channel], int]] = {}
    for _topic, payload in publisher.messages:
        envelope = parse_envelope(payload)
        for frame in envelope.frames:
            for reading in decode_load_profile_window(MODEL, envelope.meter, frame.registers()):
                assert reading.raw_value is not None
                out.setdefault(envelope.meter, {})[(reading.start, reading.channel)] = reading.raw_value
    return out


def outbox(state_dir: Path) -> EnvelopeBuffer:
    return EnvelopeBuffer(state_dir / BUFFER_FILE, "sul-energia", "rtu-poa-01")


def intervals(values: dict[tuple[datetime, Channel], int]) -> list[datetime]:
    return sorted({start for start, _channel in values})


def test_a_full_day_is_published_exactly_as_the_meters_recorded_it(rig: Rig, tmp_path: Path) -> None:
    # Given the agent's first run (default backfill 24 h, max 96 intervals per envelope)
    publisher = InMemoryPublisher()

    # When it polls once
    report = asyncio.run(rig.agent(tmp_path, publisher).poll_once())

    # Then the industrial meter's envelopes decode to the profile: 96 intervals x 4 channels
    got = decoded(publisher)
    last = DAY + timedelta(hours=23, minutes=45)
    assert got[INDUSTRY] == rig.expected(INDUSTRY, DAY, last)
    assert len(got[INDUSTRY]) == 96 * 4
    # And a value a user would check: 11:00-11:15 UTC (08:00 local) of a working Monday, in kWh
    energy = interval_energy(
        rig.meters[INDUSTRY].seed, "industry", 820, "America/Sao_Paulo", DAY + timedelta(hours=11)
    )
    assert got[INDUSTRY][(DAY + timedelta(hours=11), Channel.ACTIVE_IMPORT)] == energy.active_import_wh
    assert 150_000 < energy.active_import_wh <= 205_000  # 600-820 kW for a quarter hour
    assert report.intervals == 96 + 90
    assert report.envelopes == 2
    assert report.failed_meters == []


def test_envelopes_name_tenant_device_meter_and_go_to_the_device_topic(rig: Rig, tmp_path: Path) -> None:
    publisher = InMemoryPublisher()

    asyncio.run(rig.agent(tmp_path, publisher).poll_once())

    topics = {topic for topic, _payload in publisher.messages}
    assert topics == {"hemera/sul-energia/rtu-poa-01/up/telemetry"}
    envelopes = [parse_envelope(p) for _t, p in publisher.messages]
    assert {(e.tenant, e.device, e.model, e.protocol.value) for e in envelopes} == {
        ("sul-energia", "rtu-poa-01", "hx300", "modbus")
    }
    assert {e.meter for e in envelopes} == {INDUSTRY, COMMERCE}
    assert all(f.unit_id == rig.meters[e.meter].unit_id for e in envelopes for f in e.frames)


def test_a_meter_off_window_is_a_gap_not_zeros(rig: Rig, tmp_path: Path) -> None:
    publisher = InMemoryPublisher()

    asyncio.run(rig.agent(tmp_path, publisher).poll_once())

    got = decoded(publisher)[COMMERCE]
    starts = intervals(got)
    outage = [OUTAGE[0] + i * QUARTER for i in range(6)]
    # Then the six outage intervals are missing - not published as zeros - and the rest is exact
    assert len(starts) == 90
    assert not set(outage) & set(starts)
    assert got == rig.expected(COMMERCE, DAY, DAY + timedelta(hours=23, minutes=45))
    # And the interval in which power came back carries the meter's power-outage flag
    envelope = next(parse_envelope(p) for _t, p in publisher.messages if parse_envelope(p).meter == COMMERCE)
    flags = {
        r.start: r.meter_flags
        for f in envelope.frames
        for r in decode_load_profile_window(MODEL, COMMERCE, f.registers())
    }
    assert flags[OUTAGE[1]] & METER_FLAG_POWER_OUTAGE
    assert sum(1 for v in flags.values() if v) == 1


def test_sequence_numbers_increase_and_envelopes_respect_the_interval_limit(rig: Rig, tmp_path: Path) -> None:
    # Given envelopes of at most 40 intervals (a window holds 11, so windows are cut)
    publisher = InMemoryPublisher()

    report = asyncio.run(rig.agent(tmp_path, publisher, max_intervals_per_envelope=40).poll_once())

    envelopes = [parse_envelope(p) for _t, p in publisher.messages]
    sizes = [
        len({r.start for f in e.frames for r in decode_load_profile_window(MODEL, e.meter, f.registers())})
        for e in envelopes
    ]
    assert [e.seq for e in envelopes] == list(range(len(envelopes)))
    assert sizes == [40, 40, 16, 40, 40, 10]  # 96 then 90 intervals
    assert report.envelopes == 6
    # And cutting windows lost nothing
    got = decoded(publisher)
    assert got[INDUSTRY] == rig.expected(INDUSTRY, DAY, DAY + timedelta(hours=23, minutes=45))
    assert got[COMMERCE] == rig.expected(COMMERCE, DAY, DAY + timedelta(hours=23, minutes=45))


def test_a_second_poll_publishes_nothing_until_an_interval_ends(rig: Rig, tmp_path: Path) -> None:
    publisher = InMemoryPublisher()
    agent = rig.agent(tmp_path, publisher)
    asyncio.run(agent.poll_once())
    published = len(publisher.messages)

    # When it polls again at the same time
    again = asyncio.run(agent.poll_once())

    # Then nothing new is published
    assert again.intervals == 0
    assert len(publisher.messages) == published

    # When 15 simulated minutes pass (15 wall seconds at 60x)
    rig.wall.advance(15)
    later = asyncio.run(agent.poll_once())

    # Then exactly the interval that ended is published, once per meter, with the next seqs
    assert later.intervals == 2
    new = [parse_envelope(p) for _t, p in publisher.messages[published:]]
    assert [e.seq for e in new] == [2, 3]
    next_day = DAY + timedelta(days=1)
    for meter in (INDUSTRY, COMMERCE):
        assert intervals(decoded(publisher)[meter])[-1] == next_day


def test_a_restarted_agent_reads_nothing_again(rig: Rig, tmp_path: Path) -> None:
    first = InMemoryPublisher()
    asyncio.run(rig.agent(tmp_path, first).poll_once())
    fills = {unit: rig.simulator.stats(unit).window_fills for unit in (1, 2)}

    # When the agent restarts with the same state directory
    second = InMemoryPublisher()
    report = asyncio.run(rig.agent(tmp_path, second).poll_once())

    # Then it publishes nothing and does not even move the meters' cursors
    assert second.messages == []
    assert report.windows == 0
    assert {unit: rig.simulator.stats(unit).window_fills for unit in (1, 2)} == fills
    buffer = outbox(tmp_path)
    assert buffer.next_seq == 2
    assert buffer.depth() == 0
    last = DAY + timedelta(hours=23, minutes=45)
    assert buffer.cursors() == {INDUSTRY: last, COMMERCE: last}


def test_an_unacknowledged_envelope_stays_in_the_outbox_and_is_sent_again_unchanged(
    rig: Rig, tmp_path: Path
) -> None:
    # Given a broker that acknowledges the first envelope and then fails
    flaky = InMemoryPublisher(fail_after=1)
    with pytest.raises(PublishFailed):
        asyncio.run(rig.agent(tmp_path, flaky).poll_once())
    fills = {unit: rig.simulator.stats(unit).window_fills for unit in (1, 2)}

    # When the agent restarts against a healthy broker
    healthy = InMemoryPublisher()
    asyncio.run(rig.agent(tmp_path, healthy).poll_once())

    # Then only the commerce envelope (never acknowledged) is sent, from the outbox: same seq, and
    # the meters were not read again
    resent = [parse_envelope(p) for _t, p in healthy.messages]
    assert [(e.meter, e.seq) for e in resent] == [(COMMERCE, 1)]
    assert {unit: rig.simulator.stats(unit).window_fills for unit in (1, 2)} == fills
    got = decoded(flaky) | decoded(healthy)
    assert got[COMMERCE] == rig.expected(COMMERCE, DAY, DAY + timedelta(hours=23, minutes=45))
    assert outbox(tmp_path).depth() == 0


def test_the_first_run_backfills_only_the_configured_window(rig: Rig, tmp_path: Path) -> None:
    # Given a 6-hour backfill
    publisher = InMemoryPublisher()

    asyncio.run(rig.agent(tmp_path, publisher, backfill_hours=6).poll_once())

    # Then only the last 24 intervals of the day are read
    starts = intervals(decoded(publisher)[INDUSTRY])
    assert starts[0] == DAY + timedelta(hours=18)
    assert len(starts) == 24


def test_an_unreachable_rtu_is_reported_as_an_rtu_event_and_no_telemetry_is_published(tmp_path: Path) -> None:
    # Given a meter on a port where nothing listens
    config = AgentConfig.model_validate(
        {
            "tenant": "sul-energia",
            "device": "rtu-poa-01",
            "broker": {"host": "localhost", "cert": "c", "key": "k"},
            "state_dir": tmp_path,
            "meters": [{"id": INDUSTRY, "model": "hx300", "port": 1, "timeout_seconds": 0.5}],
        }
    )
    publisher = InMemoryPublisher()

    report = asyncio.run(Agent(config, publisher).poll_once())

    # Then the meter is reported, no telemetry is published, and the RTU says why on up/events
    assert report.failed_meters == [INDUSTRY]
    assert publisher.topic("up/telemetry") == []
    [event] = [json.loads(p) for p in publisher.topic("up/events")]
    assert (event["type"], event["meter"]) == ("meter_read_failed", INDUSTRY)


class HangingBroker:
    """A broker that never sends the PUBACK."""

    def __init__(self) -> None:
        self.attempts = 0

    async def publish(self, topic: str, payload: bytes) -> None:
        self.attempts += 1
        await asyncio.Event().wait()


def test_run_polls_until_stopped(rig: Rig, tmp_path: Path) -> None:
    publisher = InMemoryPublisher()
    agent = rig.agent(tmp_path, publisher, poll_seconds=0.01)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        while len(publisher.topic("up/telemetry")) < 2:
            await asyncio.sleep(0.01)
        rig.wall.advance(15)  # the next quarter hour ends; a later cycle picks it up
        while len(publisher.topic("up/telemetry")) < 4:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())

    assert [parse_envelope(p).seq for p in publisher.topic("up/telemetry")] == [0, 1, 2, 3]
    # And the RTU reported its health when it started
    health = json.loads(publisher.topic("up/health")[0])
    assert (health["schema"], health["device"], health["firmware"]) == (
        "hemera.rtu-health/1",
        "rtu-poa-01",
        "0.1.0",
    )


def test_stopping_does_not_wait_for_a_puback_that_never_comes(rig: Rig, tmp_path: Path) -> None:
    broker = HangingBroker()
    agent = rig.agent(tmp_path, broker)  # type: ignore[arg-type]

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        while agent.buffer.next_seq < 2 or broker.attempts < 2:  # health, then the day's first
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 2)

    asyncio.run(scenario())

    # Then the day is captured in the outbox, unacknowledged, for the next run to send
    buffer = outbox(tmp_path)
    assert buffer.next_seq == 2
    assert [m.seq for m in buffer.peek(10)] == [0, 1]
    assert set(buffer.cursors()) == {INDUSTRY, COMMERCE}
