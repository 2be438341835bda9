"""The VEE construct: MeterDaysChanged rule → queue (+DLQ) → vee function in partial batches, the
nightly sweep schedule, least-privilege grants (readings table, PutEvents on the bus) and what the
portal API needs to run VEE on operators' edits."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from hemera.definitions import (
    EVENT_BUS,
    READINGS_TABLE,
    SERIES_CHANGED,
    VEE_FUNCTION,
    VEE_QUEUE,
    VEE_SWEEP_SCHEDULE,
)
from hemera.services.vee import SWEEP_JOB
from hemera_infra.stack import HemeraStack


def _statements(template: Template, logical_id: Any, role: Any) -> list[dict[str, Any]]:
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(role)}]}}
    )
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def test_meter_day_changes_reach_the_vee_queue_through_a_rule_on_the_platform_bus(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    vee = hemera_stack.vee
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventBusName": {"Ref": logical_id(hemera_stack.storage.event_bus)},
            "EventPattern": {"source": [EVENT_BUS.source], "detail-type": [SERIES_CHANGED]},
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [logical_id(vee.queue), "Arn"]},
                        "DeadLetterConfig": {
                            "Arn": {"Fn::GetAtt": [logical_id(vee.dead_letter_queue), "Arn"]}
                        },
                    }
                )
            ],
        },
    )


def test_the_vee_queue_feeds_the_function_in_partial_batches_and_redrives_to_its_dlq(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    vee = hemera_stack.vee
    queue = template.find_resources("AWS::SQS::Queue")[logical_id(vee.queue)]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == VEE_QUEUE.max_receive_count
    assert queue["VisibilityTimeout"] >= 6 * VEE_FUNCTION.timeout_s + VEE_QUEUE.batch_window_s
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [logical_id(vee.queue), "Arn"]},
            "FunctionName": {"Ref": logical_id(vee.function)},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": VEE_QUEUE.batch_size,
        },
    )
    function = template.find_resources("AWS::Lambda::Function")[logical_id(vee.function)]["Properties"]
    assert (function["Handler"], function["Timeout"]) == (VEE_FUNCTION.handler, VEE_FUNCTION.timeout_s)
    # The tenants' VEE overrides are read from the readings table, not the environment (whose
    # 4 KB would not hold many tenants', and would need a redeploy per tenant)
    assert not any("VEE" in name for name in function.get("Environment", {}).get("Variables", {}))


def test_the_nightly_sweep_invokes_the_vee_function_with_its_job(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": VEE_SWEEP_SCHEDULE.expression,
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [logical_id(hemera_stack.vee.function), "Arn"]},
                        "Input": Match.serialized_json({"job": SWEEP_JOB}),
                    }
                )
            ],
        },
    )
    assert VEE_SWEEP_SCHEDULE.expression == "rate(1440 minutes)"


def test_vee_reads_and_writes_the_readings_table_and_puts_events_on_the_bus_only(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    role = hemera_stack.vee.function.role
    statements = _statements(template, logical_id, role)
    actions = _actions(statements)
    assert {a for a in actions if a.startswith("dynamodb:")} == {
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
    }
    table = logical_id(hemera_stack.storage.table(READINGS_TABLE))
    dynamo = [s for s in statements if "dynamodb:PutItem" in json.dumps(s["Action"])]
    assert all(table in json.dumps(s["Resource"]) for s in dynamo)
    (put_events,) = [s for s in statements if s["Action"] == "events:PutEvents"]
    assert put_events["Resource"] == {"Fn::GetAtt": [logical_id(hemera_stack.storage.event_bus), "Arn"]}
    assert not actions & {"dynamodb:Scan", "dynamodb:DeleteItem", "s3:PutObject", "s3:GetObject"}


def test_the_portal_api_may_store_edits_and_announce_their_new_versions(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    actions = _actions(_statements(template, logical_id, hemera_stack.portal_api.role))
    assert {"dynamodb:BatchWriteItem", "dynamodb:PutItem", "events:PutEvents"} <= actions
