"""translate: SQS batch of device messages (from the telemetry and RTU-event topic rules) →
canonical intervals, instantaneous values, registers, device events, outages and last-seen times.

Thin entry point: unwrap the records, hand the whole batch to the ingest service (which reads,
writes and archives per batch, not per message), quarantine what it rejected and report what
failed transiently as partial batch failures, which SQS delivers again and finally moves to the DLQ.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hemera.config import RuntimeSettings
from hemera.definitions import TELEMETRY_RULE
from hemera.domain.errors import RejectedMessage
from hemera.observability import logger, metrics, tracer
from hemera.services.ingest import (
    DeviceMessage,
    Disposition,
    IngestPorts,
    MessageResult,
    ingest_batch,
    quarantine_message,
    unwrap_rule_message,
)
from hemera.wiring import ingest_ports


@cache
def _ports() -> IngestPorts:
    return ingest_ports(RuntimeSettings.from_environ(os.environ))


def _received_at(record: dict[str, Any]) -> datetime:
    sent_ms = record.get("attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(sent_ms) / 1000, tz=UTC) if sent_ms else datetime.now(UTC)


def _quarantine(
    message_id: str, original: bytes, topic: str | None, received_at: datetime, error: RejectedMessage
) -> None:
    where = quarantine_message(message_id, original, topic, received_at, error, _ports().quarantine)
    logger.warning(
        "message quarantined",
        extra={"reason": error.reason, "detail": str(error), "key": where, "correlation_id": message_id},
    )


def _settle(result: MessageResult, failures: list[dict[str, str]]) -> None:
    """Quarantine a rejected message (it then counts as handled) or report a transient failure."""
    message = result.message
    if result.disposition is Disposition.REJECTED and isinstance(result.error, RejectedMessage):
        try:
            _quarantine(message.message_id, message.payload, message.topic, message.received_at, result.error)
        except Exception:
            logger.exception("quarantine write failed", extra={"correlation_id": message.message_id})
            failures.append({"itemIdentifier": message.message_id})
    elif result.disposition is Disposition.FAILED:
        logger.warning(
            "message failed, will be delivered again",
            extra={
                "tenant": result.tenant_id,
                "error": repr(result.error),
                "correlation_id": message.message_id,
            },
        )
        failures.append({"itemIdentifier": message.message_id})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    messages: list[DeviceMessage] = []
    for record in event.get("Records", []):
        try:
            messages.append(
                unwrap_rule_message(
                    record["messageId"],
                    record["body"],
                    _received_at(record),
                    TELEMETRY_RULE.payload_attribute,
                    TELEMETRY_RULE.topic_attribute,
                )
            )
        except RejectedMessage as error:  # not a topic-rule message: no tenant to file it under
            _quarantine(
                record["messageId"], str(record.get("body", "")).encode(), None, _received_at(record), error
            )
    outcome = ingest_batch(messages, _ports())
    for result in outcome.results:
        _settle(result, failures)
    counts = {d: outcome.count(d) for d in Disposition}
    logger.info(
        "batch ingested",
        extra={
            "messages": len(event.get("Records", [])),
            **{d.value: n for d, n in counts.items()},
            "items_written": outcome.stats.items_written,
            "intervals_new": outcome.stats.intervals_new,
            "intervals_changed": outcome.stats.intervals_changed,
            "intervals_unchanged": outcome.stats.intervals_unchanged,
            "registers": outcome.device.registers,
            "events_new": outcome.device.events_new,
            "outages_saved": outcome.device.outages_saved,
        },
    )
    metrics.add_metric(name="IntervalsIngested", unit="Count", value=outcome.stats.intervals_new)
    metrics.add_metric(name="EnvelopesStored", unit="Count", value=counts[Disposition.STORED])
    metrics.add_metric(name="EnvelopesDuplicate", unit="Count", value=counts[Disposition.DUPLICATE])
    metrics.add_metric(name="MessagesQuarantined", unit="Count", value=counts[Disposition.REJECTED])
    if outcome.device.events_new:
        metrics.add_metric(name="DeviceEventsRecorded", unit="Count", value=outcome.device.events_new)
    archived_only = sum(
        r.archived_only_frames for r in outcome.results if r.disposition is Disposition.STORED
    )
    if archived_only:
        metrics.add_metric(name="FramesArchivedOnly", unit="Count", value=archived_only)
    return {"batchItemFailures": failures}
