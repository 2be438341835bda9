"""notify: SQS batch of AlarmChanged / ExportWritten events (EventBridge rules → SQS) → one message
per channel of the event's tenant on the deliveries queue.

Thin entry point: unwrap each record's EventBridge event, turn it into a notification, let the
notifications service fan it out. Nothing is sent from here, so a slow webhook of one tenant never
holds up this batch. An event that cannot be read is retried and ends in the DLQ for a person; an
event of a tenant without channels (never applied) is logged and dropped.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from hemera.config import RuntimeSettings
from hemera.domain.errors import MalformedNotification
from hemera.domain.notifications import Notification
from hemera.observability import logger, metrics, tracer
from hemera.services.notifications import NotificationPorts, NotifySettings, fan_out, notification_of_event
from hemera.wiring import notification_ports


@cache
def _ports() -> NotificationPorts:
    return notification_ports(
        RuntimeSettings.from_environ(os.environ), NotifySettings.from_environ(os.environ)
    )


def announced_notification(body: str) -> Notification:
    """The notification of one SQS body: the EventBridge event a notify rule forwarded."""
    try:
        event = EventBridgeEvent(json.loads(body))
        return notification_of_event(event.source, event.detail_type, event.detail)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedNotification(f"not an EventBridge event: {type(exc).__name__}: {exc}") from exc


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failed: list[str] = []
    queued = without_channels = 0
    for record in SQSEvent(event).records:
        try:
            notification = announced_notification(record.body)
        except MalformedNotification as error:
            logger.error(
                "not a notification event",
                extra={"message_id": record.message_id, "reason": error.reason, "detail": str(error)},
            )
            failed.append(record.message_id)
            continue
        logger.append_keys(tenant=notification.tenant_id, correlation_id=notification.notification_id)
        try:
            deliveries = fan_out(_ports(), notification)
        except Exception as error:  # storage or queue: the record is handed out again
            logger.warning("fan-out failed, will be retried", extra={"detail": str(error)})
            failed.append(record.message_id)
            continue
        if deliveries is None:
            without_channels += 1
            logger.warning(
                "tenant has no notification channels (not applied?)", extra={"event": notification.event_type}
            )
            continue
        queued += len(deliveries)
        logger.info(
            "notification fanned out",
            extra={"event": notification.event_type, "channels": [d.channel.channel_id for d in deliveries]},
        )
    logger.remove_keys(["tenant", "correlation_id"])
    metrics.add_metric(name="NotificationDeliveriesQueued", unit="Count", value=queued)
    metrics.add_metric(name="NotificationsWithoutChannels", unit="Count", value=without_channels)
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}
