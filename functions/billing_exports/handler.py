"""billing_exports: the hourly "exports due" job and the restatements of exported periods.

Two kinds of invocation (`hemera.definitions`, BILLING section):
- the schedule `hemera_exports_due` (EventBridge in AWS, whose target input is the payload
  `{"job": "exports_due"}`; the local scheduler sends the whole scheduled event with the payload
  as `detail`): every tenant's due exports are written once (`run_due_exports`). The payload may
  carry `as_of` (an ISO time with offset) to run the job as of another time (demo, replays).
- an SQS batch of `FinalDaysChanged` events (EventBridge rule → SQS): the changed days of each
  tenant, coalesced over the batch, restate the exports whose period holds them. A tenant whose
  restatements fail fails its records alone; SQS delivers them again (after 3 receives, the DLQ).

Thin entry point: parse, call the exports service, log and shape the response.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from hemera.config import RuntimeSettings
from hemera.definitions import EXPORT_RESTATEMENTS_RULE, EXPORTS_DUE_JOB
from hemera.domain.errors import HemeraError
from hemera.domain.final_series import FinalDayChange
from hemera.observability import logger, metrics, tracer
from hemera.services.exports import (
    ExportPorts,
    changes_of_detail,
    restate_changed_periods,
    run_due_exports,
    tenant_schedules,
)
from hemera.tenants import ExportSchedule
from hemera.wiring import export_ports


class UnknownJob(HemeraError):
    """A schedule payload naming no job of this function (a wiring mistake: fail loudly)."""

    reason = "unknown_job"


class NotAChangeEvent(HemeraError):
    reason = "not_a_final_days_changed_event"


@cache
def _ports() -> ExportPorts:
    return export_ports(RuntimeSettings.from_environ(os.environ))


def _schedules() -> dict[str, tuple[ExportSchedule, ...]]:
    """Every tenant's schedules, read at each run (a tenant applied since is included)."""
    ports = _ports()
    return tenant_schedules(ports.registry, ports.schedules)


def announced_changes(body: str) -> tuple[str, tuple[FinalDayChange, ...]]:
    """(tenant, changes) of one SQS body: the EventBridge event the rule forwarded."""
    try:
        event = EventBridgeEvent(json.loads(body))
        rule = EXPORT_RESTATEMENTS_RULE
        if event.source != rule.source or event.detail_type != rule.detail_type:
            raise NotAChangeEvent(f"unexpected event {event.source}/{event.detail_type}")
        return changes_of_detail(event.detail)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotAChangeEvent(f"not a FinalDaysChanged event: {exc}") from exc


def _as_of(payload: dict[str, Any], event: dict[str, Any]) -> datetime:
    given = payload.get("as_of") or event.get("time")
    if not given:
        return datetime.now(UTC)
    instant = datetime.fromisoformat(str(given).replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"as_of {given!r} needs a UTC offset")
    return instant


def exports_due(payload: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    as_of = _as_of(payload, event)
    outcome = run_due_exports(_ports(), _schedules(), as_of, datetime.now(UTC))
    for export in outcome.written:
        logger.info(
            "export written",
            extra={
                "tenant": export.tenant_id,
                "export": export.id,
                "schedule": export.schedule_id,
                "files": [f.name for f in export.latest.files],
                "rows": sum(f.rows for f in export.latest.files),
            },
        )
    for run, error in outcome.failures:
        logger.error(
            "export failed",
            extra={
                "tenant": run.tenant_id,
                "export": run.export_id,
                "error": type(error).__name__,
                "detail": str(error),
            },
        )
    metrics.add_metric(name="ExportsWritten", unit="Count", value=len(outcome.written))
    metrics.add_metric(name="ExportsFailed", unit="Count", value=len(outcome.failures))
    if outcome.failures:
        # The schedule retries (EventBridge); the exports already written are not written again.
        raise RuntimeError(f"{len(outcome.failures)} export(s) failed; see the log")
    return {
        "job": EXPORTS_DUE_JOB,
        "as_of": as_of.isoformat(),
        "written": [e.id for e in outcome.written],
        "already_done": list(outcome.already_done),
    }


def restatements(event: dict[str, Any]) -> dict[str, Any]:
    by_tenant: dict[str, list[FinalDayChange]] = defaultdict(list)
    records_of: dict[str, list[str]] = defaultdict(list)
    failed: list[str] = []
    for record in SQSEvent(event).records:
        try:
            tenant, announced = announced_changes(record.body)
        except NotAChangeEvent as error:
            logger.error("not a change event", extra={"message_id": record.message_id, "detail": str(error)})
            failed.append(record.message_id)
            continue
        by_tenant[tenant] += announced
        records_of[tenant].append(record.message_id)
    restated = 0
    now = datetime.now(UTC)
    for tenant, changes in by_tenant.items():
        try:
            for export in restate_changed_periods(_ports(), tenant, changes, now):
                restated += 1
                logger.info(
                    "export restated",
                    extra={
                        "tenant": tenant,
                        "export": export.id,
                        "version": export.latest.version,
                        "reason": export.latest.reason,
                        "diff": len(export.latest.diff),
                    },
                )
        except Exception as error:
            logger.warning(
                "restatement failed, will be retried",
                extra={"tenant": tenant, "error": type(error).__name__, "detail": str(error)},
            )
            failed += records_of[tenant]
    metrics.add_metric(name="ExportsRestated", unit="Count", value=restated)
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return restatements(event)
    detail = event.get("detail")
    payload: dict[str, Any] = detail if isinstance(detail, dict) else event
    job = payload.get("job")
    if job == EXPORTS_DUE_JOB:
        return exports_due(payload, event)
    raise UnknownJob(f"billing_exports has no job {job!r}")
