"""CDK: the RTUs' `up/events` reach translate through the telemetry queue, and translate may write
device events, outages, registers and activity (readings table) and put `MeterEventsRecorded`
on the platform bus."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_cdk.assertions import Match, Template

from hemera.definitions import RTU_EVENTS_RULE, TELEMETRY_QUEUE, TRANSLATE_FUNCTION
from hemera_infra.stack import HemeraStack

LogicalId = Callable[[Any], str]


def test_the_rtu_events_rule_reads_up_events_into_the_telemetry_queue(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId
) -> None:
    queue_id = logical_id(hemera_stack.ingest.queue(TELEMETRY_QUEUE))
    template.has_resource_properties(
        "AWS::IoT::TopicRule",
        {
            "RuleName": "hemera_rtu_events",
            "TopicRulePayload": Match.object_like(
                {
                    "Sql": "SELECT encode(*, 'base64') AS payload, topic() AS mqtt_topic "
                    "FROM 'hemera/+/+/up/events'",
                    "Actions": [{"Sqs": Match.object_like({"QueueUrl": {"Ref": queue_id}})}],
                }
            ),
        },
    )
    assert RTU_EVENTS_RULE.function == TRANSLATE_FUNCTION


def test_translate_may_update_and_delete_items_and_put_events_on_the_platform_bus(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId
) -> None:
    function = hemera_stack.functions.function(TRANSLATE_FUNCTION)
    assert function.role is not None
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(function.role)}]}}
    )
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    # Activity is a conditional UpdateItem, events a conditional PutItem checked by BatchGetItem,
    # replaced outages a BatchWriteItem delete.
    assert {
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
    } <= actions
    put_events = [s for s in statements if s["Action"] == "events:PutEvents"]
    bus = logical_id(hemera_stack.storage.event_bus)
    assert put_events and bus in json.dumps(put_events)
