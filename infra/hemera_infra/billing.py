"""Billing exports: the billing_exports function, its restatement queue and its grants.

- The hourly "exports due" schedule reaches the function through the generic schedules
  (`definitions.BILLING_SCHEDULES`, `hemera_infra.schedules`); the tenants' export schedules are
  read from the readings table at each run (written at onboarding with the registry), so a new
  tenant needs no redeploy and the schedules take no room in Lambda's 4 KB environment.
- FinalDaysChanged (source `hemera.vee`) on the platform bus → EventBridge rule → SQS (with DLQ)
  → the same function (batches, partial failures): restatements of exported periods.
- The function reads final days, meters and the export index and writes index items (readings
  table), puts objects under `tenants/*/exports/*` of the exports bucket (and reads manifests
  back), and puts `ExportWritten` on the bus.
- The portal API's role gets what its export routes need: GetObject under the same prefix
  (pre-signed URLs are signed with its credentials), PutObject for on-demand exports, writes of
  index items, PutEvents.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

from hemera.definitions import (
    EXPORT_RESTATEMENTS_RULE,
    EXPORTS_BUCKET,
    READINGS_TABLE,
    EventRuleDef,
)
from hemera_infra.constants import EXPORTS_OBJECTS_PATTERN, EXPORTS_TABLE_ACTIONS
from hemera_infra.event_consumers import EventFedConstruct
from hemera_infra.function_catalog import FunctionCatalog
from hemera_infra.nag import acknowledge, arn_wildcard_finding
from hemera_infra.storage import Storage

EXPORT_KEYS_REASON = (
    "Export objects are keyed tenants/<tenant>/exports/<export id>/v<version>/<file>: dynamic, "
    "tenant-first; the statement is limited to the exports area of the tenants' prefixes of one "
    "bucket, and the service checks every key against the caller's tenant before using it."
)


class Billing(EventFedConstruct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        functions: FunctionCatalog,
        portal_role: iam.IRole | None = None,
        rule: EventRuleDef = EXPORT_RESTATEMENTS_RULE,
    ) -> None:
        super().__init__(scope, construct_id, rules=[rule], bus=storage.event_bus, functions=functions)
        self.bucket = storage.bucket(EXPORTS_BUCKET)
        role = self.function.role
        assert role is not None  # FunctionCatalog gives every function a role of its own
        self._grant_exports_access(storage, role, role)
        if portal_role is not None:
            self._grant_exports_access(storage, portal_role, portal_role)

    def _grant_exports_access(self, storage: Storage, role: iam.IRole, finding_on: IConstruct) -> None:
        storage.table(READINGS_TABLE).grant(role, *EXPORTS_TABLE_ACTIONS)
        storage.event_bus.grant_put_events_to(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[self.bucket.arn_for_objects(EXPORTS_OBJECTS_PATTERN)],
            )
        )
        acknowledge(
            finding_on, arn_wildcard_finding(self.bucket, f"/{EXPORTS_OBJECTS_PATTERN}"), EXPORT_KEYS_REASON
        )

    @property
    def exports_bucket(self) -> s3.IBucket:
        return self.bucket
