"""deliver: SQS batch of deliveries (one notification for one channel each) → one attempt each.

Thin entry point: read each record's delivery, let the notifications service attempt them all in
parallel (one attempt per message, short timeout), shape the partial-batch response. A failed
attempt is not a failed record: the service has queued the next attempt with its backoff delay, or
stored a dead letter after the last one (`NotificationsDeadLettered`, the error metric to alarm
on). A record fails only when its outcome could not be recorded (storage, queue) or another worker
holds the same delivery right now; SQS then hands it out again.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from hemera.config import RuntimeSettings
from hemera.domain.errors import MalformedNotification
from hemera.domain.notifications import AttemptOutcome, Delivery, DeliveryResult
from hemera.observability import logger, metrics, tracer
from hemera.services.notifications import NotificationPorts, NotifySettings, deliver_all
from hemera.wiring import notification_ports

_METRICS = {
    DeliveryResult.DELIVERED: "NotificationsDelivered",
    DeliveryResult.DUPLICATE: "NotificationDuplicatesSkipped",
    DeliveryResult.RETRY_SCHEDULED: "NotificationRetriesScheduled",
    DeliveryResult.DEAD_LETTERED: "NotificationsDeadLettered",
    DeliveryResult.IN_FLIGHT: "NotificationsInFlightElsewhere",
}


@cache
def _ports() -> NotificationPorts:
    return notification_ports(
        RuntimeSettings.from_environ(os.environ), NotifySettings.from_environ(os.environ)
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _log(outcome: AttemptOutcome) -> None:
    delivery = outcome.delivery
    extra = {
        "tenant": delivery.tenant_id,
        "correlation_id": delivery.notification.notification_id,
        "delivery_id": delivery.delivery_id,
        "channel": delivery.channel.kind.value,
        "attempt": delivery.attempt,
        "result": outcome.result.value,
    }
    if outcome.result is DeliveryResult.DEAD_LETTERED:
        logger.error("delivery dead-lettered", extra={**extra, "error": outcome.error})
    elif outcome.result is DeliveryResult.RETRY_SCHEDULED:
        logger.warning(
            "delivery attempt failed, retry queued",
            extra={**extra, "error": outcome.error, "retry_in_s": outcome.retry_delay_s},
        )
    else:
        logger.info("delivery attempt", extra=extra)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failed: list[str] = []
    deliveries: list[tuple[str, Delivery]] = []
    for record in SQSEvent(event).records:
        try:
            deliveries.append((record.message_id, Delivery.from_message(record.body)))
        except MalformedNotification as error:
            logger.error(
                "not a delivery message", extra={"message_id": record.message_id, "detail": str(error)}
            )
            failed.append(record.message_id)
    counts = dict.fromkeys(_METRICS.values(), 0)
    outcomes = deliver_all(_ports(), [d for _, d in deliveries], _now)
    for (message_id, delivery), outcome in zip(deliveries, outcomes, strict=True):
        if isinstance(outcome, Exception):
            logger.warning(
                "delivery outcome not recorded, will be retried",
                extra={
                    "tenant": delivery.tenant_id,
                    "delivery_id": delivery.delivery_id,
                    "detail": repr(outcome),
                },
            )
            failed.append(message_id)
            continue
        _log(outcome)
        counts[_METRICS[outcome.result]] += 1
        if outcome.result is DeliveryResult.IN_FLIGHT:
            failed.append(message_id)
    for name, value in counts.items():
        metrics.add_metric(name=name, unit="Count", value=value)
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}
