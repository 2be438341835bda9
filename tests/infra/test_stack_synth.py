"""The synthesized Hemera stack holds what the resource definitions declare, wired as designed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from hemera.definitions import (
    BUCKETS,
    EVENT_BUS,
    EVENT_RULES,
    EXPORTS_BUCKET,
    QUARANTINE_BUCKET,
    QUEUE_CONSUMERS,
    RAW_BUCKET,
    READINGS_TABLE,
    SCHEDULES,
    TABLES,
    TOPIC_RULES,
    TableDef,
    TopicRule,
)
from hemera_infra.stack import HemeraStack

LogicalId = Callable[[Any], str]

RULE_QUEUES = {rule.queue for rule in TOPIC_RULES}
RULE_FUNCTIONS = {rule.function for rule in TOPIC_RULES}


def test_resource_counts_follow_the_definitions(template: Template) -> None:
    # Given the definitions, when the stack is synthesized, then each resource exists once.
    expected = {
        "AWS::DynamoDB::Table": len(TABLES),
        "AWS::S3::Bucket": len(BUCKETS),
        "AWS::SQS::Queue": 2 * len({c.queue for c in QUEUE_CONSUMERS}),  # each with its DLQ
        "AWS::IoT::TopicRule": len(TOPIC_RULES),
        # queue consumers and scheduled jobs (a function can be both)
        "AWS::Lambda::Function": len({c.function for c in QUEUE_CONSUMERS} | {s.function for s in SCHEDULES}),
        "AWS::Lambda::EventSourceMapping": len(QUEUE_CONSUMERS),
        "AWS::Lambda::LayerVersion": 2,  # Hemera's, and pyarrow's for the curate function
        "AWS::IoT::Policy": 1,
        "AWS::Events::Rule": len(EVENT_RULES) + len(SCHEDULES),
        "AWS::Serverless::Api": 1,
        "AWS::Serverless::Function": 1,
    }
    for resource_type, count in expected.items():
        template.resource_count_is(resource_type, count)


@pytest.mark.parametrize("rule", TOPIC_RULES, ids=lambda r: r.name)
def test_topic_rule_sends_the_definitions_sql_to_its_queue(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId, rule: TopicRule
) -> None:
    queue_id = logical_id(hemera_stack.ingest.queue(rule.queue))
    template.has_resource_properties(
        "AWS::IoT::TopicRule",
        {
            "RuleName": rule.name,
            "TopicRulePayload": Match.object_like(
                {
                    "Sql": rule.sql,
                    "RuleDisabled": False,
                    "Actions": [{"Sqs": Match.object_like({"QueueUrl": {"Ref": queue_id}})}],
                }
            ),
        },
    )


@pytest.mark.parametrize("rule", TOPIC_RULES, ids=lambda r: r.name)
def test_topic_rule_role_may_only_send_to_its_queue(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId, rule: TopicRule
) -> None:
    queue_id = logical_id(hemera_stack.ingest.queue(rule.queue))
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "sqs:SendMessage",
                            "Effect": "Allow",
                            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
                        }
                    ]
                ),
                "Version": "2012-10-17",
            }
        },
    )


@pytest.mark.parametrize("rule", TOPIC_RULES, ids=lambda r: r.name)
def test_queue_redrives_to_its_dlq_after_max_receive_count(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId, rule: TopicRule
) -> None:
    queue = hemera_stack.ingest.queue(rule.queue)
    dlq = queue.dead_letter_queue
    assert dlq is not None
    resources = template.find_resources("AWS::SQS::Queue")
    properties = resources[logical_id(queue)]["Properties"]
    assert properties["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [logical_id(dlq.queue), "Arn"]},
        "maxReceiveCount": rule.queue.max_receive_count,
    }
    assert properties["VisibilityTimeout"] == rule.queue.visibility_timeout_s
    assert properties["SqsManagedSseEnabled"] is True


@pytest.mark.parametrize("rule", TOPIC_RULES, ids=lambda r: r.name)
def test_event_source_reports_partial_batch_failures(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId, rule: TopicRule
) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [logical_id(hemera_stack.ingest.queue(rule.queue)), "Arn"]},
            "FunctionName": {"Ref": logical_id(hemera_stack.functions.function(rule.function))},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": rule.queue.batch_size,
            "MaximumBatchingWindowInSeconds": rule.queue.batch_window_s,
        },
    )


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.construct_id)
def test_table_keys_billing_recovery_and_encryption(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId, table: TableDef
) -> None:
    key_schema = [{"AttributeName": table.partition_key, "KeyType": "HASH"}]
    if table.sort_key:
        key_schema.append({"AttributeName": table.sort_key, "KeyType": "RANGE"})
    resources = template.find_resources("AWS::DynamoDB::Table")
    properties = resources[logical_id(hemera_stack.storage.table(table))]["Properties"]
    assert properties["KeySchema"] == key_schema
    assert {a["AttributeType"] for a in properties["AttributeDefinitions"]} == {"S"}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_readings_table_has_pk_hash_and_sk_range(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ]
        },
    )


def test_every_bucket_blocks_public_access_and_encrypts(template: Template) -> None:
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == len(BUCKETS)
    for bucket in buckets.values():
        properties = bucket["Properties"]
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        ]


def test_every_bucket_denies_plain_http(template: Template) -> None:
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == len(BUCKETS)
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_raw_and_exports_are_versioned_and_raw_goes_to_glacier_ir(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId
) -> None:
    resources = template.find_resources("AWS::S3::Bucket")

    def properties(definition: object) -> dict:
        return resources[logical_id(hemera_stack.storage.bucket(definition))]["Properties"]  # type: ignore[arg-type]

    assert properties(RAW_BUCKET)["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties(EXPORTS_BUCKET)["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "VersioningConfiguration" not in properties(QUARANTINE_BUCKET)
    transitions = [
        t
        for rule in properties(RAW_BUCKET)["LifecycleConfiguration"]["Rules"]
        for t in rule.get("Transitions", [])
    ]
    assert transitions == [{"StorageClass": "GLACIER_IR", "TransitionInDays": 90}]


@pytest.mark.parametrize("rule", TOPIC_RULES, ids=lambda r: r.name)
def test_function_has_layer_and_environment_from_definitions(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId, rule: TopicRule
) -> None:
    storage = hemera_stack.storage
    expected_env = {
        **{t.env_var: {"Ref": logical_id(storage.table(t))} for t in TABLES},
        **{b.env_var: {"Ref": logical_id(storage.bucket(b))} for b in BUCKETS},
        **{q.env_var: {"Ref": logical_id(hemera_stack.ingest.queue(q))} for q in RULE_QUEUES},
        EVENT_BUS.env_var: {"Ref": logical_id(storage.event_bus)},
        "HEMERA_AWS_MODE": "aws",
        "POWERTOOLS_SERVICE_NAME": rule.function.name,
        "POWERTOOLS_METRICS_NAMESPACE": "Hemera",
    }
    functions = template.find_resources("AWS::Lambda::Function")
    function = functions[logical_id(hemera_stack.functions.function(rule.function))]["Properties"]
    assert function["Environment"]["Variables"] == expected_env
    assert function["Layers"] == [{"Ref": logical_id(hemera_stack.layer)}]
    assert function["Handler"] == rule.function.handler
    assert function["Runtime"] == "python3.11"
    assert function["MemorySize"] == rule.function.memory_mb
    assert function["Timeout"] == rule.function.timeout_s


def test_layer_targets_the_function_runtime(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleRuntimes": ["python3.11"], "CompatibleArchitectures": ["x86_64"]},
    )


def test_translate_may_write_readings_and_put_raw_and_quarantine_objects_only(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId
) -> None:
    function = hemera_stack.functions.function(TOPIC_RULES[0].function)
    assert function.role is not None
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(function.role)}]}}
    )
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    s3_statements = [s for s in statements if str(s["Action"]).startswith("s3:")]
    assert {s["Action"] for s in s3_statements} == {"s3:PutObject"}
    document = json.dumps(statements)
    assert "dynamodb:PutItem" in document
    api_keys = logical_id(hemera_stack.storage.table(TABLES[1]))
    assert api_keys not in document  # ingest never touches API keys
    assert logical_id(hemera_stack.storage.bucket(EXPORTS_BUCKET)) not in document


def test_device_policy_uses_thing_policy_variables(template: Template) -> None:
    policies = template.find_resources("AWS::IoT::Policy")
    (policy,) = policies.values()
    document = json.dumps(policy["Properties"]["PolicyDocument"])
    assert ":client/${iot:Connection.Thing.ThingName}" in document
    own_prefix = (
        "hemera/${iot:Connection.Thing.Attributes[tenant]}/${iot:Connection.Thing.Attributes[device]}/*"
    )
    assert f":topic/{own_prefix}" in document
    assert f":topicfilter/{own_prefix}" in document
    assert '"iot:Connection.Thing.IsAttached": "true"' in document


def test_device_policy_allows_nothing_outside_its_own_topics(template: Template) -> None:
    (policy,) = template.find_resources("AWS::IoT::Policy").values()
    actions = {
        action
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert actions == {"iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe"}
    assert "*" not in json.dumps(policy).replace("/*", "")


def test_portal_api_has_layer_environment_and_its_own_role(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId
) -> None:
    portal = hemera_stack.portal_api
    (api_function,) = template.find_resources("AWS::Serverless::Function").values()
    properties = api_function["Properties"]
    assert properties["Layers"] == [{"Ref": logical_id(hemera_stack.layer)}]
    assert properties["Role"] == {"Fn::GetAtt": [logical_id(portal.role), "Arn"]}
    variables = properties["Environment"]["Variables"]
    for table in TABLES:
        assert variables[table.env_var] == {"Ref": logical_id(hemera_stack.storage.table(table))}
    for bucket in BUCKETS:
        assert variables[bucket.env_var] == {"Ref": logical_id(hemera_stack.storage.bucket(bucket))}
    assert variables["HEMERA_AWS_MODE"] == "aws"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "portal-api"  # from .chalice/config.json
    assert properties["Runtime"] == "python3.11"


def test_portal_api_role_writes_only_the_readings_table_and_exports_and_publishes_only_commands(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId
) -> None:
    role_id = logical_id(hemera_stack.portal_api.role)
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]

    def actions(statement: dict) -> list[str]:
        return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]

    dynamodb_actions = {a for s in statements for a in actions(s) if a.startswith("dynamodb:")}
    assert {"dynamodb:GetItem", "dynamodb:Query"} <= dynamodb_actions
    # Writes (commands and their open pointers, edits, on-demand exports' index, rate windows) go
    # to the readings table alone
    readings = logical_id(hemera_stack.storage.table(READINGS_TABLE))
    write_actions = {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    }
    writes = [s for s in statements if write_actions & set(actions(s))]
    assert writes and all(readings in json.dumps(s["Resource"]) for s in writes)
    assert all(
        logical_id(hemera_stack.storage.table(t)) not in json.dumps(s["Resource"])
        for s in writes
        for t in TABLES
        if t != READINGS_TABLE
    )
    (publish,) = [s for s in statements if "iot:Publish" in actions(s)]
    assert json.dumps(publish["Resource"]).endswith('topic/hemera/*/*/down/cmd"]]}')
    # S3 only for exports: objects under tenants/<tenant>/exports/ of the exports bucket
    s3 = [s for s in statements if any(a.startswith("s3:") for a in actions(s))]
    exports = logical_id(hemera_stack.storage.bucket(EXPORTS_BUCKET))
    assert all(
        exports in json.dumps(s["Resource"]) and "/tenants/*/exports/*" in json.dumps(s["Resource"])
        for s in s3
    )


def test_portal_api_is_a_sam_rest_api_on_stage_api(template: Template) -> None:
    template.has_resource_properties("AWS::Serverless::Api", {"StageName": "api"})
    assert template.to_json()["Transform"] == "AWS::Serverless-2016-10-31"


def test_outputs_name_the_api_tables_buckets_queue_and_device_policy(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    expected = {
        "PortalApiUrl",
        "DevicePolicyName",
        *(f"{t.construct_id}TableName" for t in TABLES),
        *(f"{b.construct_id}BucketName" for b in BUCKETS),
        *(f"{q.construct_id}QueueUrl" for q in RULE_QUEUES),
    }
    assert expected <= set(outputs)
    assert "execute-api" in json.dumps(outputs["PortalApiUrl"]["Value"])


def test_stack_description_lists_the_validated_tenants(template: Template, hemera_stack: HemeraStack) -> None:
    assert hemera_stack.tenants, "the demo tenants under tenants/ are loaded at synth"
    description = template.to_json()["Description"]
    for tenant in hemera_stack.tenants:
        assert tenant.id in description


def test_the_translate_function_may_put_events_on_the_platform_bus_only(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId
) -> None:
    template.resource_count_is("AWS::Events::EventBus", 1)
    bus = {"Fn::GetAtt": [logical_id(hemera_stack.storage.event_bus), "Arn"]}
    statements = [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "events:PutEvents"
    ]
    assert statements and all(s["Resource"] == bus for s in statements)


def test_portal_api_stage_throttles_every_method_and_no_tenant_setting_rides_in_the_environment(
    template: Template, hemera_stack: HemeraStack
) -> None:
    from hemera_infra.portal_api import STAGE_THROTTLING_BURST, STAGE_THROTTLING_RATE_PER_SECOND

    template.has_resource_properties(
        "AWS::Serverless::Api",
        {
            "MethodSettings": [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": STAGE_THROTTLING_RATE_PER_SECOND,
                    "ThrottlingBurstLimit": STAGE_THROTTLING_BURST,
                }
            ]
        },
    )
    (api_function,) = template.find_resources("AWS::Serverless::Function").values()
    # Each tenant's allowance and VEE overrides are read from the readings table (stored at
    # onboarding): nothing per tenant in the environment, whose 4 KB would not hold many tenants
    variables = api_function["Properties"]["Environment"]["Variables"]
    assert not any("RATE_LIMITS" in name or "VEE" in name for name in variables)
    assert not any(tenant.id in str(value) for tenant in hemera_stack.tenants for value in variables.values())
