"""translate: SQS batch of device messages (from the telemetry topic rule) → canonical intervals.

Thin entry point: parse each record, call the ingest service, shape the partial-batch response.
Rejected messages are quarantined (and count as handled); transient errors fail only their record,
which SQS delivers again and finally moves to the DLQ.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from hemera.config import RuntimeSettings
from hemera.definitions import TELEMETRY_RULE
from hemera.domain.errors import RejectedMessage
from hemera.observability import logger, metrics, tracer
from hemera.services.ingest import (
    DeviceMessage,
    IngestPorts,
    ingest_message,
    quarantine_message,
    topic_tenant,
)
from hemera.wiring import ingest_ports

processor = BatchProcessor(event_type=EventType.SQS)


@cache
def _ports() -> IngestPorts:
    return ingest_ports(RuntimeSettings.from_environ(os.environ))


def _received_at(record: SQSRecord) -> datetime:
    sent_ms = record.raw_event.get("attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(sent_ms) / 1000, tz=UTC) if sent_ms else datetime.now(UTC)


@tracer.capture_method
def record_handler(record: SQSRecord) -> dict[str, Any]:
    message = DeviceMessage(record.message_id, record.body.encode(), _received_at(record))
    tenant_id, _ = topic_tenant(message.body, TELEMETRY_RULE.topic_attribute)
    logger.append_keys(tenant=tenant_id, correlation_id=record.message_id)
    ports = _ports()
    try:
        outcome = ingest_message(message, ports, TELEMETRY_RULE.topic_attribute)
    except RejectedMessage as error:
        where = quarantine_message(message, error, ports.quarantine, TELEMETRY_RULE.topic_attribute)
        logger.warning(
            "message quarantined", extra={"reason": error.reason, "detail": str(error), "key": where}
        )
        metrics.add_metric(name="MessagesQuarantined", unit="Count", value=1)
        return {"quarantined": error.reason}
    logger.info(
        "envelope ingested",
        extra={
            "device": outcome.device_id,
            "meter": outcome.meter_id,
            "seq": outcome.seq,
            "intervals": outcome.intervals,
            "new": outcome.stats.intervals_new,
            "unchanged": outcome.stats.intervals_unchanged,
        },
    )
    metrics.add_metric(name="IntervalsIngested", unit="Count", value=outcome.stats.intervals_new)
    return {"intervals": outcome.intervals}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
