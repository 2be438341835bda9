"""The portal API's tenant data role: only the portal's role may assume it, the function is told
its ARN, and its own permissions (the most a tenant session may have) stop at the readings table
and reading the exports bucket."""

from __future__ import annotations

from aws_cdk.assertions import Template

from hemera.config import TENANT_ROLE_ENV_VAR
from hemera.definitions import (
    ALARM_CHANGED,
    ALARMS_SOURCE,
    BILLING_SOURCE,
    EXPORT_REQUESTED,
    EXPORTS_BUCKET,
    READINGS_TABLE,
    SERIES_VALIDATED,
    VEE_SOURCE,
)
from hemera_infra.stack import HemeraStack


def _actions(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def test_only_the_portal_role_assumes_the_tenant_data_role(
    template: Template, hemera_stack: HemeraStack, logical_id
):
    portal = hemera_stack.portal_api
    role = template.find_resources("AWS::IAM::Role")[logical_id(portal.tenant_data_role)]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Fn::GetAtt": [logical_id(portal.role), "Arn"]}}
    assert role["MaxSessionDuration"] == 3600
    portal_policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(portal.role)}]}}
    )
    assume = [
        s
        for p in portal_policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "sts:AssumeRole" in _actions(s)
    ]
    assert [s["Resource"] for s in assume] == [{"Fn::GetAtt": [logical_id(portal.tenant_data_role), "Arn"]}]
    (api_function,) = template.find_resources("AWS::Serverless::Function").values()
    variables = api_function["Properties"]["Environment"]["Variables"]
    assert variables[TENANT_ROLE_ENV_VAR] == {"Fn::GetAtt": [logical_id(portal.tenant_data_role), "Arn"]}


def test_the_tenant_data_role_reaches_only_the_readings_table_and_the_exports_bucket(
    template: Template, hemera_stack: HemeraStack, logical_id
):
    role_id = logical_id(hemera_stack.portal_api.tenant_data_role)
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    readings = logical_id(hemera_stack.storage.table(READINGS_TABLE))
    exports = logical_id(hemera_stack.storage.bucket(EXPORTS_BUCKET))
    text = str(statements)
    assert readings in text and exports in text
    writes_to_s3 = [
        a for s in statements for a in _actions(s) if a.startswith("s3:Put") or a.startswith("s3:Delete")
    ]
    assert writes_to_s3 == []
    for other in hemera_stack.storage.buckets.values():
        if other is not hemera_stack.storage.bucket(EXPORTS_BUCKET):
            assert logical_id(other) not in text


def test_the_portal_puts_only_its_own_kinds_of_event_on_the_bus(
    template: Template, hemera_stack: HemeraStack, logical_id
):
    """The portal publishes with its own role (a tenant session may not): an acknowledgement, an
    edit's new final days, an export request — each statement conditioned on exactly one source
    and detail type, so the API cannot pass off another capability's events."""
    portal = hemera_stack.portal_api
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(portal.role)}]}}
    )
    put_events = [
        s
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "events:PutEvents" in _actions(s)
    ]
    kinds = {
        (
            s["Condition"]["StringEquals"]["events:source"],
            s["Condition"]["StringEquals"]["events:detail-type"],
        )
        for s in put_events
    }
    assert kinds == {
        (ALARMS_SOURCE, ALARM_CHANGED),
        (VEE_SOURCE, SERIES_VALIDATED),
        (BILLING_SOURCE, EXPORT_REQUESTED),
    }
    assert all(_actions(s) == ["events:PutEvents"] for s in put_events)
    bus = {"Fn::GetAtt": [logical_id(hemera_stack.storage.event_bus), "Arn"]}
    assert all(s["Resource"] == bus for s in put_events)
