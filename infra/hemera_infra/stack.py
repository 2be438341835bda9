"""`HemeraStack`: the capabilities of Hemera Cloud composed in one stack."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from hemera.definitions import PORTAL_API_DIR, SCHEDULES, TOPIC_RULES, ScheduleDef, TopicRule
from hemera.tenants import TenantDefinition
from hemera_infra.alarms import Alarms
from hemera_infra.analytics import Analytics
from hemera_infra.billing import Billing
from hemera_infra.command_sweeps import CommandSweeps
from hemera_infra.constants import (
    ALARMS_ID,
    ANALYTICS_ID,
    BILLING_ID,
    COMMAND_SWEEPS_ID,
    FUNCTIONS_DIR,
    FUNCTIONS_ID,
    INGEST_ID,
    LAYER_ID,
    NOTIFICATIONS_ID,
    PORTAL_API_ID,
    PORTAL_USERS_ID,
    SCHEDULES_ID,
    STACK_DESCRIPTION,
    STORAGE_ID,
    VEE_ID,
)
from hemera_infra.function_catalog import FunctionCatalog
from hemera_infra.ingest import Ingest
from hemera_infra.layer import HemeraLayer
from hemera_infra.notifications import Notifications
from hemera_infra.portal_api import PortalApi
from hemera_infra.portal_users import PortalUsers
from hemera_infra.schedules import Schedules
from hemera_infra.storage import Storage
from hemera_infra.vee import Vee


class HemeraStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenants: Sequence[TenantDefinition],
        topic_rules: Sequence[TopicRule] = TOPIC_RULES,
        schedules: Sequence[ScheduleDef] = SCHEDULES,
        portal_api_dir: Path = FUNCTIONS_DIR / PORTAL_API_DIR,
        **kwargs: Any,
    ) -> None:
        tenant_ids = ", ".join(t.id for t in tenants) or "none"
        super().__init__(
            scope, construct_id, description=f"{STACK_DESCRIPTION} (tenants: {tenant_ids})", **kwargs
        )
        self.tenants = tuple(tenants)
        self.storage = Storage(self, STORAGE_ID)
        self.layer = HemeraLayer(self, LAYER_ID).layer_version
        self.functions = FunctionCatalog(self, FUNCTIONS_ID, layer=self.layer)
        self.functions.add_environment(self.storage.environment)
        self.ingest = Ingest(
            self, INGEST_ID, storage=self.storage, functions=self.functions, rules=topic_rules
        )
        self.analytics = Analytics(self, ANALYTICS_ID, storage=self.storage, functions=self.functions)
        self.notifications = Notifications(
            self, NOTIFICATIONS_ID, storage=self.storage, functions=self.functions
        )
        self.schedules = Schedules(self, SCHEDULES_ID, functions=self.functions, schedules=schedules)
        self.command_sweeps = CommandSweeps(
            self, COMMAND_SWEEPS_ID, storage=self.storage, functions=self.functions
        )
        self.portal_users = PortalUsers(self, PORTAL_USERS_ID)
        self.portal_api = PortalApi(
            self,
            PORTAL_API_ID,
            source_dir=portal_api_dir,
            layer=self.layer,
            storage=self.storage,
            environment={
                **self.functions.environment,
                **self.portal_users.environment,
            },
        )
        self.vee = Vee(
            self,
            VEE_ID,
            storage=self.storage,
            functions=self.functions,
            portal_role=self.portal_api.role,
        )
        # Billing exports: the due-exports job (schedules from the registry), restatements, the
        # portal's export routes.
        self.billing = Billing(
            self,
            BILLING_ID,
            storage=self.storage,
            functions=self.functions,
            portal_role=self.portal_api.role,
        )
        # Alarm rules and lifecycle (its function; the portal acknowledges alarms).
        self.alarms = Alarms(
            self, ALARMS_ID, storage=self.storage, functions=self.functions, portal_role=self.portal_api.role
        )
        self._build_outputs()

    def _build_outputs(self) -> None:
        CfnOutput(self, "PortalApiUrl", value=self.portal_api.url, description="Customer Portal API base URL")
        CfnOutput(self, "PortalUserPoolId", value=self.portal_users.user_pool.user_pool_id)
        CfnOutput(self, "PortalUserPoolClientId", value=self.portal_users.client.user_pool_client_id)
        for table_id, table in self.storage.tables.items():
            CfnOutput(self, f"{table_id}TableName", value=table.table_name)
        for bucket_id, bucket in self.storage.buckets.items():
            CfnOutput(self, f"{bucket_id}BucketName", value=bucket.bucket_name)
        for queue_id, queue in self.ingest.queues.items():
            CfnOutput(self, f"{queue_id}QueueUrl", value=queue.queue_url)
        CfnOutput(
            self,
            "CuratedIntervalsTable",
            value=f"{self.analytics.database.ref}.{self.analytics.table.ref}",
            description="Glue table of the curated interval data (Athena: query its latest-version view)",
        )
        CfnOutput(
            self,
            "DevicePolicyName",
            value=self.ingest.device_policy.ref,
            description="IoT policy to attach to every device certificate",
        )
