"""curate: SQS batch of MeterDaysChanged events (EventBridge rule → SQS) → curated Parquet.

Thin entry point: unwrap each record's EventBridge event, call the curate service once for the
batch (it groups the listed meter-days by tenant and UTC day, one object each), shape the
partial-batch response. A record one of whose changes has not landed in the store yet, or could not
be curated, fails alone and SQS delivers it again (after 3 receives, to the DLQ).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from hemera.config import RuntimeSettings
from hemera.definitions import CURATE_RULE
from hemera.observability import logger, metrics, tracer
from hemera.services.curate import (
    ChangeNotLanded,
    CuratePorts,
    changes_of_messages,
    curate_changes,
)
from hemera.wiring import curate_ports


@cache
def _ports() -> CuratePorts:
    return curate_ports(RuntimeSettings.from_environ(os.environ))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    messages = ((record.message_id, record.body) for record in SQSEvent(event).records)
    changes, failed = changes_of_messages(messages, CURATE_RULE.source, CURATE_RULE.detail_type)
    outcome = curate_changes(changes, _ports(), datetime.now(UTC))
    for record_id, failure in outcome.failures.items():
        first = changes[record_id][0]  # an event lists the changes of one tenant
        logger.append_keys(tenant=first.tenant_id, correlation_id=first.correlation_id or record_id)
        logger.warning(
            "change not curated, will be retried",
            extra={
                "reason": getattr(failure, "reason", type(failure).__name__),
                "detail": str(failure),
                "message_id": record_id,
                "changes": len(changes[record_id]),
            },
        )
    logger.remove_keys(["tenant", "correlation_id"])
    for written in outcome.objects:
        logger.info(
            "tenant-day curated",
            extra={
                "tenant": written.tenant_id,
                "day": written.day.isoformat(),
                "key": written.key,
                "rows": written.rows,
            },
        )
    not_landed = sum(isinstance(e, ChangeNotLanded) for e in outcome.failures.values())
    metrics.add_metric(name="IntervalsCurated", unit="Count", value=outcome.rows)
    metrics.add_metric(name="CuratedObjectsWritten", unit="Count", value=len(outcome.objects))
    metrics.add_metric(name="CurateRecordsNotLanded", unit="Count", value=not_landed)
    metrics.add_metric(name="CurateRecordsFailed", unit="Count", value=len(outcome.failures) + len(failed))
    failed += outcome.failures
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}
