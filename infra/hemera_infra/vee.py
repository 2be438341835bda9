"""VEE: meter-day changes validated, estimated and edited into final days.

MeterDaysChanged on the platform bus → EventBridge rule → SQS (with DLQ) → vee function (batches,
partial failures) → final days in the readings table → FinalDaysChanged on the bus. The nightly
sweep reaches the same function through the generic schedules (`definitions.VEE_SCHEDULES`).
Operators' edits run VEE inside the portal API (synchronously, so the answer names the new
version): its role gets what that needs here, next to the VEE function's own grants.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

from hemera.definitions import READINGS_TABLE, SERIES_VALIDATED, VEE_RULE, VEE_SOURCE, EventRuleDef
from hemera_infra.constants import VEE_PORTAL_TABLE_ACTIONS, VEE_TABLE_ACTIONS
from hemera_infra.event_consumers import EventFedConstruct, grant_put_platform_event
from hemera_infra.function_catalog import FunctionCatalog
from hemera_infra.storage import Storage


class Vee(EventFedConstruct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        functions: FunctionCatalog,
        portal_role: iam.IRole | None = None,
        rule: EventRuleDef = VEE_RULE,
    ) -> None:
        # The tenants' VEE overrides are read from the readings table at run time (written at
        # onboarding), not baked into the environment: a new tenant needs no redeploy.
        super().__init__(scope, construct_id, rules=[rule], bus=storage.event_bus, functions=functions)
        self._grant_vee_access(storage)
        if portal_role is not None:
            self._grant_portal_edits(storage, portal_role)

    def _grant_vee_access(self, storage: Storage) -> None:
        storage.table(READINGS_TABLE).grant(self.function, *VEE_TABLE_ACTIONS)
        storage.event_bus.grant_put_events_to(self.function)

    def _grant_portal_edits(self, storage: Storage, role: iam.IRole) -> None:
        storage.table(READINGS_TABLE).grant(role, *VEE_PORTAL_TABLE_ACTIONS)
        grant_put_platform_event(role, storage.event_bus, VEE_SOURCE, SERIES_VALIDATED)
