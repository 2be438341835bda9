"""Analytics: changed meter-days curated to Parquet, and the Glue table Athena queries them by.

MeterDaysChanged on the platform bus → EventBridge rule → SQS (with DLQ) → curate function (batches,
partial failures) → s3://<curated>/curated/intervals/tenant=<t>/date=<d>/<batch>.parquet; a Glue
table with partition projection over that prefix (no crawler, no partitions to register) and a
saved Athena query that creates the newest-version view.

The curated bucket is one of `hemera.definitions.BUCKETS`, built (encrypted, SSL only, private) by
`Storage` like the others. pyarrow reaches the function in a layer of its own, built like the
Hemera layer (pip cross-install for manylinux2014/cp311, no Docker): it is ~130 MB unpacked, so
only the curate function carries it (with the Hemera layer, ~185 MB of Lambda's 250 MB), and the
AWS SDK for pandas managed layer would tie the app to a per-region ARN and version and bring its
own boto3.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hemera.definitions import (
    CURATE_RULE,
    CURATED_BUCKET,
    CURATED_INTERVALS,
    CuratedDatasetDef,
    EventRuleDef,
)
from hemera_infra.constants import (
    ANALYTICS_LAYER_DIR,
    CURATE_READ_TABLES,
    CURATE_TABLE_ACTIONS,
    PARQUET_INPUT_FORMAT,
    PARQUET_OUTPUT_FORMAT,
    PARQUET_SERDE,
)
from hemera_infra.event_consumers import EventFedConstruct
from hemera_infra.function_catalog import FunctionCatalog
from hemera_infra.layer import pip_layer
from hemera_infra.nag import acknowledge, arn_wildcard_finding
from hemera_infra.storage import Storage

CURATED_KEYS_REASON = (
    "The curate function writes objects whose keys are tenant/date partitions and batch digests; "
    "the statement is limited to PutObject under the curated dataset's prefix of one bucket."
)


class Analytics(EventFedConstruct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        functions: FunctionCatalog,
        rule: EventRuleDef = CURATE_RULE,
        dataset: CuratedDatasetDef = CURATED_INTERVALS,
    ) -> None:
        super().__init__(scope, construct_id, rules=[rule], bus=storage.event_bus, functions=functions)
        self.bucket = storage.bucket(CURATED_BUCKET)
        self.pyarrow_layer = self._build_pyarrow_layer()
        self.function.add_layers(self.pyarrow_layer)
        self._grant_curate_access(storage, dataset)
        self.database = self._build_database(dataset)
        self.table = self._build_table(dataset)
        self.latest_view_query = self._build_latest_view_query(dataset)

    def _build_pyarrow_layer(self) -> lambda_.LayerVersion:
        return pip_layer(
            self,
            "PyarrowLayer",
            ANALYTICS_LAYER_DIR,
            None,
            "pyarrow (Parquet writer) for the curate function",
        )

    def _grant_curate_access(self, storage: Storage, dataset: CuratedDatasetDef) -> None:
        # BatchGetItem (days with their versions, `ReadingStore.read_series`): no scans, no writes.
        for table in CURATE_READ_TABLES:
            storage.table(table).grant(self.function, *CURATE_TABLE_ACTIONS)
        # PutObject under the dataset's prefix only: the function never reads or deletes objects.
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[self._objects_arn(dataset)])
        )
        acknowledge(
            self.function.role or self.function,
            arn_wildcard_finding(self.bucket, f"/{dataset.prefix}*"),
            CURATED_KEYS_REASON,
        )

    def _objects_arn(self, dataset: CuratedDatasetDef) -> str:
        return self.bucket.arn_for_objects(f"{dataset.prefix}*")

    def _build_database(self, dataset: CuratedDatasetDef) -> glue.CfnDatabase:
        return glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Stack.of(self).account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=dataset.database, description="Hemera Cloud curated metering data"
            ),
        )

    def _build_table(self, dataset: CuratedDatasetDef) -> glue.CfnTable:
        location = _s3_url(self.bucket, dataset.prefix)
        partitions = "/".join(f"{k.name}=${{{k.name}}}" for k in dataset.partition_keys)
        tenant, day = (k.name for k in dataset.partition_keys)
        table = glue.CfnTable(
            self,
            "IntervalsTable",
            catalog_id=Stack.of(self).account,
            database_name=self.database.ref,  # the name, and the dependency on the database
            table_input=glue.CfnTable.TableInputProperty(
                name=dataset.table,
                description="Interval readings, one row per interval and data version (see the view)",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "EXTERNAL": "TRUE",
                    "classification": "parquet",
                    # Partition projection: Athena computes the partitions from the query, so
                    # nothing registers them. A query must name its tenant (`injected`), which
                    # also keeps every query inside one tenant.
                    "projection.enabled": "true",
                    f"projection.{tenant}.type": "injected",
                    f"projection.{day}.type": "date",
                    f"projection.{day}.format": "yyyy-MM-dd",
                    f"projection.{day}.range": f"{dataset.first_day},NOW",
                    f"projection.{day}.interval": "1",
                    f"projection.{day}.interval.unit": "DAYS",
                    "storage.location.template": f"{location}{partitions}/",
                },
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=k.name, type=k.type) for k in dataset.partition_keys
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=c.name, type=c.type) for c in dataset.columns],
                    location=location,
                    input_format=PARQUET_INPUT_FORMAT,
                    output_format=PARQUET_OUTPUT_FORMAT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=PARQUET_SERDE, parameters={"serialization.format": "1"}
                    ),
                ),
            ),
        )
        return table

    def _build_latest_view_query(self, dataset: CuratedDatasetDef) -> athena.CfnNamedQuery:
        # Athena views live in the Glue catalog in Presto's own encoding; a saved query that an
        # operator runs once (README) is simpler and shows the SQL as it is.
        return athena.CfnNamedQuery(
            self,
            "LatestIntervalsView",
            database=self.database.ref,
            name=f"{dataset.database}.{dataset.latest_view}: create the view",
            description="Newest data version of every interval (run once after the first deploy)",
            query_string=dataset.create_latest_view_sql,
        )


def _s3_url(bucket: s3.IBucket, prefix: str) -> str:
    return f"s3://{bucket.bucket_name}/{prefix}"
