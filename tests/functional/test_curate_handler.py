"""The curate function on moto: MeterDayChanged events reach its queue through the EventBridge rule
the local cloud creates; the Parquet it writes to S3 is read back with pyarrow and queried with
duckdb (an independent reader), including the newest-version view of the Glue table."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow.dataset as ds
import pytest

from hemera.adapters.eventbridge import EventBridgeChangeEvents
from hemera.adapters.parquet import rows_of_parquet
from hemera.definitions import CURATE_FUNCTION, CURATE_QUEUE, CURATED_INTERVALS, EVENT_BUS
from hemera.domain.readings import Channel, IntervalReading, Unit
from hemera.domain.tenancy import TenantContext
from hemera.ports import SeriesChange
from hemera.wiring import curate_ports
from hemera_local.bridge import LambdaContext, load_handler, sqs_event

TENANT = "sul-energia"
METER = "sul-m-1001"
DAY = date(2026, 11, 20)
CTX = TenantContext(TENANT, correlation_id="functional")


def intervals(values: list[str], channel: Channel = Channel.ACTIVE_IMPORT) -> list[IntervalReading]:
    start = datetime.combine(DAY, time(0), tzinfo=UTC)
    return [
        IntervalReading(
            METER, channel, start + timedelta(minutes=15 * i), 15, Decimal(v), Unit.KWH, raw_value=i
        )
        for i, v in enumerate(values)
    ]


def store_and_announce(settings: Any, readings: list[IntervalReading]) -> None:
    """What ingest does: announce each changed day on the bus, then write it."""
    events = EventBridgeChangeEvents(boto3.client("events"), settings.event_bus, EVENT_BUS.source)
    curate_ports(settings).store.merge_intervals(CTX, readings, lambda changes: events.announce(CTX, changes))


def delivered(settings: Any) -> dict[str, Any]:
    """Every message the rule put on the curate queue, as the SQS event source hands it over."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=CURATE_QUEUE.local_name)["QueueUrl"]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
    return sqs_event(messages, f"arn:aws:sqs:us-east-1:123456789012:{CURATE_QUEUE.local_name}", "us-east-1")


def invoke_curate(event: dict[str, Any]) -> dict[str, Any]:
    return load_handler(CURATE_FUNCTION)(event, LambdaContext(CURATE_FUNCTION.name))


def download_dataset(settings: Any, into: Path) -> list[str]:
    """The curated objects, copied under their keys (duckdb and pyarrow read the Hive layout)."""
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=settings.curated_bucket, Prefix=CURATED_INTERVALS.prefix)
    keys = [o["Key"] for o in listed.get("Contents", [])]
    for key in keys:
        (into / key).parent.mkdir(parents=True, exist_ok=True)
        (into / key).write_bytes(s3.get_object(Bucket=settings.curated_bucket, Key=key)["Body"].read())
    return keys


def duck(root: Path) -> duckdb.DuckDBPyConnection:
    """duckdb with the dataset as table `intervals`: partition keys typed as the Glue table types
    them (strings)."""
    connection = duckdb.connect()
    types = ", ".join(f"'{k.name}': 'VARCHAR'" for k in CURATED_INTERVALS.partition_keys)
    connection.execute(
        "CREATE VIEW intervals AS SELECT * FROM read_parquet("
        f"'{root}/{CURATED_INTERVALS.prefix}**/*.parquet', "
        f"hive_partitioning = true, hive_types = {{{types}}})"
    )
    return connection


def test_a_changed_day_is_curated_to_its_tenant_date_partition(moto_cloud, tmp_path):
    # Given a day of 96 intervals stored and announced
    values = [f"{i}.125" for i in range(96)]
    store_and_announce(moto_cloud, intervals(values))

    # When the curate function runs on what the rule delivered
    event = delivered(moto_cloud)
    response = invoke_curate(event)

    # Then one object in the tenant/date partition holds the stored day, as the store holds it
    assert len(event["Records"]) == 1 and response == {"batchItemFailures": []}
    (key,) = download_dataset(moto_cloud, tmp_path)
    assert key.startswith(f"curated/intervals/tenant={TENANT}/date=2026-11-20/") and key.endswith(".parquet")
    rows = rows_of_parquet((tmp_path / key).read_bytes())
    start, end = (
        datetime.combine(DAY, time(0), tzinfo=UTC),
        datetime.combine(DAY, time(0), tzinfo=UTC) + timedelta(days=1),
    )
    stored = curate_ports(moto_cloud).store.load_profile(CTX, METER, Channel.ACTIVE_IMPORT, start, end)
    assert [(r.interval_start, r.value) for r in rows] == [(s.start, s.value) for s in stored]
    assert {(r.data_version, r.unit, r.source, r.status, r.quality) for r in rows} == {
        (1, "kWh", "meter", "raw", "A")
    }

    # And pyarrow reads the partition keys from the path, duckdb sums the exact decimals
    table = ds.dataset(tmp_path / CURATED_INTERVALS.prefix, format="parquet", partitioning="hive").to_table()
    assert set(table.column("tenant").to_pylist()) == {TENANT}
    assert table.num_rows == 96
    total, count = (
        duck(tmp_path)
        .execute(
            "SELECT sum(value), count(*) FROM intervals WHERE tenant = ? AND date = ?", [TENANT, "2026-11-20"]
        )
        .fetchone()
    )
    assert (total, count) == (sum(Decimal(v) for v in values), 96)


def test_a_day_curated_twice_reads_back_at_its_latest_version(moto_cloud, tmp_path):
    # Given a day curated at version 1, then 10 intervals corrected and curated at version 2
    store_and_announce(moto_cloud, intervals(["1.000"] * 96))
    assert invoke_curate(delivered(moto_cloud)) == {"batchItemFailures": []}
    store_and_announce(moto_cloud, intervals(["2.500"] * 10))
    assert invoke_curate(delivered(moto_cloud)) == {"batchItemFailures": []}

    # When the dataset is queried through the view's SQL (the one the CDK app saves for Athena)
    assert len(download_dataset(moto_cloud, tmp_path)) == 2
    connection = duck(tmp_path)
    all_versions = connection.execute("SELECT count(*) FROM intervals").fetchone()
    latest = connection.execute(
        f"SELECT data_version, count(*), sum(value) FROM ({CURATED_INTERVALS.latest_select('intervals')}) "
        "GROUP BY data_version"
    ).fetchall()

    # Then every interval appears once, at version 2, with the corrected values
    assert all_versions == (192,)
    assert latest == [(2, 96, Decimal("2.5") * 10 + Decimal(1) * 86)]


def test_a_change_that_has_not_landed_fails_its_record_and_the_rest_is_curated(moto_cloud, tmp_path):
    # Given a stored day, plus an announcement of a version the store does not hold yet
    store_and_announce(moto_cloud, intervals(["1"] * 96))
    events = EventBridgeChangeEvents(boto3.client("events"), moto_cloud.event_bus, EVENT_BUS.source)
    events.announce(CTX, [SeriesChange(METER, Channel.ACTIVE_EXPORT, DAY, 1)])
    event = delivered(moto_cloud)
    early = next(r["messageId"] for r in event["Records"] if '"active_export"' in r["body"])

    # When the batch is curated
    response = invoke_curate(event)

    # Then only the early announcement fails (SQS delivers it again), the landed day is curated
    assert response == {"batchItemFailures": [{"itemIdentifier": early}]}
    (key,) = download_dataset(moto_cloud, tmp_path)
    rows = rows_of_parquet((tmp_path / key).read_bytes())
    assert {r.channel for r in rows} == {"active_import"} and len(rows) == 96


@pytest.mark.parametrize("body", ["not json", '{"source": "someone.else", "detail-type": "MeterDayChanged"}'])
def test_a_message_that_is_not_an_announcement_fails_its_record(moto_cloud, body):
    event = sqs_event([{"MessageId": "m-bad", "ReceiptHandle": "r", "Body": body}], "arn:q", "us-east-1")
    assert invoke_curate(event) == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
