"""The local cloud's moto performance shims answer exactly what moto's own code answers."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws
from moto.sqs.models import sqs_backends

from hemera_local.moto_server import (
    MOTO_QUEUE_ATTRIBUTES,
    MOTO_RETENTION_CHECK,
    QueueAttributes,
    retention_check,
)


def _queues() -> list:
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    plain = sqs.create_queue(
        QueueName="plain",
        Attributes={
            "VisibilityTimeout": "7",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
        },
    )["QueueUrl"]
    fifo = sqs.create_queue(
        QueueName="ordered.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    for i in range(5):
        sqs.send_message(QueueUrl=plain, MessageBody=f"m{i}")
        sqs.send_message(QueueUrl=fifo, MessageBody=f"m{i}", MessageGroupId="g")
    sqs.receive_message(QueueUrl=plain, MaxNumberOfMessages=2)
    backend = sqs_backends["123456789012"]["us-east-1"]
    return [backend.get_queue(name) for name in ("dlq", "plain", "ordered.fifo")]


@mock_aws
def test_queue_attributes_are_moto_s_whatever_the_queue():
    for queue in _queues():
        original = MOTO_QUEUE_ATTRIBUTES.fget(queue)
        shim = QueueAttributes(queue)
        assert dict(shim) == original
        assert list(shim) == list(original)
        assert shim.get("ContentBasedDeduplication") == original.get("ContentBasedDeduplication")
        assert ("RedrivePolicy" in shim) == ("RedrivePolicy" in original)
        assert shim.get("NoSuchAttribute") is None


@mock_aws
def test_the_retention_check_agrees_with_moto_s():
    _queues()
    backend = sqs_backends["123456789012"]["us-east-1"]
    queue = backend.get_queue("plain")
    for message in queue._messages:
        assert retention_check(backend, "plain", message) == MOTO_RETENTION_CHECK(backend, "plain", message)
        message.sent_timestamp -= 5 * 86400 * 1000  # older than the 4-day default retention
        assert retention_check(backend, "plain", message) is False
        assert MOTO_RETENTION_CHECK(backend, "plain", message) is False
