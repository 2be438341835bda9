"""The command sweeps in the CDK app: two schedules (re-reads hourly, expiry every 15 minutes) on one
function that may publish only on the RTUs' command topics."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from hemera.definitions import COMMAND_SCHEDULES
from hemera_infra.stack import HemeraStack


def _statements(template: Template, hemera_stack: HemeraStack, logical_id: Any) -> list[dict[str, Any]]:
    role = hemera_stack.command_sweeps.function.role
    assert role is not None
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(role)}]}}
    )
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_each_command_schedule_fires_the_sweeps_function_with_its_job(template, hemera_stack, logical_id):
    function_id = logical_id(hemera_stack.command_sweeps.function)
    for schedule in COMMAND_SCHEDULES:
        template.has_resource_properties(
            "AWS::Events::Rule",
            {
                "ScheduleExpression": schedule.expression,
                "Targets": [
                    Match.object_like(
                        {
                            "Arn": {"Fn::GetAtt": [function_id, "Arn"]},
                            "Input": Match.serialized_json(schedule.payload),
                        }
                    )
                ],
            },
        )
    assert {s.expression for s in COMMAND_SCHEDULES} == {"rate(60 minutes)", "rate(15 minutes)"}


def test_the_sweeps_publish_only_on_command_topics(template, hemera_stack, logical_id):
    statements = _statements(template, hemera_stack, logical_id)
    publish = [s for s in statements if s["Action"] == "iot:Publish"]
    assert len(publish) == 1
    assert publish[0]["Resource"]["Fn::Join"][1][-1].endswith(":topic/hemera/*/*/down/cmd")
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "events:PutEvents" in actions
    assert "dynamodb:DeleteItem" in actions  # forgetting closed gaps, open-command pointers
    assert not any(a.startswith("s3:") for a in actions)
