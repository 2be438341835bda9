"""A device certificate cannot publish outside its own topics, nor receive anything outside them
whatever it subscribes to, on the local broker (mTLS, certificate CN as user name, ACL from the
tenant files)."""

from __future__ import annotations

import contextlib
import queue

import pytest

from hemera_agent.config import BrokerConfig
from hemera_agent.publisher import Mqtt5Publisher, PublishFailed
from hemera_local.broker import BRIDGE_IDENTITY
from tests.integration.conftest import DEVICE_CN, Broker, run

pytestmark = pytest.mark.integration

OWN = "hemera/sul-energia/rtu-poa-01/down/cmd"


def receive_with_device(broker: Broker, filters: list[str], send: list[str]) -> tuple[list[int], set[str]]:
    """Subscribe with the device's certificate to `filters`, have the rules bridge (allowed to write
    every device's `down` topics) publish on `send`; return the SUBACK codes and the topics the
    device received."""
    from awscrt import mqtt5
    from awsiot import mqtt5_client_builder

    connected: queue.Queue[bool] = queue.Queue()
    received: queue.Queue[str] = queue.Queue()
    client = mqtt5_client_builder.mtls_from_path(
        endpoint="localhost",
        port=broker.port,
        cert_filepath=str(broker.device[0]),
        pri_key_filepath=str(broker.device[1]),
        ca_filepath=str(broker.ca),
        client_id=DEVICE_CN,
        extended_validation_and_flow_control_options=mqtt5.ExtendedValidationAndFlowControlOptions.NONE,
        on_publish_received=lambda data: received.put(data.publish_packet.topic),
        on_lifecycle_connection_success=lambda _data: connected.put(True),
    )
    client.start()
    try:
        assert connected.get(timeout=10)
        codes = []
        for topic_filter in filters:
            packet = mqtt5.SubscribePacket(
                subscriptions=[mqtt5.Subscription(topic_filter=topic_filter, qos=mqtt5.QoS.AT_LEAST_ONCE)]
            )
            codes.append(int(client.subscribe(packet).result(10).reason_codes[0]))
        assert run(_publish_as_bridge(broker, send)) == ["acked"] * len(send)
        topics: set[str] = set()
        with contextlib.suppress(queue.Empty):
            while True:
                topics.add(received.get(timeout=2))
        return codes, topics
    finally:
        client.stop()


async def _publish_as_bridge(broker: Broker, topics: list[str]) -> list[str]:
    config = BrokerConfig(
        host="localhost",
        port=broker.port,
        cert=broker.bridge[0],
        key=broker.bridge[1],
        ca=broker.ca,
        flow_control="none",
    )
    results = []
    async with Mqtt5Publisher(config, BRIDGE_IDENTITY) as publisher:
        for topic in topics:
            await publisher.publish(topic, b"{}")
            results.append("acked")
    return results


def test_a_device_receives_nothing_outside_its_own_topics(broker):
    # Given the device subscribed to its own command topic and to filters reaching other devices
    # (mosquitto grants a subscription and then checks read access per message, as IoT Core's
    # iot:Receive does; so what counts is what arrives)
    foreign_filters = ["hemera/#", "hemera/+/+/down/#", "hemera/sul-energia/#", "#"]
    foreign_topics = [
        "hemera/sul-energia/rtu-poa-02/down/cmd",
        "hemera/sul-energia-norte/rtu-poa-01/down/cmd",
        "hemera/coastal-power/rtu-syd-01/down/cmd",
    ]
    # When commands are published to it and to the other devices
    codes, received = receive_with_device(broker, [OWN, *foreign_filters], [*foreign_topics, OWN])
    # Then it receives its own command only
    assert codes[0] < 0x80
    assert received == {OWN}


def test_a_device_publishes_only_on_its_own_topics(broker):
    config = BrokerConfig(
        host="localhost",
        port=broker.port,
        cert=broker.device[0],
        key=broker.device[1],
        ca=broker.ca,
        flow_control="none",
    )

    async def outcomes(topics: list[str]) -> list[str]:
        results = []
        async with Mqtt5Publisher(config, DEVICE_CN) as publisher:
            for topic in topics:
                try:
                    await publisher.publish(topic, b"{}")
                    results.append("acked")
                except PublishFailed:
                    results.append("refused")
        return results

    topics = [
        "hemera/sul-energia/rtu-poa-01/up/telemetry",
        "hemera/sul-energia/rtu-poa-02/up/telemetry",
        "hemera/sul-energia-norte/rtu-poa-01/up/telemetry",
        "hemera/coastal-power/rtu-syd-01/up/telemetry",
        "elsewhere/up",
    ]
    assert run(outcomes(topics)) == ["acked", "refused", "refused", "refused", "refused"]
