"""The billing construct: the hourly "exports due" and 15-minute "restatements" schedules, the
FinalDaysChanged rule → queue (+DLQ) and the ExportRequested rule → requests queue (+DLQ) →
billing_exports function, and least privilege for it and for the portal API's export routes
(objects under tenants/*/exports/* only; the portal reads them, puts only ExportRequested)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from hemera.definitions import (
    BILLING_EXPORTS_FUNCTION,
    BILLING_SOURCE,
    EXPORT_REQUESTED,
    EXPORT_REQUESTS_CONCURRENCY,
    EXPORT_REQUESTS_QUEUE,
    EXPORTS_DUE_SCHEDULE,
    READINGS_TABLE,
    RESTATEMENTS_SCHEDULE,
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


def test_export_requests_reach_their_own_queue_and_the_function_takes_one_at_a_time(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    billing = hemera_stack.billing
    queue = logical_id(billing.requests_queue)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventBusName": {"Ref": logical_id(hemera_stack.storage.event_bus)},
            "EventPattern": {"source": [BILLING_SOURCE], "detail-type": [EXPORT_REQUESTED]},
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [queue, "Arn"]},
                        "DeadLetterConfig": {
                            "Arn": {"Fn::GetAtt": [logical_id(billing.requests_dead_letter_queue), "Arn"]}
                        },
                    }
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue, "Arn"]},
            "FunctionName": {"Ref": logical_id(billing.function)},
            "BatchSize": 1,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            # the parts of a large version render side by side, ten at a time
            "ScalingConfig": {"MaximumConcurrency": EXPORT_REQUESTS_CONCURRENCY},
        },
    )
    # A render may take the function's whole timeout: SQS hides the message six times as long,
    # and the third failed receive (the last attempt, which marks the export failed) is the last.
    properties = template.find_resources("AWS::SQS::Queue")[queue]["Properties"]
    assert properties["VisibilityTimeout"] == 6 * BILLING_EXPORTS_FUNCTION.timeout_s
    assert properties["RedrivePolicy"]["maxReceiveCount"] == EXPORT_REQUESTS_QUEUE.max_receive_count


def test_the_restatements_job_runs_every_15_minutes_on_the_billing_function(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    assert RESTATEMENTS_SCHEDULE.expression == "rate(15 minutes)"
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(15 minutes)",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [logical_id(hemera_stack.billing.function), "Arn"]},
                        "Input": json.dumps({"job": "restatements"}, separators=(",", ":")),
                    }
                )
            ],
        },
    )


def test_the_function_writes_export_objects_and_the_portal_only_reads_them(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    bucket = logical_id(hemera_stack.billing.bucket)
    expected = {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/tenants/*/exports/*"]]}
    for role, actions in (
        (hemera_stack.billing.function.role, {"s3:GetObject", "s3:PutObject"}),
        # The portal renders nothing: it signs download URLs (GetObject) and no more.
        (hemera_stack.portal_api.role, {"s3:GetObject"}),
    ):
        statements = _statements(template, role, logical_id)
        objects = _export_object_statements(statements)
        assert [s["Resource"] for s in objects] == [expected], role
        assert {a for s in objects for a in _actions(s)} == actions
        assert not any("s3:DeleteObject" in _actions(s) or _actions(s) == {"s3:*"} for s in statements)
    function_statements = _statements(template, hemera_stack.billing.function.role, logical_id)
    assert any("events:PutEvents" in _actions(s) for s in function_statements)


def test_the_function_records_parts_with_conditional_updates_of_the_readings_table(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    # A version in parts: each part is recorded with UpdateItem (ADD to the set of parts done, on
    # condition), and the part messages are put on the bus by the function itself.
    table = logical_id(hemera_stack.storage.table(READINGS_TABLE))
    statements = _statements(template, hemera_stack.billing.function.role, logical_id)
    on_table = [
        s
        for s in statements
        if any(isinstance(r, dict) and r.get("Fn::GetAtt", [None])[0] == table for r in _resources(s))
    ]
    assert "dynamodb:UpdateItem" in {a for s in on_table for a in _actions(s)}
    assert not any("dynamodb:DeleteItem" in _actions(s) or "dynamodb:*" in _actions(s) for s in on_table)


def _resources(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def test_the_portal_may_put_only_export_requested_for_its_export_routes(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    statements = _statements(template, hemera_stack.portal_api.role, logical_id)
    bus_arn = {"Fn::GetAtt": [logical_id(hemera_stack.storage.event_bus), "Arn"]}
    requests = [
        s
        for s in statements
        if s.get("Condition", {}).get("StringEquals", {}).get("events:source") == BILLING_SOURCE
    ]
    assert requests == [
        {
            "Action": "events:PutEvents",
            "Effect": "Allow",
            "Resource": bus_arn,
            "Condition": {
                "StringEquals": {"events:source": BILLING_SOURCE, "events:detail-type": EXPORT_REQUESTED}
            },
        }
    ]
