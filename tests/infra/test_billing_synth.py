"""The billing construct: the hourly "exports due" schedule and the FinalDaysChanged rule → queue
(+DLQ) → billing_exports function, the tenants' export schedules in its environment, and least
privilege for it and for the portal API's export routes (objects under tenants/*/exports/* only)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from hemera.definitions import (
    BILLING_EXPORTS_FUNCTION,
    EXPORTS_DUE_SCHEDULE,
    SERIES_VALIDATED,
    VEE_SOURCE,
)
from hemera_infra.stack import HemeraStack


def _statements(template: Template, role: Any, logical_id: Any) -> list[dict[str, Any]]:
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(role)}]}}
    )
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def _export_object_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if _actions(s) & {"s3:GetObject", "s3:PutObject"}]


def test_final_days_changed_reach_the_billing_queue_and_the_function_reads_it_in_batches(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    billing = hemera_stack.billing
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventBusName": {"Ref": logical_id(hemera_stack.storage.event_bus)},
            "EventPattern": {"source": [VEE_SOURCE], "detail-type": [SERIES_VALIDATED]},
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [logical_id(billing.queue), "Arn"]},
                        "DeadLetterConfig": {
                            "Arn": {"Fn::GetAtt": [logical_id(billing.dead_letter_queue), "Arn"]}
                        },
                    }
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [logical_id(billing.queue), "Arn"]},
            "FunctionName": {"Ref": logical_id(billing.function)},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumBatchingWindowInSeconds": 30,
        },
    )


def test_the_hourly_exports_due_schedule_invokes_the_billing_function_with_its_job(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    assert EXPORTS_DUE_SCHEDULE.expression == "rate(60 minutes)"
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(60 minutes)",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [logical_id(hemera_stack.billing.function), "Arn"]},
                        "Input": json.dumps({"job": "exports_due"}, separators=(",", ":")),
                    }
                )
            ],
        },
    )


def test_the_schedules_are_not_in_the_functions_environment(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    # They are read from the readings table at each run: Lambda's 4 KB of environment would not
    # hold the schedules of many tenants, and a new tenant would need a redeploy.
    function = template.find_resources("AWS::Lambda::Function")[logical_id(hemera_stack.billing.function)]
    variables = function["Properties"]["Environment"]["Variables"]
    assert not any("SCHEDULE" in name for name in variables)
    assert function["Properties"]["Timeout"] == BILLING_EXPORTS_FUNCTION.timeout_s


def test_the_function_and_the_portal_reach_export_objects_only(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    bucket = logical_id(hemera_stack.billing.bucket)
    expected = {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/tenants/*/exports/*"]]}
    for role in (hemera_stack.billing.function.role, hemera_stack.portal_api.role):
        statements = _statements(template, role, logical_id)
        objects = _export_object_statements(statements)
        assert [s["Resource"] for s in objects] == [expected], role
        assert {a for s in objects for a in _actions(s)} == {"s3:GetObject", "s3:PutObject"}
        assert not any("s3:DeleteObject" in _actions(s) or _actions(s) == {"s3:*"} for s in statements)
        assert any("events:PutEvents" in _actions(s) for s in statements)
