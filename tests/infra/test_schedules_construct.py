"""The schedules construct turns each ScheduleDef into an EventBridge rule on its function.

SCHEDULES is empty today, so the construct is exercised with a made-up definition in a stack of
its own (no Chalice packaging needed).
"""

from __future__ import annotations

from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from hemera.definitions import FunctionDef, ScheduleDef
from hemera_infra.function_catalog import FunctionCatalog
from hemera_infra.schedules import Schedules

SWEEP_FUNCTION = FunctionDef(name="vee_sweep", code_dir="translate", handler="handler.lambda_handler")
SWEEP = ScheduleDef(name="vee_sweep", rate_minutes=15, function=SWEEP_FUNCTION, payload={"job": "vee"})


def _synth(*schedules: ScheduleDef) -> tuple[Template, Stack, FunctionCatalog]:
    stack = Stack(App(context={"aws:cdk:bundling-stacks": []}), "ScheduleTest")
    layer = lambda_.LayerVersion.from_layer_version_arn(
        stack, "Layer", "arn:aws:lambda:us-east-1:123456789012:layer:hemera:1"
    )
    functions = FunctionCatalog(stack, "Functions", layer=layer)
    Schedules(stack, "Schedules", functions=functions, schedules=schedules)
    return Template.from_stack(stack), stack, functions


def test_one_schedule_creates_a_rate_rule_targeting_its_function() -> None:
    template, stack, functions = _synth(SWEEP)

    template.resource_count_is("AWS::Events::Rule", 1)
    function_id = stack.resolve(stack.get_logical_id(functions.function(SWEEP_FUNCTION).node.default_child))
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(15 minutes)",
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [function_id, "Arn"]},
                        "Input": Match.serialized_json({"job": "vee"}),
                        "RetryPolicy": {"MaximumRetryAttempts": 2},
                    }
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Permission", {"Principal": "events.amazonaws.com", "Action": "lambda:InvokeFunction"}
    )


def test_schedules_sharing_a_function_build_it_once() -> None:
    hourly = ScheduleDef(name="vee_hourly", rate_minutes=60, function=SWEEP_FUNCTION)
    template, _, _ = _synth(SWEEP, hourly)

    template.resource_count_is("AWS::Events::Rule", 2)
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(60 minutes)"})


def test_no_schedules_no_rules() -> None:
    template, _, _ = _synth()

    template.resource_count_is("AWS::Events::Rule", 0)
    template.resource_count_is("AWS::Lambda::Function", 0)
