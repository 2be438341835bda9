"""billing_exports: the hourly "exports due" job, on-demand exports, and the (debounced)
restatements of exported periods.

The invocations (`hemera.definitions`, BILLING section):
- the schedule `hemera_exports_due` (EventBridge in AWS, whose target input is the payload
  `{"job": "exports_due"}`; the local scheduler gives the payload too): every tenant's due exports
  are written once (`run_due_exports`). The payload may carry `as_of` (an ISO time with offset)
  to run the job as of another time (demo, replays).
- the schedule `hemera_restatements` (`{"job": "restatements"}`, every 15 minutes): one new
  version of each export with pending restatements (`run_restatements`).
- an SQS batch of `FinalDaysChanged` events (EventBridge rule → SQS): the changed days inside
  exported periods are recorded as pending restatements. A tenant whose recording fails fails its
  records alone; SQS delivers them again (after 3 receives, the DLQ).
- an SQS batch of `ExportRequested` events (one on-demand export): rendered into version 1, or
  marked failed; one too large for an invocation is started in parts. A detail with `version`
  and `part` is one part of a version in parts (queued by any of the runs above): rendered and
  recorded; the delivery that records the last part finishes the version. A transient error
  fails the record (SQS delivers it again); its last receive marks the export failed instead.

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
from hemera.definitions import (
    EXPORT_REQUESTS_QUEUE,
    EXPORT_REQUESTS_RULE,
    EXPORT_RESTATEMENTS_RULE,
    EXPORTS_DUE_JOB,
    RESTATEMENTS_JOB,
)
from hemera.domain.errors import HemeraError
from hemera.domain.final_series import FinalDayChange
from hemera.observability import logger, metrics, tracer
from hemera.services.exports import (
    ExportPorts,
    RenderFailed,
    changes_of_detail,
    part_of_detail,
    record_restatements,
    render_export_part,
    render_requested_export,
    request_of_detail,
    run_due_exports,
    run_restatements,
    tenant_schedules,
)
from hemera.tenants import ExportSchedule
from hemera.wiring import export_ports


class UnknownJob(HemeraError):
    """A schedule payload naming no job of this function (a wiring mistake: fail loudly)."""

    reason = "unknown_job"


class NotAChangeEvent(HemeraError):
    reason = "not_a_final_days_changed_event"


class NotARequestEvent(HemeraError):
    reason = "not_an_export_requested_event"


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


def requested_export(body: str) -> tuple[str, str, tuple[int, int] | None]:
    """(tenant, export id, (version, part) of a part or None) of one SQS body: the
    `ExportRequested` event the rule forwarded."""
    try:
        event = EventBridgeEvent(json.loads(body))
        rule = EXPORT_REQUESTS_RULE
        if event.source != rule.source or event.detail_type != rule.detail_type:
            raise NotARequestEvent(f"unexpected event {event.source}/{event.detail_type}")
        tenant, export_id = request_of_detail(event.detail)
        return tenant, export_id, part_of_detail(event.detail)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotARequestEvent(f"not an ExportRequested event: {exc}") from exc


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
    for export in outcome.rendering:
        assert export.rendering is not None
        logger.info(
            "export rendering in parts",
            extra={"tenant": export.tenant_id, "export": export.id, "parts": export.rendering.parts},
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
        "rendering": [e.id for e in outcome.rendering],
        "already_done": list(outcome.already_done),
    }


def record_changes(event: dict[str, Any]) -> dict[str, Any]:
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
    recorded = 0
    for tenant, changes in by_tenant.items():
        try:
            for export_id, count in record_restatements(_ports(), tenant, changes).items():
                recorded += count
                logger.info(
                    "restatement pending", extra={"tenant": tenant, "export": export_id, "changes": count}
                )
        except Exception as error:
            logger.warning(
                "recording restatements failed, will be retried",
                extra={"tenant": tenant, "error": type(error).__name__, "detail": str(error)},
            )
            failed += records_of[tenant]
    metrics.add_metric(name="RestatementChangesRecorded", unit="Count", value=recorded)
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}


def render_requests(event: dict[str, Any]) -> dict[str, Any]:
    failed: list[str] = []
    for record in SQSEvent(event).records:
        try:
            tenant, export_id, part = requested_export(record.body)
        except NotARequestEvent as error:
            logger.error("not a request event", extra={"message_id": record.message_id, "detail": str(error)})
            failed.append(record.message_id)
            continue
        receives = int(record.attributes.approximate_receive_count or 1)
        last_attempt = receives >= EXPORT_REQUESTS_QUEUE.max_receive_count
        try:
            if part is None:
                export = render_requested_export(
                    _ports(), tenant, export_id, datetime.now(UTC), last_attempt=last_attempt
                )
            else:
                export = render_export_part(
                    _ports(), tenant, export_id, *part, datetime.now(UTC), last_attempt=last_attempt
                )
        except RenderFailed as error:
            logger.warning(
                "export rendering failed, will be retried",
                extra={
                    "tenant": tenant,
                    "export": export_id,
                    "part": part,
                    "receives": receives,
                    "detail": str(error),
                },
            )
            failed.append(record.message_id)
            continue
        if export is None:
            logger.info(
                "export request already handled", extra={"tenant": tenant, "export": export_id, "part": part}
            )
            metrics.add_metric(name="ExportRequestsAlreadyHandled", unit="Count", value=1)
            continue
        if export.rendering is not None:
            logger.info(
                "export rendering in parts",
                extra={
                    "tenant": tenant,
                    "export": export_id,
                    "version": export.rendering.version,
                    "parts": export.rendering.parts,
                    "part": part,
                },
            )
            metrics.add_metric(
                name="ExportPartsQueued" if part is None else "ExportPartsRendered", unit="Count", value=1
            )
            continue
        logger.info(
            f"export {export.state.value}",
            extra={"tenant": tenant, "export": export_id, "part": part, "failure": export.failure},
        )
        if part is None:
            metrics.add_metric(name=f"ExportsOnDemand{export.state.value.title()}", unit="Count", value=1)
        else:  # the last part finished the version, or a part failed it
            outcome = "Failed" if export.failure else "Written"
            metrics.add_metric(name=f"ExportVersionsInParts{outcome}", unit="Count", value=1)
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}


def _detail_type(body: str) -> str | None:
    try:
        found = json.loads(body).get("detail-type")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def sqs_batch(event: dict[str, Any]) -> dict[str, Any]:
    """A batch of one of the function's queues: `ExportRequested` records are rendered, every
    other record is read as `FinalDaysChanged` (and fails alone if it is not one)."""
    records = event.get("Records") or []
    requests = [
        r for r in records if _detail_type(str(r.get("body", ""))) == EXPORT_REQUESTS_RULE.detail_type
    ]
    changes = [r for r in records if r not in requests]
    failures: list[dict[str, str]] = []
    if requests:
        failures += render_requests({**event, "Records": requests})["batchItemFailures"]
    if changes:
        failures += record_changes({**event, "Records": changes})["batchItemFailures"]
    return {"batchItemFailures": failures}


def restatements(payload: dict[str, Any]) -> dict[str, Any]:
    outcome = run_restatements(_ports(), datetime.now(UTC))
    for export in outcome.restated:
        logger.info(
            "export restated",
            extra={
                "tenant": export.tenant_id,
                "export": export.id,
                "version": export.latest.version,
                "reason": export.latest.reason,
                "diff": len(export.latest.diff),
            },
        )
    for tenant, export_id, error in outcome.failures:
        logger.error(
            "restatement failed",
            extra={
                "tenant": tenant,
                "export": export_id,
                "error": type(error).__name__,
                "detail": str(error),
            },
        )
    for export in outcome.rendering:
        assert export.rendering is not None
        logger.info(
            "restatement rendering in parts",
            extra={
                "tenant": export.tenant_id,
                "export": export.id,
                "version": export.rendering.version,
                "parts": export.rendering.parts,
            },
        )
    metrics.add_metric(name="ExportsRestated", unit="Count", value=len(outcome.restated))
    if outcome.failures:
        # Their changes stay pending: the next run (or EventBridge's retry) renders them.
        raise RuntimeError(f"{len(outcome.failures)} restatement(s) failed; see the log")
    return {
        "job": RESTATEMENTS_JOB,
        "restated": [f"{e.id}@v{e.latest.version}" for e in outcome.restated],
        "rendering": [f"{e.id}@v{e.rendering.version}" for e in outcome.rendering if e.rendering],
        "unchanged": list(outcome.unchanged),
    }


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return sqs_batch(event)
    detail = event.get("detail")
    payload: dict[str, Any] = detail if isinstance(detail, dict) else event
    job = payload.get("job")
    if job == EXPORTS_DUE_JOB:
        return exports_due(payload, event)
    if job == RESTATEMENTS_JOB:
        return restatements(payload)
    raise UnknownJob(f"billing_exports has no job {job!r}")
