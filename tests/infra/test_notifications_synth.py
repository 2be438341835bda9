"""The notifications construct: AlarmChanged/ExportWritten rules → events queue (+DLQ) → notify;
deliveries queue (+DLQ) → deliver; least privilege (sns:Publish only on tenant topics, the tenant
signing secrets read-only, send to the deliveries queue)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from hemera.definitions import (
    ALARM_CHANGED,
    ALARMS_SOURCE,
    API_KEYS_TABLE,
    BILLING_SOURCE,
    BUCKETS,
    DELIVER_FUNCTION,
    EXPORT_WRITTEN,
    NOTIFY_DELIVERIES_QUEUE,
    NOTIFY_EVENTS_QUEUE,
    NOTIFY_FUNCTION,
    READINGS_TABLE,
)
from hemera.services.notifications import TOPIC_ARN_PREFIX_ENV_VAR
from hemera_infra.stack import HemeraStack


def _statements(
    template: Template, hemera_stack: HemeraStack, logical_id: Any, function: Any
) -> list[dict[str, Any]]:
    assert function.role is not None
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(function.role)}]}}
    )
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def _joined(value: Any) -> str:
    """An ARN written with Fn::Join, pseudo parameters as <AWS::...>."""
    if isinstance(value, str):
        return value
    return "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in value["Fn::Join"][1])


def test_alarm_and_export_events_are_routed_to_the_notify_queue(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    notifications = hemera_stack.notifications
    queue = {"Fn::GetAtt": [logical_id(notifications.events_queue), "Arn"]}
    dlq = {"Fn::GetAtt": [logical_id(notifications.events_dead_letter_queue), "Arn"]}
    for source, detail_type in ((ALARMS_SOURCE, ALARM_CHANGED), (BILLING_SOURCE, EXPORT_WRITTEN)):
        template.has_resource_properties(
            "AWS::Events::Rule",
            {
                "EventBusName": {"Ref": logical_id(hemera_stack.storage.event_bus)},
                "EventPattern": {"source": [source], "detail-type": [detail_type]},
                "Targets": [Match.object_like({"Arn": queue, "DeadLetterConfig": {"Arn": dlq}})],
            },
        )


def test_both_queues_have_dlqs_and_feed_their_functions_in_partial_batches(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    n = hemera_stack.notifications
    queues = template.find_resources("AWS::SQS::Queue")
    for queue, dlq, definition, function, concurrency in (
        (n.events_queue, n.events_dead_letter_queue, NOTIFY_EVENTS_QUEUE, n.notify_function, 2),
        (n.deliveries_queue, n.deliveries_dead_letter_queue, NOTIFY_DELIVERIES_QUEUE, n.deliver_function, 10),
    ):
        properties = queues[logical_id(queue)]["Properties"]
        assert properties["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [logical_id(dlq), "Arn"]},
            "maxReceiveCount": definition.max_receive_count,
        }
        assert properties["SqsManagedSseEnabled"] is True
        template.has_resource_properties(
            "AWS::Lambda::EventSourceMapping",
            {
                "EventSourceArn": {"Fn::GetAtt": [logical_id(queue), "Arn"]},
                "FunctionName": {"Ref": logical_id(function)},
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "BatchSize": definition.batch_size,
                "ScalingConfig": {"MaximumConcurrency": concurrency},
            },
        )
    # Lambda's SQS event source asks for a visibility timeout of six times the function's timeout.
    assert (
        queues[logical_id(n.deliveries_queue)]["Properties"]["VisibilityTimeout"]
        >= 6 * DELIVER_FUNCTION.timeout_s
    )


def test_both_functions_know_the_deliveries_queue_and_the_topic_arn_prefix(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    n = hemera_stack.notifications
    functions = template.find_resources("AWS::Lambda::Function")
    for function, definition in (
        (n.notify_function, NOTIFY_FUNCTION),
        (n.deliver_function, DELIVER_FUNCTION),
    ):
        properties = functions[logical_id(function)]["Properties"]
        assert properties["Handler"] == definition.handler
        variables = properties["Environment"]["Variables"]
        assert variables[NOTIFY_DELIVERIES_QUEUE.env_var] == {"Ref": logical_id(n.deliveries_queue)}
        assert (
            _joined(variables[TOPIC_ARN_PREFIX_ENV_VAR])
            == "arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:"
        )


def test_deliver_publishes_only_to_tenant_topics_and_reads_only_tenant_signing_secrets(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    n = hemera_stack.notifications
    statements = _statements(template, hemera_stack, logical_id, n.deliver_function)
    (publish,) = [s for s in statements if s["Action"] == "sns:Publish"]
    assert _joined(publish["Resource"]) == (
        "arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:hemera-tenant-*-notifications"
    )
    (secret,) = [s for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]
    assert _joined(secret["Resource"]) == (
        "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:"
        "hemera/tenants/*/webhook-signing-*"
    )
    actions = _actions(statements)
    assert {a for a in actions if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    assert "sqs:SendMessage" in actions
    assert not actions & {
        "sns:*",
        "secretsmanager:*",
        "sns:CreateTopic",
        "secretsmanager:CreateSecret",
        "dynamodb:Scan",
    }
    document = json.dumps(statements)
    assert logical_id(hemera_stack.storage.table(API_KEYS_TABLE)) not in document
    for bucket in BUCKETS:
        assert logical_id(hemera_stack.storage.bucket(bucket)) not in document


def test_notify_only_reads_channels_and_sends_deliveries(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    n = hemera_stack.notifications
    statements = _statements(template, hemera_stack, logical_id, n.notify_function)
    actions = _actions(statements)
    assert {a for a in actions if a.startswith("dynamodb:")} == {"dynamodb:GetItem"}
    assert not any(a.startswith(("sns:", "secretsmanager:")) for a in actions)
    (send,) = [s for s in statements if "sqs:SendMessage" in _actions([s])]
    assert send["Resource"] == {"Fn::GetAtt": [logical_id(n.deliveries_queue), "Arn"]}
    table = logical_id(hemera_stack.storage.table(READINGS_TABLE))
    (read,) = [s for s in statements if "dynamodb:GetItem" in _actions([s])]
    assert table in json.dumps(read["Resource"])
