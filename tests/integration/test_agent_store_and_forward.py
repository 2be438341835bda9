"""The agent against the real local mosquitto (mTLS, ACL): broker outages, a killed agent,
commands on the down topic, and a meter answering garbage.

The meters run on an accelerated clock; the subscriber uses the rules bridge's identity (it may
read every device's `up` topics and write their `down` topics) and subscribes again on every
connection. mosquitto 2.0.11 does not restore MQTT5 sessions after a restart here (its
persistence file stays empty), so a message published before the subscriber is back would find
no subscriber (PUBACK 0x10) - as it would for the local rules bridge. IoT Core's rules are always
on; to model that, the agent reaches the broker through a gate the test opens only once the
subscriber is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymodbus.client import AsyncModbusTcpClient

from hemera.domain.envelope import Envelope, parse_envelope
from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera_agent.agent import Agent
from hemera_agent.backoff import Backoff
from hemera_agent.buffer import BUFFER_FILE
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import Mqtt5Publisher
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, SimulatedMeter
from hemera_local.broker import BRIDGE_IDENTITY
from tests.integration.conftest import Broker, agent_document

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ROOT = "hemera/sul-energia/rtu-poa-01/"
INDUSTRY, COMMERCE = "sul-m-1001", "sul-m-1002"
MODEL = load_model("hx300")
QUARTER = timedelta(minutes=15)


class Bridge:
    """The cloud side: an MQTT5 client with the rules bridge identity."""

    def __init__(self, broker: Broker, *topic_filters: str) -> None:
        from awscrt import mqtt5
        from awsiot import mqtt5_client_builder

        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.subscribed = threading.Event()
        self.topic_filters = topic_filters
        self.client = mqtt5_client_builder.mtls_from_path(
            endpoint="localhost",
            port=broker.port,
            cert_filepath=str(broker.bridge[0]),
            pri_key_filepath=str(broker.bridge[1]),
            ca_filepath=str(broker.ca),
            client_id=BRIDGE_IDENTITY,
            min_reconnect_delay_ms=100,
            max_reconnect_delay_ms=300,
            extended_validation_and_flow_control_options=mqtt5.ExtendedValidationAndFlowControlOptions.NONE,
            on_publish_received=lambda data: self.received.put(
                (data.publish_packet.topic, bytes(data.publish_packet.payload))
            ),
            on_lifecycle_connection_success=lambda _data: threading.Thread(target=self._subscribe).start(),
            on_lifecycle_disconnection=lambda _data: self.subscribed.clear(),
        )
        self.messages: list[tuple[str, bytes]] = []
        self.client.start()
        assert self.subscribed.wait(10)

    def _subscribe(self) -> None:
        """Subscribe on every connection: the broker does not keep the session across restarts."""
        from awscrt import mqtt5

        subscribe = mqtt5.SubscribePacket(
            subscriptions=[
                mqtt5.Subscription(topic_filter=f, qos=mqtt5.QoS.AT_LEAST_ONCE) for f in self.topic_filters
            ]
        )
        suback = self.client.subscribe(subscribe).result(10)
        if all(int(code) < 0x80 for code in suback.reason_codes):
            self.subscribed.set()

    def collect(self, until: Any, timeout: float) -> list[tuple[str, bytes]]:
        """Gather messages until `until(messages)` is true (or fail after `timeout` s)."""
        deadline = time.monotonic() + timeout
        while not until(self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out with {len(self.messages)} messages")
            try:
                self.messages.append(self.received.get(timeout=min(remaining, 0.5)))
            except queue.Empty:
                continue
        return self.messages

    def send(self, topic: str, payload: bytes) -> None:
        from awscrt import mqtt5

        packet = mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS.AT_LEAST_ONCE)
        puback = self.client.publish(packet).result(10).puback
        assert int(puback.reason_code) < 0x80, puback

    def stop(self) -> None:
        self.client.stop()


class GatedProxy:
    """A TCP relay in front of the broker: while closed it refuses the agent's connections."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.open = threading.Event()
        self.open.set()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                if not self.open.is_set():
                    raise OSError("gate closed")
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def close(self) -> None:
        self.sock.close()


def telemetry(messages: list[tuple[str, bytes]]) -> list[Envelope]:
    return [parse_envelope(p) for t, p in messages if t.endswith("/up/telemetry")]


def interval_arrivals(envelopes: list[Envelope]) -> dict[str, list[tuple[int, datetime]]]:
    """meter → (seq, interval start) for every interval in arrival order, duplicates included."""
    out: dict[str, list[tuple[int, datetime]]] = {}
    for envelope in envelopes:
        for frame in envelope.frames:
            for reading in decode_load_profile_window(MODEL, envelope.meter, frame.registers()):
                if reading.channel.value == "active_import":
                    out.setdefault(envelope.meter, []).append((envelope.seq, reading.start))
    return out


def assert_each_interval_once_in_order(envelopes: list[Envelope], first: datetime, last: datetime) -> int:
    """What the cloud sees after its (device, seq) idempotency: each interval exactly once, under
    one seq, in order. Returns how many byte-identical redeliveries were absorbed."""
    by_seq: dict[int, Envelope] = {}
    for envelope in envelopes:
        if envelope.seq in by_seq:
            assert by_seq[envelope.seq] == envelope, f"seq {envelope.seq} carried two payloads"
        by_seq.setdefault(envelope.seq, envelope)
    distinct = [by_seq[s] for s in dict.fromkeys(e.seq for e in envelopes)]
    assert [e.seq for e in distinct] == sorted(e.seq for e in distinct), "envelopes out of order"
    expected = [first + i * QUARTER for i in range(int((last - first) / QUARTER) + 1)]
    for meter, arrivals in interval_arrivals(distinct).items():
        starts = [start for _seq, start in arrivals]
        assert starts == expected, f"{meter}: {len(starts)} intervals, expected {len(expected)}"
    return len(envelopes) - len(distinct)


def simulated_meters() -> list[SimulatedMeter]:
    return [
        SimulatedMeter(INDUSTRY, 1, "industry", 820, "America/Sao_Paulo", "sul-energia/sul-m-1001"),
        SimulatedMeter(COMMERCE, 2, "commerce", 410, "America/Sao_Paulo", "sul-energia/sul-m-1002"),
    ]


def meters_on(port: int) -> list[dict[str, Any]]:
    return [
        {"id": INDUSTRY, "model": "hx300", "unit_id": 1, "port": port},
        {"id": COMMERCE, "model": "hx300", "unit_id": 2, "port": port},
    ]


def test_a_broker_outage_loses_nothing_and_the_backlog_arrives_in_order(
    broker: Broker, tmp_path: Path
) -> None:
    # Given meters recording 30 simulated minutes per wall second (2 intervals/s each)
    history = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    clock = SimClock(start=history + timedelta(hours=1, seconds=5), speed=1800)
    bridge = Bridge(broker, ROOT + "up/telemetry")
    gate = GatedProxy(broker.port)
    document = agent_document(broker, [], tmp_path / "state", max_intervals_per_envelope=4)
    document["broker"]["port"] = gate.port

    with ModbusMeterSimulator(simulated_meters(), clock=clock, history_start=history) as sim:
        config = AgentConfig.model_validate({**document, "meters": meters_on(sim.port)})

        async def scenario() -> tuple[int, float, int, int]:
            publisher = Mqtt5Publisher(config.broker, config.client_id, backoff=Backoff(0.1, 0.5))
            await publisher.start()
            agent = Agent(config, publisher, clock=clock)
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))
            await asyncio.sleep(1.5)
            # When the broker goes away for 4 wall seconds = 2 simulated hours
            gate.open.clear()
            await asyncio.to_thread(broker.mosquitto.stop)
            await asyncio.sleep(4)
            backlog = agent.buffer.telemetry_usage()[0]
            await asyncio.to_thread(broker.mosquitto.start)
            # (the cloud side is back before the devices get through)
            assert await asyncio.to_thread(bridge.subscribed.wait, 10)
            gate.open.set()
            restarted = time.monotonic()
            while agent.buffer.telemetry_usage()[0] > 0:
                await asyncio.sleep(0.02)
            drained = time.monotonic() - restarted
            # Stop reading, then let the last envelopes go
            last_seq = agent.buffer.next_seq - 1
            stop.set()
            await running
            await agent.flush()
            agent.close()
            connections = publisher.connections
            await publisher.stop()
            return backlog, drained, last_seq, connections

        backlog, drained, last_seq, connections = asyncio.run(scenario())
        newest = datetime.fromtimestamp(sim.memory(1).newest_epoch, UTC)

    try:
        # Then the subscriber gets every seq up to the last, and every interval once, in order
        messages = bridge.collect(lambda m: last_seq in {e.seq for e in telemetry(m)}, timeout=20)
    finally:
        bridge.stop()
        gate.close()
    envelopes = telemetry(messages)
    assert backlog >= 4, "the outage should have left envelopes in the outbox"
    assert connections == 2, "one connection before the outage, one after (the agent's own reconnect)"
    last_interval = max(start for arrivals in interval_arrivals(envelopes).values() for _s, start in arrivals)
    assert last_interval <= newest
    assert_each_interval_once_in_order(envelopes, history, last_interval)
    print(f"outage backlog {backlog} envelopes drained in {drained:.2f} s")


def test_an_agent_killed_with_a_full_outbox_sends_it_after_a_restart_once(
    broker: Broker, tmp_path: Path
) -> None:
    # Given a day of data in the meters and the broker down, so the agent can only buffer
    history = datetime(2026, 3, 2, tzinfo=UTC)
    clock = SimClock(
        start=history + timedelta(days=1, seconds=30), speed=1, wall=lambda: datetime(2030, 1, 1, tzinfo=UTC)
    )
    bridge = Bridge(broker, ROOT + "up/telemetry")
    broker.mosquitto.stop()
    with ModbusMeterSimulator(simulated_meters(), clock=clock, history_start=history) as sim:
        config_path = tmp_path / "agent.yaml"
        document = agent_document(
            broker, meters_on(sim.port), tmp_path / "state", max_intervals_per_envelope=8
        )
        config_path.write_text(yaml.safe_dump(document))
        outbox = tmp_path / "state" / BUFFER_FILE

        def start_agent() -> subprocess.Popen[str]:
            return subprocess.Popen(
                [sys.executable, "-m", "hemera_agent.cli", "run", "--config", str(config_path)],
                cwd=REPO,
                stderr=subprocess.DEVNULL,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

        def queued() -> int:
            if not outbox.exists():
                return 0
            with sqlite3.connect(outbox) as db:
                try:
                    return int(db.execute("SELECT COUNT(*) FROM outbox WHERE kind='telemetry'").fetchone()[0])
                except sqlite3.OperationalError:
                    return 0

        agent = start_agent()
        try:
            deadline = time.monotonic() + 20
            while queued() < 24 and time.monotonic() < deadline:  # the whole day: 2 x 96 / 8
                time.sleep(0.05)
            # When the agent is killed without a chance to clean up
            agent.send_signal(signal.SIGKILL)
            agent.wait(5)
            in_outbox = queued()
            # And the broker comes back and the agent is started again
            broker.mosquitto.start()
            assert bridge.subscribed.wait(10)
            agent = start_agent()
            messages = bridge.collect(lambda m: len({e.seq for e in telemetry(m)}) >= 24, timeout=30)
        finally:
            if agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
                agent.wait(10)
            bridge.stop()

    # Then what was in the outbox arrived, once per interval and seq, in order
    assert in_outbox == 24
    envelopes = telemetry(messages)
    assert_each_interval_once_in_order(envelopes, history, history + timedelta(hours=23, minutes=45))
    assert sorted({e.seq for e in envelopes}) == list(range(24))


@pytest.fixture
def realtime_simulator() -> Iterator[ModbusMeterSimulator]:
    history = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    with ModbusMeterSimulator(
        simulated_meters(), clock=SimClock(datetime.now(UTC)), history_start=history
    ) as sim:
        yield sim


async def relay_of(port: int, unit: int) -> int:
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    try:
        response = await client.read_holding_registers(
            MODEL.registers["relay"].address, count=1, device_id=unit
        )
        return int(response.registers[0])
    finally:
        client.close()


class AgentThread:
    """An in-process agent (`run`) on its own event loop, with a real MQTT5 publisher."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        publisher = Mqtt5Publisher(self.config.broker, self.config.client_id, backoff=Backoff(0.1, 0.5))
        agent = Agent(self.config, publisher)
        await publisher.start()
        for _ in range(100):  # the subscription to down/cmd is acknowledged shortly after connecting
            await asyncio.sleep(0.02)
        self.ready.set()
        try:
            await agent.run(self._stop)
        finally:
            agent.close()
            await publisher.stop()

    def __enter__(self) -> AgentThread:
        self.thread.start()
        assert self.ready.wait(15)
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)


def test_a_command_sent_twice_is_executed_once_and_acked_twice(
    broker: Broker, realtime_simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    config = AgentConfig.model_validate(
        agent_document(broker, meters_on(realtime_simulator.port), tmp_path / "state", poll_seconds=30)
    )
    bridge = Bridge(broker, ROOT + "up/cmd-ack")
    try:
        with AgentThread(config):
            # When the cloud sends the same disconnect twice (a retry after a lost PUBACK)
            cmd = json.dumps({"id": "cmd-1", "type": "disconnect", "meter": COMMERCE}).encode()
            bridge.send(ROOT + "down/cmd", cmd)
            bridge.send(ROOT + "down/cmd", cmd)
            messages = bridge.collect(lambda m: len(m) >= 2, timeout=15)
    finally:
        bridge.stop()

    # Then two acks: ok then duplicate, and the meter's relay is open
    acks = [json.loads(p) for _t, p in messages]
    assert [(a["id"], a["status"]) for a in acks] == [("cmd-1", "ok"), ("cmd-1", "duplicate")]
    assert acks[0]["result"] == {"relay": "open"}
    assert asyncio.run(relay_of(realtime_simulator.port, 2)) == 0
    assert asyncio.run(relay_of(realtime_simulator.port, 1)) == 1


class JunkServer:
    """A TCP server that answers every request with bytes that are not Modbus."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    if not conn.recv(256):
                        return
                    conn.sendall(b"\xde\xad\xbe\xef garbage \x00\xff")
                except OSError:
                    return

    def close(self) -> None:
        self.sock.close()


def test_meters_answering_garbage_raise_events_and_the_others_are_served(
    broker: Broker, realtime_simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    # Given an RTU with the two good meters, one unit id the port answers with Modbus exceptions,
    # and one meter behind a link that sends junk
    junk = JunkServer()
    port = realtime_simulator.port
    meters = [
        *meters_on(port),
        {"id": "sul-m-1009", "model": "hx300", "unit_id": 9, "port": port},
        {"id": "sul-m-1010", "model": "hx300", "unit_id": 1, "port": junk.port, "timeout_seconds": 0.3},
    ]
    config = AgentConfig.model_validate(agent_document(broker, meters, tmp_path / "state", poll_seconds=0.5))
    bridge = Bridge(broker, ROOT + "up/events", ROOT + "up/telemetry")

    def done(messages: list[tuple[str, bytes]]) -> bool:
        metered = {e.meter for e in telemetry(messages)}
        evented = {json.loads(p)["meter"] for t, p in messages if t.endswith("up/events")}
        return metered >= {INDUSTRY, COMMERCE} and evented >= {"sul-m-1009", "sul-m-1010"}

    try:
        with AgentThread(config):
            messages = bridge.collect(done, timeout=20)
            time.sleep(1.2)  # two more poll cycles: no repeated events
            messages = bridge.collect(lambda _m: bridge.received.empty(), timeout=5)
    finally:
        bridge.stop()
        junk.close()

    events = [json.loads(p) for t, p in messages if t.endswith("up/events")]
    kinds = {e["meter"]: e["type"] for e in events}
    assert kinds == {"sul-m-1009": "meter_garbage", "sul-m-1010": "meter_read_failed"}
    assert len(events) == 2, "one event per failing meter, not one per poll"
    assert {e.meter for e in telemetry(messages)} == {INDUSTRY, COMMERCE}
