"""Commands from the cloud, RTU events and the outbox's overflow, against the Modbus simulator.

The agent uses its real pymodbus reader over TCP and an in-memory broker whose `deliver` plays
the cloud's side of the down topic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from hemera.domain.envelope import parse_envelope
from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera_agent.agent import Agent
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import InMemoryPublisher
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, SimulatedMeter
from tests.builders import LOAD_PROFILE_ONLY

DAY = datetime(2026, 3, 2, tzinfo=UTC)
INDUSTRY, COMMERCE = "sul-m-1001", "sul-m-1002"
CMD_TOPIC = "hemera/sul-energia/rtu-poa-01/down/cmd"
MODEL = load_model("hx300")


@pytest.fixture
def simulator() -> Iterator[ModbusMeterSimulator]:
    """Two hx300 meters (units 1, 2) holding DAY's 96 intervals; the clock runs at real speed
    (the meter's relay state is a function of time)."""
    meters = [
        SimulatedMeter(INDUSTRY, 1, "industry", 820, "America/Sao_Paulo", "sul-energia/sul-m-1001"),
        SimulatedMeter(COMMERCE, 2, "commerce", 410, "America/Sao_Paulo", "sul-energia/sul-m-1002"),
    ]
    clock = SimClock(DAY + timedelta(days=1, seconds=30), speed=1)
    with ModbusMeterSimulator(meters, clock=clock, history_start=DAY) as sim:
        yield sim


def make_agent(
    simulator: ModbusMeterSimulator, state: Path, publisher: InMemoryPublisher, **overrides: Any
) -> Agent:
    meters = overrides.pop(
        "meters",
        [
            {"id": INDUSTRY, "model": "hx300", "unit_id": 1, "port": simulator.port},
            {"id": COMMERCE, "model": "hx300", "unit_id": 2, "port": simulator.port},
        ],
    )
    config = AgentConfig.model_validate(
        {
            "tenant": "sul-energia",
            "device": "rtu-poa-01",
            "broker": {"host": "localhost", "cert": "c", "key": "k"},
            "state_dir": state,
            "meters": meters,
            **LOAD_PROFILE_ONLY,
            **overrides,
        }
    )
    clock = SimClock(
        DAY + timedelta(days=1, seconds=30), speed=1, wall=lambda: datetime(2030, 1, 1, tzinfo=UTC)
    )
    return Agent(config, publisher, clock=clock)


def command(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def acks(publisher: InMemoryPublisher) -> list[dict[str, Any]]:
    return [json.loads(p) for p in publisher.topic("up/cmd-ack")]


def events(publisher: InMemoryPublisher) -> list[dict[str, Any]]:
    return [json.loads(p) for p in publisher.topic("up/events")]


async def relay_of(simulator: ModbusMeterSimulator, unit: int) -> int:
    """What a technician's Modbus tool would read from the meter's relay register."""
    client = AsyncModbusTcpClient("127.0.0.1", port=simulator.port)
    await client.connect()
    try:
        response = await client.read_holding_registers(
            MODEL.registers["relay"].address, count=1, device_id=unit
        )
        return int(response.registers[0])
    finally:
        client.close()


def run_commands(agent: Agent, publisher: InMemoryPublisher, *payloads: bytes) -> None:
    async def scenario() -> None:
        for payload in payloads:
            publisher.deliver(CMD_TOPIC, payload)
            await agent.handle_command(await agent._commands.get())
        await agent.flush()

    asyncio.run(scenario())


def test_a_disconnect_sent_twice_opens_the_relay_once_and_is_acked_ok_then_duplicate(
    simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    publisher = InMemoryPublisher()
    agent = make_agent(simulator, tmp_path, publisher)
    assert asyncio.run(relay_of(simulator, 1)) == 1

    run_commands(agent, publisher, *[command(id="c-7", type="disconnect", meter=INDUSTRY)] * 2)

    assert [(a["id"], a["status"]) for a in acks(publisher)] == [("c-7", "ok"), ("c-7", "duplicate")]
    assert acks(publisher)[0]["result"] == {"relay": "open"}
    assert acks(publisher)[1]["result"] == {"original_status": "ok"}
    assert asyncio.run(relay_of(simulator, 1)) == 0
    assert asyncio.run(relay_of(simulator, 2)) == 1  # the other meter is untouched


def test_a_command_redelivered_after_a_restart_is_not_executed_again(
    simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    # Given a disconnect executed by the agent, then a connect done by hand on the meter
    first = InMemoryPublisher()
    run_commands(
        make_agent(simulator, tmp_path, first), first, command(id="c-8", type="disconnect", meter=INDUSTRY)
    )
    second = InMemoryPublisher()
    restarted = make_agent(simulator, tmp_path, second)
    run_commands(restarted, second, command(id="c-9", type="connect", meter=INDUSTRY))

    # When the broker redelivers the old disconnect to the restarted agent
    run_commands(restarted, second, command(id="c-8", type="disconnect", meter=INDUSTRY))

    # Then it is acked as a duplicate and the relay stays connected
    assert [(a["id"], a["status"]) for a in acks(second)] == [("c-9", "ok"), ("c-8", "duplicate")]
    assert asyncio.run(relay_of(simulator, 1)) == 1


def test_read_range_republishes_exactly_the_asked_intervals_and_leaves_the_cursor(
    simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    publisher = InMemoryPublisher()
    agent = make_agent(simulator, tmp_path, publisher)
    asyncio.run(agent.poll_once())
    cursors = agent.buffer.cursors()
    published = len(publisher.topic("up/telemetry"))

    run_commands(
        agent,
        publisher,
        command(
            id="rr-1",
            type="read_range",
            meter=COMMERCE,
            params={"from": "2026-03-02T10:00:00Z", "to": "2026-03-02T11:45:00Z"},
        ),
    )

    again = [parse_envelope(p) for p in publisher.topic("up/telemetry")[published:]]
    starts = sorted(
        {
            r.start
            for e in again
            for f in e.frames
            for r in decode_load_profile_window(MODEL, e.meter, f.registers())
        }
    )
    assert {e.meter for e in again} == {COMMERCE}
    assert starts == [DAY + timedelta(hours=10, minutes=15 * i) for i in range(8)]
    [ack] = acks(publisher)
    assert ack["status"] == "ok"
    assert ack["result"]["intervals"] == 8
    assert ack["result"]["first_seq"] == again[0].seq
    assert agent.buffer.cursors() == cursors


def test_ping_answers_with_health_and_a_bad_command_with_its_reason(
    simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    publisher = InMemoryPublisher()
    agent = make_agent(simulator, tmp_path, publisher)

    run_commands(
        agent,
        publisher,
        command(id="p-1", type="ping"),
        command(id="x-1", type="disconnect", meter="sul-m-4242"),
        command(id="x-2", type="reboot"),
        b"not json",
    )

    ping, unknown_meter, unknown_type = acks(publisher)
    assert ping["status"] == "ok" and ping["result"]["schema"] == "hemera.rtu-health/1"
    assert ping["result"]["buffer_depth"] >= 0
    assert (unknown_meter["status"], unknown_meter["result"]["reason"]) == ("error", "invalid_command")
    assert (unknown_type["id"], unknown_type["status"]) == ("x-2", "error")
    assert {a["started_at"] <= a["finished_at"] for a in acks(publisher)} == {True}


def test_a_meter_answering_exceptions_raises_one_event_and_the_others_are_served(
    simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    # Given a third meter configured at unit 9, where the RTU port answers Modbus exceptions
    publisher = InMemoryPublisher()
    meters = [
        {"id": INDUSTRY, "model": "hx300", "unit_id": 1, "port": simulator.port},
        {"id": "sul-m-1009", "model": "hx300", "unit_id": 9, "port": simulator.port},
        {"id": COMMERCE, "model": "hx300", "unit_id": 2, "port": simulator.port},
    ]
    agent = make_agent(simulator, tmp_path, publisher, meters=meters)

    # When the agent polls twice
    first = asyncio.run(agent.poll_once())
    asyncio.run(agent.poll_once())

    # Then one meter_garbage event names the meter, and both good meters' days were published
    assert first.failed_meters == ["sul-m-1009"]
    [event] = events(publisher)
    assert (event["type"], event["meter"], event["schema"]) == (
        "meter_garbage",
        "sul-m-1009",
        "hemera.rtu-event/1",
    )
    assert {parse_envelope(p).meter for p in publisher.topic("up/telemetry")} == {INDUSTRY, COMMERCE}
    assert agent.health().meters_failing == ["sul-m-1009"]


def test_a_full_outbox_stops_reading_raises_an_event_and_loses_nothing(
    simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    # Given an outbox of 3 envelopes of 10 intervals (a day is 10 envelopes per meter), broker down
    down = InMemoryPublisher(fail_after=0)
    agent = make_agent(simulator, tmp_path, down, max_intervals_per_envelope=10, buffer={"max_envelopes": 3})

    report = asyncio.run(agent.collect())

    # Then it stored 3 envelopes, stopped reading, and queued one buffer_overflow event
    assert report.buffer_full and report.envelopes == 3
    queued = agent.buffer.peek(10)
    overflow = [json.loads(m.payload) for m in queued if m.topic.endswith("up/events")]
    assert [e["type"] for e in overflow] == ["buffer_overflow"]
    assert overflow[0]["detail"]["policy"] == "stop_reading"

    # When the broker comes back and the agent keeps polling until the day is through
    up = InMemoryPublisher()
    agent.publisher = up
    for _ in range(20):
        asyncio.run(agent.poll_once())

    # Then every interval of both meters arrived once, in order (each cycle here overfills the
    # tiny outbox again), and every overflow episode is reported once, with its end
    envelopes = [parse_envelope(p) for p in up.topic("up/telemetry")]
    assert [e.seq for e in envelopes] == sorted(e.seq for e in envelopes)
    for meter in (INDUSTRY, COMMERCE):
        starts = [
            r.start
            for e in envelopes
            if e.meter == meter
            for f in e.frames
            for r in decode_load_profile_window(MODEL, meter, f.registers())
            if r.channel.value == "active_import"
        ]
        assert starts == [DAY + timedelta(minutes=15 * i) for i in range(96)]
    kinds = [e["type"] for e in events(up)]
    assert kinds[0] == "buffer_overflow" and kinds[-1] == "buffer_recovered"
    assert kinds == ["buffer_overflow", "buffer_recovered"] * (len(kinds) // 2)
    assert agent.buffer.overflow_state() is None
