"""Command sweeps: automatic re-reads of missing data and the expiry of unanswered commands.

The schedules (`definitions.COMMAND_SCHEDULES`) are built with the others by `Schedules`; this
construct gives their function what its jobs touch: the readings table (meters, series, commands,
the re-read log), the platform bus (`MeterReadsExhausted`) and the RTUs' command topics.
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from hemera.definitions import COMMAND_SWEEPS_FUNCTION, READINGS_TABLE
from hemera_infra.command_grants import grant_command_publish
from hemera_infra.function_catalog import FunctionCatalog
from hemera_infra.storage import Storage


class CommandSweeps(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, storage: Storage, functions: FunctionCatalog
    ) -> None:
        super().__init__(scope, construct_id)
        self.function: lambda_.Function = functions.function(COMMAND_SWEEPS_FUNCTION)
        self._grant_access(storage)

    def _grant_access(self, storage: Storage) -> None:
        storage.table(READINGS_TABLE).grant_read_write_data(self.function)
        storage.event_bus.grant_put_events_to(self.function)
        role = self.function.role
        assert role is not None  # FunctionCatalog builds every function with its own role
        grant_command_publish(self, role)
