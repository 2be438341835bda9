"""The alarms construct: four rules on the platform bus → the alarms queue (+DLQ) → the alarms
function (its own Lambda, batches with partial failures), the sweep schedule, and least
privilege (the readings table and PutEvents; the portal may acknowledge)."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from hemera.definitions import (
    ALARM_EVENT_RULES,
    ALARM_QUEUE,
    ALARM_SWEEP,
    ALARMS_FUNCTION,
    METER_EVENTS_RECORDED,
    READS_EXHAUSTED,
    SERIES_CHANGED,
    SERIES_VALIDATED,
)
from hemera_infra.constants import ALARMS_TABLE_ACTIONS
from hemera_infra.stack import HemeraStack


def _statements(template: Template, logical_id: Any, role: Any) -> list[dict[str, Any]]:
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(role)}]}}
    )
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def test_each_alarm_input_has_a_rule_to_the_alarms_queue(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    alarms = hemera_stack.alarms
    assert {r.detail_type for r in ALARM_EVENT_RULES} == {
        METER_EVENTS_RECORDED,
        SERIES_CHANGED,
        SERIES_VALIDATED,
        READS_EXHAUSTED,
    }
    for rule in ALARM_EVENT_RULES:
        template.has_resource_properties(
            "AWS::Events::Rule",
            {
                "EventBusName": {"Ref": logical_id(hemera_stack.storage.event_bus)},
                "EventPattern": {"source": [rule.source], "detail-type": [rule.detail_type]},
                "Targets": [
                    Match.object_like(
                        {
                            "Arn": {"Fn::GetAtt": [logical_id(alarms.queue), "Arn"]},
                            "DeadLetterConfig": {
                                "Arn": {"Fn::GetAtt": [logical_id(alarms.dead_letter_queue), "Arn"]}
                            },
                        }
                    )
                ],
            },
        )


def test_the_alarms_function_reads_its_queue_in_batches_with_partial_failures(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    function = hemera_stack.alarms.function
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": ALARMS_FUNCTION.handler,
            "MemorySize": ALARMS_FUNCTION.memory_mb,
            "Timeout": ALARMS_FUNCTION.timeout_s,
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": logical_id(function)},
            "EventSourceArn": {"Fn::GetAtt": [logical_id(hemera_stack.alarms.queue), "Arn"]},
            "BatchSize": ALARM_QUEUE.batch_size,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"VisibilityTimeout": ALARM_QUEUE.visibility_timeout_s, "RedrivePolicy": Match.any_value()},
    )


def test_the_sweep_schedule_invokes_the_alarms_function_with_its_job(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(5 minutes)",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [logical_id(hemera_stack.alarms.function), "Arn"]},
                        "Input": '{"job":"alarm_sweep"}',
                    }
                )
            ],
        },
    )
    assert ALARM_SWEEP.expression == "rate(5 minutes)"


def test_least_privilege_table_actions_and_put_events(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    role = hemera_stack.alarms.function.role
    statements = _statements(template, logical_id, role)
    granted = set().union(*(_actions(s) for s in statements))
    assert set(ALARMS_TABLE_ACTIONS) <= granted
    assert "events:PutEvents" in granted
    assert not {"dynamodb:Scan", "dynamodb:DeleteTable", "dynamodb:*", "s3:*"} & granted
    portal = _statements(template, logical_id, hemera_stack.portal_api.role)
    assert "dynamodb:ConditionCheckItem" in set().union(*(_actions(s) for s in portal))
