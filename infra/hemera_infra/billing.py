"""Billing exports: the billing_exports function, its two queues and its grants.

- The hourly "exports due" and the 15-minute "restatements" schedules reach the function through
  the generic schedules (`definitions.BILLING_SCHEDULES`, `hemera_infra.schedules`); the tenants'
  export schedules are read from the readings table at each run (written at onboarding with the
  registry), so a new tenant needs no redeploy and the schedules take no room in Lambda's 4 KB
  environment.
- FinalDaysChanged (source `hemera.vee`) on the platform bus → EventBridge rule → SQS (with DLQ)
  → the function (batches, partial failures): changed days inside exported periods are recorded
  as pending restatements, which the restatements job renders.
- ExportRequested (source `hemera.billing`, put by the portal API) → EventBridge rule → its own
  SQS queue (with DLQ; one request per batch, no window, up to ten at once) → the function:
  on-demand exports, and the parts of versions rendered in parts (put on the bus by the function
  itself, detail with `version` and `part`).
- The function reads final days, meters and the export index and writes index items (conditional
  puts; a part is recorded with a conditional UpdateItem) and pending restatements (readings
  table), puts objects under `tenants/*/exports/*` of the exports bucket (and reads manifests and
  part records back), and puts `ExportWritten` and the part messages on the bus.
- The portal API's role gets exactly what its export routes need: GetObject under the same
  prefix (pre-signed URLs are signed with its credentials; it renders nothing any more, so no
  PutObject), reads and puts of index items, and PutEvents on the bus for `ExportRequested` from
  `hemera.billing` only (conditions on source and detail-type).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from hemera.definitions import (
    EXPORT_REQUESTS_RULE,
    EXPORT_RESTATEMENTS_RULE,
    EXPORTS_BUCKET,
    QUEUE_CONSUMERS,
    READINGS_TABLE,
    EventRuleDef,
)
from hemera_infra.constants import (
    EXPORTS_OBJECTS_PATTERN,
    EXPORTS_PORTAL_TABLE_ACTIONS,
    EXPORTS_TABLE_ACTIONS,
)
from hemera_infra.event_consumers import EventFedConstruct, event_consumer, grant_put_platform_event
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
        requests_rule: EventRuleDef = EXPORT_REQUESTS_RULE,
    ) -> None:
        super().__init__(scope, construct_id, rules=[rule], bus=storage.event_bus, functions=functions)
        self.bucket = storage.bucket(EXPORTS_BUCKET)
        self._build_requests(storage, functions, requests_rule)
        role = self.function.role
        assert role is not None  # FunctionCatalog gives every function a role of its own
        self._grant_function_access(storage, role)
        if portal_role is not None:
            self._grant_portal_access(storage, portal_role, requests_rule)

    def _build_requests(self, storage: Storage, functions: FunctionCatalog, rule: EventRuleDef) -> None:
        (consumer,) = {c for c in QUEUE_CONSUMERS if c.queue == rule.queue}
        fed = event_consumer(
            self, consumer=consumer, rules=[rule], bus=storage.event_bus, functions=functions
        )
        self.requests_queue: sqs.Queue = fed.queue
        self.requests_dead_letter_queue: sqs.IQueue = fed.dead_letter_queue
        self.requests_rule = fed.rules[0]

    def _grant_function_access(self, storage: Storage, role: iam.IRole) -> None:
        storage.table(READINGS_TABLE).grant(role, *EXPORTS_TABLE_ACTIONS)
        storage.event_bus.grant_put_events_to(role)
        self._grant_objects(role, ["s3:GetObject", "s3:PutObject"])

    def _grant_portal_access(self, storage: Storage, role: iam.IRole, requests_rule: EventRuleDef) -> None:
        storage.table(READINGS_TABLE).grant(role, *EXPORTS_PORTAL_TABLE_ACTIONS)
        grant_put_platform_event(role, storage.event_bus, requests_rule.source, requests_rule.detail_type)
        self._grant_objects(role, ["s3:GetObject"])

    def _grant_objects(self, role: iam.IRole, actions: list[str]) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions, resources=[self.bucket.arn_for_objects(EXPORTS_OBJECTS_PATTERN)]
            )
        )
        finding_on: IConstruct = role
        acknowledge(
            finding_on, arn_wildcard_finding(self.bucket, f"/{EXPORTS_OBJECTS_PATTERN}"), EXPORT_KEYS_REASON
        )

    @property
    def exports_bucket(self) -> s3.IBucket:
        return self.bucket
