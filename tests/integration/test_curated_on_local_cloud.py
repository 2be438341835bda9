"""Curated Parquet on the local cloud: a day published over MQTT reaches the store, its
MeterDaysChanged events reach the curate queue through the bus rule, and the curate function writes
the tenant/date partition, which pyarrow and duckdb read back equal to what the store holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest

from hemera import aws
from hemera.definitions import CURATED_INTERVALS
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.wiring import curate_ports
from tests.builders import hx300_envelope
from tests.integration.conftest import eventually, run
from tests.integration.test_bad_input_and_isolation import TOPIC, broker, publish_all

pytestmark = pytest.mark.integration

TENANT, METER = "coastal-power", "cp-m-2001"
DAY = datetime(2026, 5, 3, tzinfo=UTC)  # one UTC day: one date partition
PARTITION = f"{CURATED_INTERVALS.prefix}tenant={TENANT}/date=2026-05-03/"


def test_a_published_day_is_curated_to_its_partition_equal_to_the_store(local_cloud, tmp_path: Path):
    # Given one day of 96 quarter hours published by the meter's RTU
    watt_hours = [300 + 7 * i for i in range(96)]
    envelope = hx300_envelope(TENANT, "rtu-syd-01", METER, DAY, watt_hours, seq=9700)
    config = broker(local_cloud, TENANT, "rtu-syd-01")
    assert run(publish_all(config, f"{TENANT}:rtu-syd-01", [(TOPIC, envelope.to_json())])) == ["acked"]

    # When the platform has stored and curated it
    s3 = aws.client(local_cloud.settings.aws, "s3")
    bucket = local_cloud.settings.curated_bucket

    def curated_active_import() -> dict[datetime, dict]:
        """The meter's active-import rows in the partition, the newest version of each interval
        (a day whose channels landed one by one is curated more than once)."""
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=PARTITION).get("Contents", [])]
        for key in keys:
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if not keys:
            return {}
        newest: dict[datetime, dict] = {}
        for row in ds.dataset(tmp_path / PARTITION, format="parquet").to_table().to_pylist():
            if row["meter_id"] == METER and row["channel"] == Channel.ACTIVE_IMPORT:
                seen = newest.get(row["interval_start"])
                if seen is None or row["data_version"] > seen["data_version"]:
                    newest[row["interval_start"]] = row
        return newest

    rows = eventually(curated_active_import, lambda r: len(r) >= 96, timeout_s=60)

    # Then the partition holds the 96 intervals, equal to the store and to what the meter recorded
    assert len(rows) == 96
    store = curate_ports(local_cloud.settings).store
    stored = store.load_profile(
        TenantContext(TENANT), METER, Channel.ACTIVE_IMPORT, DAY, DAY + timedelta(days=1)
    )
    assert sorted((r["interval_start"], r["value"]) for r in rows.values()) == [
        (s.start, s.value) for s in stored
    ]
    assert [r.value for r in stored] == [Decimal(wh) / 1000 for wh in watt_hours]

    # And duckdb, reading the Hive layout through the newest-version view, agrees
    connection = duckdb.connect()
    connection.execute(
        "CREATE VIEW intervals AS SELECT * FROM read_parquet("
        f"'{tmp_path}/{CURATED_INTERVALS.prefix}**/*.parquet', hive_partitioning = true, "
        "hive_types = {'tenant': 'VARCHAR', 'date': 'VARCHAR'})"
    )
    latest = CURATED_INTERVALS.latest_select("intervals")
    total, count = connection.execute(
        f"SELECT sum(value), count(*) FROM ({latest}) "
        "WHERE tenant = ? AND date = ? AND meter_id = ? AND channel = 'active_import'",
        [TENANT, "2026-05-03", METER],
    ).fetchone()
    assert (total, count) == (Decimal(sum(watt_hours)) / 1000, 96)
