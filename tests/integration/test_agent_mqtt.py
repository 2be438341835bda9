"""The agent publishes over MQTT5 with mutual TLS to a real mosquitto, and a subscriber gets it.

Self-contained: throw-away CA and certificates are made here with `cryptography`, mosquitto gets
its own config (mTLS, certificate CN as user name, an ACL scoping the device to its own topics),
the meter simulator runs in-process.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hemera.domain.envelope import parse_envelope
from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera_agent.agent import Agent
from hemera_agent.buffer import BUFFER_FILE, EnvelopeBuffer
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import Mqtt5Publisher, PublishFailed
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, SimulatedMeter
from hemera_local.broker import BRIDGE_IDENTITY
from tests.integration.conftest import Broker, agent_document

pytestmark = pytest.mark.integration

MOSQUITTO = Path("/usr/sbin/mosquitto")
TOPIC = "hemera/sul-energia/rtu-poa-01/up/telemetry"
DAY = datetime(2026, 3, 2, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


class Subscriber:
    """An MQTT5 client that collects what arrives on a topic filter."""

    def __init__(self, broker: Broker, topic_filter: str) -> None:
        from awscrt import mqtt5
        from awsiot import mqtt5_client_builder

        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        connected: queue.Queue[bool] = queue.Queue()
        self.client = mqtt5_client_builder.mtls_from_path(
            endpoint="localhost",
            port=broker.port,
            cert_filepath=str(broker.bridge[0]),
            pri_key_filepath=str(broker.bridge[1]),
            ca_filepath=str(broker.ca),
            client_id=BRIDGE_IDENTITY,
            extended_validation_and_flow_control_options=mqtt5.ExtendedValidationAndFlowControlOptions.NONE,
            on_publish_received=lambda data: self.received.put(
                (data.publish_packet.topic, bytes(data.publish_packet.payload))
            ),
            on_lifecycle_connection_success=lambda _data: connected.put(True),
        )
        self.client.start()
        assert connected.get(timeout=10)
        subscribe = mqtt5.SubscribePacket(
            subscriptions=[mqtt5.Subscription(topic_filter=topic_filter, qos=mqtt5.QoS.AT_LEAST_ONCE)]
        )
        suback = self.client.subscribe(subscribe).result(10)
        assert int(suback.reason_codes[0]) < 0x80, suback

    def take(self, count: int, timeout: float = 10) -> list[tuple[str, bytes]]:
        return [self.received.get(timeout=timeout) for _ in range(count)]

    def stop(self) -> None:
        self.client.stop()


@pytest.fixture
def simulator() -> Iterator[ModbusMeterSimulator]:
    meters = [
        SimulatedMeter("sul-m-1001", 1, "industry", 820, "America/Sao_Paulo", "sul-energia/sul-m-1001"),
        SimulatedMeter("sul-m-1002", 2, "commerce", 410, "America/Sao_Paulo", "sul-energia/sul-m-1002"),
    ]
    clock = SimClock(
        start=DAY + timedelta(days=1, seconds=30), speed=1, wall=lambda: datetime(2030, 1, 1, tzinfo=UTC)
    )
    with ModbusMeterSimulator(meters, clock=clock, history_start=DAY) as sim:
        yield sim


def rtu_document(broker: Broker, simulator: ModbusMeterSimulator, state_dir: Path) -> dict[str, Any]:
    meters = [
        {"id": "sul-m-1001", "model": "hx300", "unit_id": 1, "port": simulator.port},
        {"id": "sul-m-1002", "model": "hx300", "unit_id": 2, "port": simulator.port},
    ]
    return agent_document(broker, meters, state_dir, poll_seconds=0.2)


def test_envelopes_arrive_at_a_subscriber_over_mutual_tls(
    broker: Broker, simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    # Given a subscriber on the device's telemetry topic and the agent configured for the broker
    subscriber = Subscriber(broker, "hemera/sul-energia/+/up/telemetry")
    config = AgentConfig.model_validate(rtu_document(broker, simulator, tmp_path / "state"))

    async def poll() -> int:
        async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
            return (await Agent(config, publisher).poll_once()).envelopes

    try:
        # When the agent polls once
        envelopes = asyncio.run(poll())

        # Then both meters' envelopes arrive, on the device topic, and decode to a full day each
        arrived = subscriber.take(envelopes)
    finally:
        subscriber.stop()
    assert envelopes == 2
    assert {topic for topic, _ in arrived} == {TOPIC}
    model = load_model("hx300")
    for _topic, payload in arrived:
        envelope = parse_envelope(payload)
        readings = [
            r
            for f in envelope.frames
            for r in decode_load_profile_window(model, envelope.meter, f.registers())
        ]
        assert len({r.start for r in readings}) == 96
    assert sorted(parse_envelope(p).seq for _t, p in arrived) == [0, 1]


def test_a_publish_outside_the_device_topics_is_refused_by_the_broker(broker: Broker, tmp_path: Path) -> None:
    # Given the device's certificate, publishing on another device's topic
    config = AgentConfig.model_validate(
        {
            "tenant": "sul-energia",
            "device": "rtu-poa-01",
            "broker": rtu_document(broker, simulator=_NoSimulator(), state_dir=tmp_path)["broker"],
            "state_dir": str(tmp_path),
            "meters": [{"id": "sul-m-1001", "model": "hx300"}],
        }
    )

    async def publish_foreign() -> None:
        async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
            await publisher.publish("hemera/sul-energia/rtu-poa-99/up/telemetry", b"{}")

    # Then the PUBACK says "not authorized" and the publisher raises rather than reporting success
    with pytest.raises(PublishFailed, match="refused"):
        asyncio.run(publish_foreign())


class _NoSimulator:
    port = 1


def test_the_cli_runs_until_sigterm_and_exits_cleanly(
    broker: Broker, simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    # Given an agent config file and a subscriber
    config_path = tmp_path / "agent.yaml"
    config_path.write_text(yaml.safe_dump(rtu_document(broker, simulator, tmp_path / "state")))
    subscriber = Subscriber(broker, TOPIC)
    agent = subprocess.Popen(
        [sys.executable, "-m", "hemera_agent.cli", "run", "--config", str(config_path)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        # When it has published the day and is sent SIGTERM
        arrived = subscriber.take(2, timeout=20)
        agent.send_signal(signal.SIGTERM)
        _out, logs = agent.communicate(timeout=20)
    finally:
        subscriber.stop()
        if agent.poll() is None:
            agent.kill()

    # Then it exits 0, said so in its JSON log, and the outbox holds nothing unacknowledged
    assert agent.returncode == 0, logs
    assert '"msg": "agent stopped"' in logs
    assert '"tenant": "sul-energia"' in logs
    assert len(arrived) == 2
    buffer = EnvelopeBuffer(tmp_path / "state" / BUFFER_FILE, "sul-energia", "rtu-poa-01")
    assert buffer.next_seq == 2
    assert [m.kind for m in buffer.peek(10) if m.kind == "telemetry"] == []


def test_the_cli_once_prints_what_it_published(
    broker: Broker, simulator: ModbusMeterSimulator, tmp_path: Path
) -> None:
    config_path = tmp_path / "agent.yaml"
    config_path.write_text(yaml.safe_dump(rtu_document(broker, simulator, tmp_path / "state")))

    first = subprocess.run(
        [sys.executable, "-m", "hemera_agent.cli", "once", "--config", str(config_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    second = subprocess.run(
        [sys.executable, "-m", "hemera_agent.cli", "once", "--config", str(config_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("published 192 intervals in 2 envelopes")
    assert second.stdout.startswith("published 0 intervals in 0 envelopes")
