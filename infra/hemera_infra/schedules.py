"""Periodic jobs: one EventBridge rule per `ScheduleDef`, targeting the definition's function.

The local cloud's scheduler fires the same definitions. A capability that adds a schedule grants
its function the data access it needs in its own construct; this one only wires the clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from hemera.definitions import SCHEDULES, ScheduleDef
from hemera_infra.constants import SCHEDULE_RETRY_ATTEMPTS
from hemera_infra.function_catalog import FunctionCatalog


class Schedules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: FunctionCatalog,
        schedules: Sequence[ScheduleDef] = SCHEDULES,
    ) -> None:
        super().__init__(scope, construct_id)
        self._functions = functions
        self.rules = {schedule.name: self._build_rule(schedule) for schedule in schedules}

    def _build_rule(self, schedule: ScheduleDef) -> events.Rule:
        target = targets.LambdaFunction(
            self._functions.function(schedule.function),
            event=events.RuleTargetInput.from_object(dict(schedule.payload)),
            retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
        )
        return events.Rule(
            self,
            schedule.name,
            schedule=events.Schedule.expression(schedule.expression),
            targets=[target],
            description=f"Hemera schedule {schedule.name}: {schedule.expression}",
        )
