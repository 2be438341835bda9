"""Alarms: rule evaluation and the alarm lifecycle, in a function of its own.

MeterEventsRecorded, MeterDaysChanged, FinalDaysChanged and MeterReadsExhausted on the platform
bus → one EventBridge rule each → SQS (with DLQ) → alarms function (batches, partial failures) →
alarms in the readings table → one AlarmChanged event per transition on the bus. The periodic
sweep (silence, instantaneous values, quiet one-shot alarms) reaches the same function through
the generic schedules (`definitions.ALARM_SCHEDULES`). The portal API acknowledges alarms: its
role gets the conditional write that takes, and the right to announce the transition.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from constructs import Construct

from hemera.definitions import ALARM_CHANGED, ALARM_EVENT_RULES, ALARMS_SOURCE, READINGS_TABLE, EventRuleDef
from hemera_infra.constants import ALARMS_PORTAL_TABLE_ACTIONS, ALARMS_TABLE_ACTIONS
from hemera_infra.event_consumers import EventFedConstruct, grant_put_platform_event
from hemera_infra.function_catalog import FunctionCatalog
from hemera_infra.storage import Storage


class Alarms(EventFedConstruct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        functions: FunctionCatalog,
        portal_role: iam.IRole | None = None,
        rules: Sequence[EventRuleDef] = ALARM_EVENT_RULES,
    ) -> None:
        super().__init__(scope, construct_id, rules=rules, bus=storage.event_bus, functions=functions)
        self._grant_alarm_access(storage)
        if portal_role is not None:
            self._grant_portal_acks(storage, portal_role)

    def _grant_alarm_access(self, storage: Storage) -> None:
        storage.table(READINGS_TABLE).grant(self.function, *ALARMS_TABLE_ACTIONS)
        storage.event_bus.grant_put_events_to(self.function)

    def _grant_portal_acks(self, storage: Storage, role: iam.IRole) -> None:
        storage.table(READINGS_TABLE).grant(role, *ALARMS_PORTAL_TABLE_ACTIONS)
        grant_put_platform_event(role, storage.event_bus, ALARMS_SOURCE, ALARM_CHANGED)
