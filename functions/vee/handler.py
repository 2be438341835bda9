"""vee: validation, estimation and editing of tenant-local days.

Two ways in, one function:
- an SQS batch of MeterDaysChanged events (EventBridge rule → SQS): the local days each changed
  UTC day overlaps are recomputed; a record whose day has not landed yet, or could not be
  computed or stored, fails alone and SQS delivers it again (after 3 receives, the DLQ);
- the nightly schedule (`{"job": "vee_sweep"}`): yesterday's local day of every meter, bounded.

Thin entry point: unwrap the events, call the VEE service, shape the partial-batch response.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from hemera.config import RuntimeSettings
from hemera.definitions import VEE_RULE
from hemera.observability import logger, metrics, tracer
from hemera.services.curate import ChangeNotLanded, changes_of_messages
from hemera.services.vee import (
    SWEEP_JOB,
    VeePorts,
    on_days_changed,
    sweep,
)
from hemera.wiring import vee_ports


@cache
def _ports() -> VeePorts:
    return vee_ports(RuntimeSettings.from_environ(os.environ))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("job") == SWEEP_JOB:
        return _sweep(context)
    messages = ((record.message_id, record.body) for record in SQSEvent(event).records)
    changes, failed = changes_of_messages(messages, VEE_RULE.source, VEE_RULE.detail_type)
    outcome = on_days_changed(_ports(), changes, datetime.now(UTC))
    for record_id, failure in outcome.failures.items():
        first = changes[record_id][0]  # an event lists the changes of one tenant
        logger.append_keys(tenant=first.tenant_id, correlation_id=first.correlation_id or record_id)
        logger.warning(
            "changed days not validated, will be retried",
            extra={
                "reason": getattr(failure, "reason", type(failure).__name__),
                "detail": str(failure),
                "message_id": record_id,
            },
        )
    logger.remove_keys(["tenant", "correlation_id"])
    for change in outcome.changes:
        logger.info("final day stored", extra=change.detail())
    not_landed = sum(isinstance(e, ChangeNotLanded) for e in outcome.failures.values())
    metrics.add_metric(name="FinalDaysStored", unit="Count", value=len(outcome.changes))
    metrics.add_metric(name="VeeRecordsNotLanded", unit="Count", value=not_landed)
    metrics.add_metric(name="VeeRecordsFailed", unit="Count", value=len(outcome.failures) + len(failed))
    failed += outcome.failures
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}


def _sweep(context: LambdaContext) -> dict[str, Any]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    outcome = sweep(_ports(), datetime.now(UTC), remaining_ms=remaining)
    logger.info(
        "vee sweep done",
        extra={
            "days_checked": outcome.days_checked,
            "days_stored": len(outcome.changes),
            "failures": outcome.failures,
            "truncated": outcome.truncated,
        },
    )
    metrics.add_metric(name="VeeSweepDaysChecked", unit="Count", value=outcome.days_checked)
    metrics.add_metric(name="VeeSweepDaysStored", unit="Count", value=len(outcome.changes))
    metrics.add_metric(name="VeeSweepTruncated", unit="Count", value=int(outcome.truncated))
    return {
        "days_checked": outcome.days_checked,
        "days_stored": len(outcome.changes),
        "failures": outcome.failures,
        "truncated": outcome.truncated,
    }
