"""command_ack: SQS batch of RTU acks (topic rule `hemera/+/+/up/cmd-ack` → SQS) → command status.

Thin entry point: unwrap each record (base64 payload + MQTT topic, as every topic rule sends),
take tenant and device from the topic (the device's authenticated identity), let the commands
service close the command. An ack that cannot be used (not an ack, unknown command, or published
by another RTU than the command's) is logged and dropped: redelivering it would not change it.
A storage failure fails the record alone and SQS delivers it again (after 3 receives, the DLQ).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from hemera.config import RuntimeSettings
from hemera.definitions import COMMAND_ACK_RULE
from hemera.domain.commands import AckDeviceMismatch, MalformedAck
from hemera.domain.errors import ConcurrentUpdate, InvalidTenantId
from hemera.domain.tenancy import parse_device_topic
from hemera.observability import logger, metrics, tracer
from hemera.ports.commands import CommandStore
from hemera.services.commands import record_ack
from hemera.wiring import command_ports


@cache
def _store() -> CommandStore:
    return command_ports(RuntimeSettings.from_environ(os.environ)).commands


def unwrap(body: str) -> tuple[str, str, bytes]:
    """(tenant, device, ack bytes) of one rule message; MalformedAck if it is not one."""
    try:
        message = json.loads(body)
        topic = message[COMMAND_ACK_RULE.topic_attribute]
        payload = base64.b64decode(message[COMMAND_ACK_RULE.payload_attribute], validate=True)
        tenant, device, rest = parse_device_topic(topic)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise MalformedAck(f"not a topic-rule message: {type(exc).__name__}") from exc
    if rest != "up/cmd-ack":
        raise MalformedAck(f"not an ack topic: {topic}")
    return tenant, device, payload


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failed: list[str] = []
    closed = refused = 0
    for record in SQSEvent(event).records:
        try:
            tenant, device, payload = unwrap(record.body)
            logger.append_keys(tenant=tenant, correlation_id=record.message_id)
            command = record_ack(_store(), tenant, device, payload)
        except (MalformedAck, AckDeviceMismatch, InvalidTenantId) as error:
            refused += 1
            logger.warning(
                "ack refused", extra={"reason": getattr(error, "reason", "invalid"), "detail": str(error)}
            )
            continue
        except ConcurrentUpdate as error:
            logger.warning("ack not applied, will be retried", extra={"detail": str(error)})
            failed.append(record.message_id)
            continue
        if command is None:
            refused += 1
            logger.warning("ack for no command of the tenant", extra={"device": device})
            continue
        closed += 1
        logger.info(
            "command closed by its ack",
            extra={"command": command.id, "meter": command.meter_id, "status": command.status.value},
        )
    logger.remove_keys(["tenant", "correlation_id"])
    metrics.add_metric(name="CommandAcksApplied", unit="Count", value=closed)
    metrics.add_metric(name="CommandAcksRefused", unit="Count", value=refused)
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}
