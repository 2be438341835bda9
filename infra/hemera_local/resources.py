"""Create the local cloud's tables, buckets, queues and event rules from the same definitions as
the CDK app."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from hemera import aws
from hemera.config import AwsTarget, RuntimeSettings
from hemera.definitions import (
    BUCKETS,
    EVENT_BUS,
    EVENT_RULES,
    QUEUES,
    TABLES,
    EventRuleDef,
    QueueDef,
    TableDef,
)


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


def _create_event_rule(events: Any, sqs: Any, rule: EventRuleDef, queue_url: str) -> None:
    """The rule on the platform bus with its queue as target; moto's EventBridge delivers the
    matching events to SQS as AWS does (the body is the whole event). PutRule and PutTargets
    replace what exists, so this is idempotent."""
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name=rule.name,
        EventBusName=EVENT_BUS.local_name,
        EventPattern=json.dumps(rule.pattern),
        State="ENABLED",
    )
    events.put_targets(
        Rule=rule.name,
        EventBusName=EVENT_BUS.local_name,
        Targets=[{"Id": rule.queue.local_name, "Arn": queue_arn}],
    )


def create_resources(target: AwsTarget) -> dict[str, QueueUrls]:
    """Create every table, bucket, event bus, queue and event rule (idempotent); returns queue URLs
    by name."""
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
    queues = {q.local_name: _create_queue(sqs, q) for q in QUEUES}
    for rule in EVENT_RULES:
        _create_event_rule(events, sqs, rule, queues[rule.queue.local_name].queue)
    return queues


def local_settings(target: AwsTarget) -> RuntimeSettings:
    return RuntimeSettings.local(target)
