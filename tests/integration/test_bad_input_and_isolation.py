"""Bad input on the local cloud: quarantined with a reason under its tenant, good data still lands;
a device cannot publish as another tenant; failing deliveries end in the DLQ."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from hemera import aws
from hemera.definitions import TRANSLATE_FUNCTION, QueueDef, TopicRule
from hemera.wiring import ingest_ports
from hemera_agent.config import BrokerConfig
from hemera_agent.publisher import Mqtt5Publisher, PublishFailed
from hemera_local.bridge import BridgeStats, QueuePoller
from hemera_local.resources import _create_queue
from tests.builders import hx300_envelope
from tests.integration.conftest import eventually, get_profile, run

pytestmark = pytest.mark.integration

TOPIC = "hemera/coastal-power/rtu-syd-01/up/telemetry"
DAY = datetime(2026, 10, 5, 13, tzinfo=UTC)  # 2026-10-06 00:00 in Sydney (UTC+11)


def broker(cloud, tenant, device) -> BrokerConfig:
    creds = cloud.device_credentials(tenant, device)
    return BrokerConfig(
        host="127.0.0.1",
        port=cloud.mqtt_port,
        cert=creds.cert,
        key=creds.key,
        ca=creds.ca,
        flow_control="none",
    )


async def publish_all(config: BrokerConfig, client_id: str, messages: list[tuple[str, bytes]]) -> list[str]:
    outcomes = []
    async with Mqtt5Publisher(config, client_id) as publisher:
        for topic, payload in messages:
            try:
                await publisher.publish(topic, payload)
                outcomes.append("acked")
            except PublishFailed:
                outcomes.append("refused")
    return outcomes


def test_bad_messages_are_quarantined_with_reasons_and_good_data_still_lands(local_cloud, api_keys):
    good = hx300_envelope(
        "coastal-power", "rtu-syd-01", "cp-m-2001", DAY, [500 + i for i in range(96)], seq=9001
    )
    not_json = b'{"schema": "hemera.envelope/1", "tenant": '
    wrong_meter = hx300_envelope("coastal-power", "rtu-syd-01", "sul-m-1001", DAY, [1, 2, 3], seq=9002)
    outcomes = run(
        publish_all(
            broker(local_cloud, "coastal-power", "rtu-syd-01"),
            "coastal-power:rtu-syd-01",
            [(TOPIC, not_json), (TOPIC, good.to_json()), (TOPIC, wrong_meter.to_json())],
        )
    )
    assert outcomes == ["acked", "acked", "acked"]
    quarantine = ingest_ports(local_cloud.settings).quarantine
    records = eventually(lambda: list(quarantine.list("coastal-power")), lambda r: len(r) >= 2)
    assert sorted((r.reason, r.original) for r in records) == sorted(
        [("malformed_envelope", not_json), ("unknown_meter", wrong_meter.to_json())]
    )
    assert all(r.topic == TOPIC for r in records)
    response = eventually(
        lambda: get_profile(local_cloud, api_keys["coastal-power"], "cp-m-2001", "2026-10-06"),
        lambda r: r.json()["summary"]["intervals"] == 96,
    )
    assert response.json()["summary"]["total"] == sum(500 + i for i in range(96)) / 1000


def test_a_device_cannot_publish_on_another_tenants_topic(local_cloud):
    envelope = hx300_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", DAY, [1], seq=1)
    outcomes = run(
        publish_all(
            broker(local_cloud, "coastal-power", "rtu-syd-01"),
            "coastal-power:rtu-syd-01",
            [("hemera/sul-energia/rtu-poa-01/up/telemetry", envelope.to_json())],
        )
    )
    assert outcomes == ["refused"]


def test_a_message_that_keeps_failing_ends_in_the_dlq(local_cloud):
    queue = QueueDef("Probe", "UNUSED", "probe-events", "probe-events-dlq", max_receive_count=2)
    rule = TopicRule("probe", "hemera/+/+/up/probe", queue, TRANSLATE_FUNCTION)
    sqs = aws.client(local_cloud.target, "sqs")
    urls = _create_queue(sqs, queue)
    sqs.send_message(QueueUrl=urls.queue, MessageBody=json.dumps({"payload": "", "mqtt_topic": "x"}))

    def always_fails(event, context):
        raise RuntimeError("downstream unavailable")

    stats = BridgeStats()
    poller = QueuePoller(local_cloud.target, rule, urls.queue, always_fails, stats)

    def dlq_depth():
        poller.poll_once()
        attrs = sqs.get_queue_attributes(QueueUrl=urls.dlq, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    assert eventually(dlq_depth, lambda n: n == 1, timeout_s=20) == 1
    assert stats.invocation_errors == 2  # delivered max_receive_count times, then moved
