"""The analytics construct: MeterDaysChanged rule → queue (+DLQ) → curate function with pyarrow, least
privilege, and the Glue table Athena reads the curated Parquet through (partition projection)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from hemera.definitions import (
    API_KEYS_TABLE,
    CURATE_FUNCTION,
    CURATE_QUEUE,
    CURATE_RULE,
    CURATED_BUCKET,
    CURATED_INTERVALS,
    EVENT_BUS,
    EXPORTS_BUCKET,
    QUARANTINE_BUCKET,
    RAW_BUCKET,
    READINGS_TABLE,
    SERIES_CHANGED,
    TRANSLATE_FUNCTION,
)
from hemera_infra.constants import ANALYTICS_LAYER_DIR
from hemera_infra.layer import PipLayerBundler
from hemera_infra.stack import HemeraStack


def _curate_statements(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> list[dict[str, Any]]:
    role = hemera_stack.analytics.function.role
    assert role is not None
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(role)}]}}
    )
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_the_rule_on_the_platform_bus_sends_meter_day_changes_to_the_curate_queue(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    analytics = hemera_stack.analytics
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventBusName": {"Ref": logical_id(hemera_stack.storage.event_bus)},
            "EventPattern": {"source": [EVENT_BUS.source], "detail-type": [SERIES_CHANGED]},
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [logical_id(analytics.queue), "Arn"]},
                        "DeadLetterConfig": {
                            "Arn": {"Fn::GetAtt": [logical_id(analytics.dead_letter_queue), "Arn"]}
                        },
                    }
                )
            ],
        },
    )
    assert CURATE_RULE.pattern == {"source": ["hemera.ingest"], "detail-type": [SERIES_CHANGED]}


def test_only_the_rule_may_send_to_the_curate_queue(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    queue_id = logical_id(hemera_stack.analytics.queue)
    policies = template.find_resources(
        "AWS::SQS::QueuePolicy", {"Properties": {"Queues": [{"Ref": queue_id}]}}
    )
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (send,) = [s for s in statements if s["Effect"] == "Allow"]
    assert send["Principal"] == {"Service": "events.amazonaws.com"}
    assert send["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": [logical_id(hemera_stack.analytics.rule), "Arn"]
    }


def test_curate_queue_redrives_to_its_dlq_and_feeds_the_function_in_partial_batches(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    analytics = hemera_stack.analytics
    queue = template.find_resources("AWS::SQS::Queue")[logical_id(analytics.queue)]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [logical_id(analytics.dead_letter_queue), "Arn"]},
        "maxReceiveCount": CURATE_QUEUE.max_receive_count,
    }
    assert queue["VisibilityTimeout"] >= 6 * CURATE_FUNCTION.timeout_s + CURATE_QUEUE.batch_window_s
    assert queue["SqsManagedSseEnabled"] is True
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [logical_id(analytics.queue), "Arn"]},
            "FunctionName": {"Ref": logical_id(analytics.function)},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": CURATE_QUEUE.batch_size,
            "MaximumBatchingWindowInSeconds": CURATE_QUEUE.batch_window_s,
            "ScalingConfig": {"MaximumConcurrency": 2},
        },
    )


def test_curate_function_has_both_layers_and_the_curated_bucket_name(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    analytics = hemera_stack.analytics
    function = template.find_resources("AWS::Lambda::Function")[logical_id(analytics.function)]["Properties"]
    assert function["Handler"] == CURATE_FUNCTION.handler
    assert function["MemorySize"] == CURATE_FUNCTION.memory_mb
    layers = [{"Ref": logical_id(hemera_stack.layer)}, {"Ref": logical_id(analytics.pyarrow_layer)}]
    assert sorted(function["Layers"], key=json.dumps) == sorted(layers, key=json.dumps)
    variables = function["Environment"]["Variables"]
    assert variables[CURATED_BUCKET.env_var] == {
        "Ref": logical_id(hemera_stack.storage.bucket(CURATED_BUCKET))
    }
    assert variables[READINGS_TABLE.env_var] == {
        "Ref": logical_id(hemera_stack.storage.table(READINGS_TABLE))
    }


def test_curate_reads_readings_and_only_puts_objects_under_the_dataset_prefix(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    statements = _curate_statements(template, hemera_stack, logical_id)
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {a for a in actions if a.startswith("dynamodb:")} == {"dynamodb:BatchGetItem"}
    (s3,) = [s for s in statements if str(s["Action"]).startswith("s3:")]
    bucket = logical_id(hemera_stack.storage.bucket(CURATED_BUCKET))
    assert s3["Action"] == "s3:PutObject"
    assert s3["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{CURATED_INTERVALS.prefix}*"]]
    }
    assert not actions & {"events:PutEvents", "dynamodb:PutItem", "dynamodb:Scan", "s3:GetObject"}
    document = json.dumps(statements)
    for other in (RAW_BUCKET, QUARANTINE_BUCKET, EXPORTS_BUCKET):
        assert logical_id(hemera_stack.storage.bucket(other)) not in document
    assert logical_id(hemera_stack.storage.table(API_KEYS_TABLE)) not in document


def test_the_translate_function_gets_no_pyarrow_and_no_curated_access(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    translate = hemera_stack.functions.function(TRANSLATE_FUNCTION)
    properties = template.find_resources("AWS::Lambda::Function")[logical_id(translate)]["Properties"]
    assert properties["Layers"] == [{"Ref": logical_id(hemera_stack.layer)}]
    assert translate.role is not None
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(translate.role)}]}}
    )
    assert logical_id(hemera_stack.storage.bucket(CURATED_BUCKET)) not in json.dumps(policies)


def test_glue_table_is_external_parquet_with_the_dataset_columns_and_projected_partitions(
    template: Template, hemera_stack: HemeraStack, logical_id: Any
) -> None:
    (database,) = template.find_resources("AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == CURATED_INTERVALS.database
    (table,) = template.find_resources("AWS::Glue::Table").values()
    table_input = table["Properties"]["TableInput"]
    assert table["Properties"]["DatabaseName"] == {"Ref": logical_id(hemera_stack.analytics.database)}
    assert (table_input["Name"], table_input["TableType"]) == (CURATED_INTERVALS.table, "EXTERNAL_TABLE")
    assert table_input["PartitionKeys"] == [
        {"Name": "tenant", "Type": "string"},
        {"Name": "date", "Type": "string"},
    ]
    descriptor = table_input["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in descriptor["Columns"]] == [
        ("meter_id", "string"),
        ("channel", "string"),
        ("interval_start", "timestamp"),
        ("interval_minutes", "int"),
        ("value", "decimal(18,6)"),
        ("unit", "string"),
        ("quality", "string"),
        ("source", "string"),
        ("status", "string"),
        ("raw_value", "bigint"),
        ("meter_flags", "int"),
        ("data_version", "bigint"),
        ("curated_at", "timestamp"),
    ]
    assert (
        descriptor["SerdeInfo"]["SerializationLibrary"]
        == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert descriptor["InputFormat"].endswith("MapredParquetInputFormat")
    bucket = {"Ref": logical_id(hemera_stack.storage.bucket(CURATED_BUCKET))}
    assert descriptor["Location"] == {"Fn::Join": ["", ["s3://", bucket, "/curated/intervals/"]]}
    parameters = table_input["Parameters"]
    assert {k: v for k, v in parameters.items() if k.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.tenant.type": "injected",
        "projection.date.type": "date",
        "projection.date.format": "yyyy-MM-dd",
        "projection.date.range": "2020-01-01,NOW",
        "projection.date.interval": "1",
        "projection.date.interval.unit": "DAYS",
    }
    assert parameters["storage.location.template"] == {
        "Fn::Join": ["", ["s3://", bucket, "/curated/intervals/tenant=${tenant}/date=${date}/"]]
    }


def test_the_latest_version_view_is_saved_as_an_athena_query(template: Template) -> None:
    (query,) = template.find_resources("AWS::Athena::NamedQuery").values()
    sql = query["Properties"]["QueryString"]
    assert sql == CURATED_INTERVALS.create_latest_view_sql
    assert sql.startswith('CREATE OR REPLACE VIEW "hemera_analytics"."intervals_latest" AS SELECT')
    assert 'PARTITION BY "tenant", "date", "meter_id", "channel", "interval_start"' in sql
    assert 'ORDER BY "data_version" DESC' in sql


@pytest.mark.slow
def test_the_pyarrow_layer_bundles_linux_wheels_without_a_first_party_package(tmp_path: Path) -> None:
    # The bundler the analytics construct uses, on its requirements, as `cdk synth` runs it.
    output = tmp_path / "layer"
    bundler = PipLayerBundler(ANALYTICS_LAYER_DIR, None, "requirements.txt")
    assert bundler.try_bundle(str(output), image=None)  # type: ignore[arg-type]
    site = output / "python"
    assert list(site.glob("pyarrow/lib.cpython-311-x86_64-linux-gnu.so"))
    (wheel,) = site.glob("pyarrow-*.dist-info/WHEEL")
    assert "manylinux2014_x86_64" in wheel.read_text() or "manylinux_2_17_x86_64" in wheel.read_text()
    assert not (site / "hemera").exists()
    assert sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) < 160 * 2**20  # of Lambda's 250 MB
