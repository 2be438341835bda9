"""translate: SQS batch of device messages (from the telemetry topic rule) → canonical intervals.

Thin entry point: unwrap each record, call the ingest service, shape the partial-batch response.
Rejected messages are quarantined under their tenant (and count as handled); transient errors fail
only their record, which SQS delivers again and finally moves to the DLQ.
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
    unwrap_rule_message,
)
from hemera.wiring import ingest_ports

processor = BatchProcessor(event_type=EventType.SQS)


@cache
def _ports() -> IngestPorts:
    return ingest_ports(RuntimeSettings.from_environ(os.environ))


def _received_at(record: SQSRecord) -> datetime:
    sent_ms = record.raw_event.get("attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(sent_ms) / 1000, tz=UTC) if sent_ms else datetime.now(UTC)


def _quarantine(record: SQSRecord, message: DeviceMessage | None, error: RejectedMessage) -> dict[str, Any]:
    original = message.payload if message else record.body.encode()
    topic = message.topic if message else None
    where = quarantine_message(
        record.message_id, original, topic, _received_at(record), error, _ports().quarantine
    )
    logger.warning("message quarantined", extra={"reason": error.reason, "detail": str(error), "key": where})
    metrics.add_metric(name="MessagesQuarantined", unit="Count", value=1)
    return {"quarantined": error.reason}


@tracer.capture_method
def record_handler(record: SQSRecord) -> dict[str, Any]:
    # Every log line of this record carries its own ids, never the previous record's.
    logger.append_keys(tenant=None, correlation_id=record.message_id)
    message: DeviceMessage | None = None
    try:
        message = unwrap_rule_message(
            record.message_id,
            record.body,
            _received_at(record),
            TELEMETRY_RULE.payload_attribute,
            TELEMETRY_RULE.topic_attribute,
        )
        logger.append_keys(tenant=topic_tenant(message.topic), correlation_id=record.message_id)
        outcome = ingest_message(message, _ports())
    except RejectedMessage as error:
        return _quarantine(record, message, error)
    logger.info(
        "envelope ingested",
        extra={
            "device": outcome.device_id,
            "meter": outcome.meter_id,
            "seq": outcome.seq,
            "intervals": outcome.intervals,
            "new": outcome.stats.intervals_new,
            "unchanged": outcome.stats.intervals_unchanged,
            "archived_only_frames": outcome.archived_only_frames,
        },
    )
    metrics.add_metric(name="IntervalsIngested", unit="Count", value=outcome.stats.intervals_new)
    if outcome.archived_only_frames:
        metrics.add_metric(name="FramesArchivedOnly", unit="Count", value=outcome.archived_only_frames)
    return {"intervals": outcome.intervals}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
