"""Create the local cloud's tables, buckets and queues from the same definitions as the CDK app."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from hemera import aws
from hemera.config import AwsTarget, RuntimeSettings
from hemera.definitions import BUCKETS, EVENT_BUS, QUEUES, TABLES, QueueDef, TableDef


@dataclass(frozen=True, slots=True)
class QueueUrls:
    queue: str
    dlq: str


def _create_table(ddb: Any, table: TableDef) -> None:
    keys = [{"AttributeName": table.partition_key, "KeyType": "HASH"}]
    attrs = [{"AttributeName": table.partition_key, "AttributeType": "S"}]
    if table.sort_key:
        keys.append({"AttributeName": table.sort_key, "KeyType": "RANGE"})
        attrs.append({"AttributeName": table.sort_key, "AttributeType": "S"})
    with contextlib.suppress(ddb.exceptions.ResourceInUseException):
        # idempotent: an existing table is kept
        ddb.create_table(
            TableName=table.local_name,
            KeySchema=keys,
            AttributeDefinitions=attrs,
            BillingMode="PAY_PER_REQUEST",
        )


def _create_queue(sqs: Any, queue: QueueDef) -> QueueUrls:
    dlq_url = sqs.create_queue(QueueName=queue.dlq_local_name)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=queue.local_name,
        Attributes={
            "VisibilityTimeout": str(queue.visibility_timeout_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return QueueUrls(url, dlq_url)


def create_resources(target: AwsTarget) -> dict[str, QueueUrls]:
    """Create every table, bucket, event bus and queue (idempotent); returns queue URLs by name."""
    ddb = aws.client(target, "dynamodb")
    for table in TABLES:
        _create_table(ddb, table)
    s3 = aws.client(target, "s3")
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket.local_name)
    events = aws.client(target, "events")
    if not any(b["Name"] == EVENT_BUS.local_name for b in events.list_event_buses()["EventBuses"]):
        events.create_event_bus(Name=EVENT_BUS.local_name)
    sqs = aws.client(target, "sqs")
    return {q.local_name: _create_queue(sqs, q) for q in QUEUES}


def local_settings(target: AwsTarget) -> RuntimeSettings:
    return RuntimeSettings.local(target)
