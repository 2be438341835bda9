"""command_sweeps: the scheduled housekeeping of meter commands (EventBridge schedule → here).

Two jobs, named by the schedule's payload (`definitions.COMMAND_SCHEDULES`):
- `rereads`: for every tenant, find gaps in the meters' data and send on-demand reads for them
  (bounded per run; `hemera.services.rereads`);
- `expire_commands`: mark the commands whose RTU never acknowledged them `expired`.
Thin entry point: the job's work is in the service; the result is logged and returned.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hemera.config import RuntimeSettings
from hemera.definitions import EXPIRE_COMMANDS_JOB, REREADS_JOB
from hemera.observability import logger, metrics, tracer
from hemera.services.rereads import SweepPorts, expire_all_tenants, sweep_all_tenants
from hemera.wiring import sweep_ports


@cache
def _ports() -> SweepPorts:
    return sweep_ports(RuntimeSettings.from_environ(os.environ))


class UnknownJob(ValueError):
    """A schedule payload naming no job of this function (a wiring mistake: fail loudly)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = event.get("job")
    now = datetime.now(UTC)
    if job == REREADS_JOB:
        reports = sweep_all_tenants(_ports(), now)
        sent = sum(len(r.sent) for r in reports)
        metrics.add_metric(name="RereadsSent", unit=MetricUnit.Count, value=sent)
        metrics.add_metric(
            name="RereadsExhausted", unit=MetricUnit.Count, value=sum(len(r.exhausted) for r in reports)
        )
        return {
            "job": job,
            "tenants": {
                r.tenant_id: {
                    "gaps": r.gaps,
                    "sent": len(r.sent),
                    "exhausted": len(r.exhausted),
                    "deferred": r.deferred,
                }
                for r in reports
            },
        }
    if job == EXPIRE_COMMANDS_JOB:
        expired = expire_all_tenants(_ports(), now)
        metrics.add_metric(name="CommandsExpired", unit=MetricUnit.Count, value=sum(expired.values()))
        return {"job": job, "expired": expired}
    raise UnknownJob(f"command_sweeps has no job {job!r}")
