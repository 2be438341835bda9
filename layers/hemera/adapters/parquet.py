"""Curated rows as Parquet objects in S3 (pyarrow), in the layout the Glue table projects.

pyarrow ships in its own Lambda layer, given only to the curate function (see
`infra/hemera_infra/analytics.py`), so nothing else imports this module.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hemera.definitions import CURATED_INTERVALS, CuratedDatasetDef
from hemera.domain.curated import VALUE_PRECISION, VALUE_SCALE, CuratedRow, curated_object_key
from hemera.domain.tenancy import TenantContext

# Glue/Hive column types → Arrow types. Timestamps are written as Parquet INT64 milliseconds,
# adjusted to UTC, which Athena (engine 3), duckdb and Spark all read as instants.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "timestamp": pa.timestamp("ms", tz="UTC"),
    f"decimal({VALUE_PRECISION},{VALUE_SCALE})": pa.decimal128(VALUE_PRECISION, VALUE_SCALE),
}
# Parquet's default codec and the one every Athena engine version reads.
COMPRESSION = "snappy"
CONTENT_TYPE = "application/vnd.apache.parquet"


def arrow_schema(dataset: CuratedDatasetDef = CURATED_INTERVALS) -> pa.Schema:
    """The Parquet schema of the dataset's files, derived from the Glue columns (so the table and
    the files cannot drift); every column is nullable as Hive tables are."""
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in dataset.columns])


CURATED_SCHEMA = arrow_schema()
# The row's fields in order; a unit test holds them equal to the Glue columns.
ROW_FIELDS = tuple(f.name for f in dataclasses.fields(CuratedRow))


def parquet_bytes(rows: Sequence[CuratedRow], schema: pa.Schema = CURATED_SCHEMA) -> bytes:
    columns: dict[str, list[Any]] = {name: [getattr(row, name) for row in rows] for name in schema.names}
    table = pa.Table.from_pydict(columns, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression=COMPRESSION)
    return buffer.getvalue()


def rows_of_parquet(body: bytes) -> list[CuratedRow]:
    """Rows of one curated object, as written (the reading half, for tests and tools)."""
    table = pq.read_table(io.BytesIO(body))
    return [CuratedRow(**record) for record in table.select(list(ROW_FIELDS)).to_pylist()]


class S3ParquetCuratedWriter:
    def __init__(self, s3: Any, bucket: str, prefix: str = CURATED_INTERVALS.prefix) -> None:
        self._s3, self._bucket, self._prefix = s3, bucket, prefix

    def write(self, ctx: TenantContext, day: date, batch_id: str, rows: Sequence[CuratedRow]) -> str:
        key = curated_object_key(self._prefix, ctx.tenant_id, day, batch_id)
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=parquet_bytes(rows), ContentType=CONTENT_TYPE)
        return key
