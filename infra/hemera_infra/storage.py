"""DynamoDB tables and S3 buckets, one per definition in `hemera.definitions`."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hemera.definitions import BUCKETS, EVENT_BUS, RAW_BUCKET, TABLES, BucketDef, EventBusDef, TableDef
from hemera_infra.constants import (
    ABORT_INCOMPLETE_UPLOADS,
    DATA_REMOVAL_POLICY,
    RAW_ARCHIVE_TRANSITION,
    VERSIONED_BUCKETS,
)
from hemera_infra.nag import ACCESS_LOGS_REASON, acknowledge


class Storage(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tables: Sequence[TableDef] = TABLES,
        buckets: Sequence[BucketDef] = BUCKETS,
        event_bus: EventBusDef = EVENT_BUS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.tables = {d.construct_id: self._build_table(d) for d in tables}
        self.buckets = {d.construct_id: self._build_bucket(d) for d in buckets}
        self.event_bus = self._build_event_bus(event_bus)
        self._event_bus_def = event_bus
        self._table_defs = tuple(tables)
        self._bucket_defs = tuple(buckets)

    def table(self, definition: TableDef) -> dynamodb.Table:
        return self.tables[definition.construct_id]

    def bucket(self, definition: BucketDef) -> s3.Bucket:
        return self.buckets[definition.construct_id]

    @property
    def environment(self) -> dict[str, str]:
        """Physical names under the variable each definition names."""
        return {
            **{d.env_var: self.table(d).table_name for d in self._table_defs},
            **{d.env_var: self.bucket(d).bucket_name for d in self._bucket_defs},
            self._event_bus_def.env_var: self.event_bus.event_bus_name,
        }

    def _build_event_bus(self, definition: EventBusDef) -> events.EventBus:
        # The platform's own bus: VEE, billing and alarms subscribe with rules on it.
        return events.EventBus(self, definition.construct_id)

    def _build_table(self, definition: TableDef) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            definition.construct_id,
            partition_key=dynamodb.Attribute(
                name=definition.partition_key, type=dynamodb.AttributeType.STRING
            ),
            sort_key=(
                dynamodb.Attribute(name=definition.sort_key, type=dynamodb.AttributeType.STRING)
                if definition.sort_key
                else None
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=DATA_REMOVAL_POLICY,
            time_to_live_attribute=definition.ttl_attribute,
        )

    def _build_bucket(self, definition: BucketDef) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            definition.construct_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=definition in VERSIONED_BUCKETS,
            lifecycle_rules=self._lifecycle_rules(definition),
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=DATA_REMOVAL_POLICY,
        )
        acknowledge(bucket, "AwsSolutions-S1", ACCESS_LOGS_REASON)
        return bucket

    def _lifecycle_rules(self, definition: BucketDef) -> list[s3.LifecycleRule]:
        rules = [
            s3.LifecycleRule(
                id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS
            )
        ]
        if definition == RAW_BUCKET:
            # Glacier Instant Retrieval: about a sixth of Standard's storage price, and still
            # millisecond reads when a late-data re-run needs an old frame.
            rules.append(
                s3.LifecycleRule(
                    id="RawFramesToGlacierIR",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=RAW_ARCHIVE_TRANSITION,
                        )
                    ],
                )
            )
        return rules
