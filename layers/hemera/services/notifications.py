"""Notifications: each platform event for a tenant reaches each of the tenant's channels once.

Two steps, two functions, one queue between them, so that one tenant's failing webhook never
holds up another's delivery:

1. `fan_out` (notify function): an AlarmChanged / ExportWritten event becomes one message per
   channel of its tenant (the tenant's SNS topic, each webhook) on the deliveries queue;
2. `deliver_all` (deliver function): each message is ONE attempt with a short timeout, the
   messages of a batch in parallel. A failed attempt is sent back to the queue with the retry
   policy's delay (SQS DelaySeconds ≤ 900 s) — it never waits inside a function — and after the
   last attempt a dead letter is stored. A ledger entry per (notification, channel), claimed
   with a conditional write, makes deliveries idempotent: the same event twice, or the same
   message handed to two workers, is delivered once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hemera.definitions import (
    ALARM_CHANGED,
    ALARMS_SOURCE,
    BILLING_SOURCE,
    EXPORT_WRITTEN,
    NOTIFY_DELIVERIES_QUEUE,
)
from hemera.domain.errors import DeliveryFailed, MalformedNotification
from hemera.domain.notifications import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    AttemptOutcome,
    ChannelKind,
    ClaimResult,
    DeadLetter,
    Delivery,
    DeliveryChannel,
    DeliveryResult,
    Notification,
    RetryPolicy,
    alarm_notification,
    delivery_channels,
    export_notification,
    signature_header,
)
from hemera.domain.tenancy import TenantContext
from hemera.ports.notifications import (
    ChannelDirectory,
    DeadLetterStore,
    DeliveryLedger,
    DeliveryQueue,
    SigningSecrets,
    TopicPublisher,
    WebhookSender,
)

TOPIC_ARN_PREFIX_ENV_VAR = "HEMERA_NOTIFY_TOPIC_ARN_PREFIX"
MAX_ATTEMPTS_ENV_VAR = "HEMERA_NOTIFY_MAX_ATTEMPTS"
RETRY_BASE_ENV_VAR = "HEMERA_NOTIFY_RETRY_BASE_S"
WEBHOOK_TIMEOUT_ENV_VAR = "HEMERA_NOTIFY_WEBHOOK_TIMEOUT_S"
ATTEMPT_HEADER = "Hemera-Attempt"
# Deliveries of one batch attempted at once (the deliveries queue's batch size).
PARALLEL_ATTEMPTS = 10


class NotifySettings(BaseModel):
    """The notification functions' own settings, parsed once from the environment at cold start."""

    model_config = ConfigDict(frozen=True)

    # None on the local cloud: its queues carry their definitions' local names (looked up once).
    deliveries_queue_url: str | None = None
    # `arn:<partition>:sns:<region>:<account>:`; None = from STS at cold start.
    topic_arn_prefix: str | None = None
    max_attempts: int = Field(default=6, ge=1, le=20)
    retry_base_s: int = Field(default=30, ge=0, le=900)
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=30)

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> NotifySettings:
        values: dict[str, Any] = {
            "deliveries_queue_url": env.get(NOTIFY_DELIVERIES_QUEUE.env_var) or None,
            "topic_arn_prefix": env.get(TOPIC_ARN_PREFIX_ENV_VAR) or None,
        }
        for name, var in (
            ("max_attempts", MAX_ATTEMPTS_ENV_VAR),
            ("retry_base_s", RETRY_BASE_ENV_VAR),
            ("webhook_timeout_s", WEBHOOK_TIMEOUT_ENV_VAR),
        ):
            if env.get(var):
                values[name] = env[var]
        return cls.model_validate(values)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, base_delay_s=self.retry_base_s)

    @property
    def lease_s(self) -> int:
        """How long an attempt holds its delivery: past it, a worker that died is taken over."""
        return int(2 * self.webhook_timeout_s) + 10


@dataclass(frozen=True)
class NotificationPorts:
    channels: ChannelDirectory
    queue: DeliveryQueue
    ledger: DeliveryLedger
    dead_letters: DeadLetterStore
    topics: TopicPublisher
    webhooks: WebhookSender
    secrets: SigningSecrets
    settings: NotifySettings


# --- apply: the tenant's channels ---------------------------------------------------------------
def configure_channels(
    directory: ChannelDirectory, tenant_id: str, configured: Iterable[tuple[str, str]]
) -> tuple[bool, tuple[DeliveryChannel, ...]]:
    """Store the tenant's delivery channels from its file's (kind, target) pairs; returns (changed,
    channels). Raises InvalidWebhookTarget for a webhook URL that is not https."""
    channels = delivery_channels(tenant_id, configured)
    return directory.put_channels(TenantContext(tenant_id), channels), channels


# --- notify: event → one delivery per channel ---------------------------------------------------
def notification_of_event(source: str, detail_type: str, detail: Any) -> Notification:
    if not isinstance(detail, dict):
        raise MalformedNotification("the event has no detail object")
    if (source, detail_type) == (ALARMS_SOURCE, ALARM_CHANGED):
        return alarm_notification(detail_type, detail)
    if (source, detail_type) == (BILLING_SOURCE, EXPORT_WRITTEN):
        return export_notification(detail_type, detail)
    raise MalformedNotification(f"not a notification event: {source}/{detail_type}")


def fan_out(ports: NotificationPorts, notification: Notification) -> tuple[Delivery, ...] | None:
    """Queue one delivery per channel of the notification's tenant; None when the tenant has no
    channels (never applied): nothing to deliver to."""
    channels = ports.channels.channels(TenantContext(notification.tenant_id))
    if channels is None:
        return None
    deliveries = tuple(Delivery(notification, channel) for channel in channels)
    ports.queue.send(deliveries)
    return deliveries


# --- deliver: one attempt per message -------------------------------------------------------------
Clock = Callable[[], datetime]


def _send_once(ports: NotificationPorts, delivery: Delivery, now: datetime) -> None:
    notification, channel = delivery.notification, delivery.channel
    if channel.kind is ChannelKind.TOPIC:
        ports.topics.publish(channel.target, notification)
        return
    secret = ports.secrets.current(TenantContext(delivery.tenant_id))
    if secret is None:
        # Retried: `hemera tenant apply` creates the secret.
        raise DeliveryFailed("the tenant has no webhook signing secret (run hemera tenant apply)")
    headers = {
        SIGNATURE_HEADER: signature_header(secret, int(now.timestamp()), notification.body),
        DELIVERY_HEADER: delivery.delivery_id,
        EVENT_HEADER: notification.event_type,
        ATTEMPT_HEADER: str(delivery.attempt),
    }
    ports.webhooks.post(channel.target, notification.body, headers, ports.settings.webhook_timeout_s)


def attempt_delivery(ports: NotificationPorts, delivery: Delivery, clock: Clock) -> AttemptOutcome:
    """Make the one attempt this message asks for, then record the result: delivered, a retry
    queued with its delay, or a dead letter after the last attempt. Storage or queue errors
    propagate (the message is then handed out again)."""
    ctx = TenantContext(delivery.tenant_id)
    delivery_id = delivery.delivery_id
    claim = ports.ledger.claim(ctx, delivery_id, clock(), ports.settings.lease_s)
    if claim is ClaimResult.ALREADY_DELIVERED:
        return AttemptOutcome(delivery, DeliveryResult.DUPLICATE)
    if claim is ClaimResult.IN_FLIGHT:
        return AttemptOutcome(delivery, DeliveryResult.IN_FLIGHT)
    try:
        _send_once(ports, delivery, clock())
    except DeliveryFailed as failure:
        error = str(failure)
        now = clock()
        ports.ledger.failed(ctx, delivery_id, delivery.attempt, error, now)
        policy = ports.settings.retry_policy
        if policy.gives_up_after(delivery.attempt):
            ports.dead_letters.put(DeadLetter.of(delivery, error, now))
            return AttemptOutcome(delivery, DeliveryResult.DEAD_LETTERED, error)
        delay = policy.delay_after(delivery.attempt, delivery_id)
        ports.queue.send([delivery.next_attempt(error)], delay)
        return AttemptOutcome(delivery, DeliveryResult.RETRY_SCHEDULED, error, delay)
    ports.ledger.delivered(ctx, delivery_id, delivery.attempt, clock())
    return AttemptOutcome(delivery, DeliveryResult.DELIVERED)


def deliver_all(
    ports: NotificationPorts, deliveries: Sequence[Delivery], clock: Clock
) -> list[AttemptOutcome | Exception]:
    """One attempt for each delivery, all at once: a receiver that hangs until the timeout holds up
    only its own attempt. Returns, in order, each outcome or the exception that stopped it."""

    def one(delivery: Delivery) -> AttemptOutcome | Exception:
        try:
            return attempt_delivery(ports, delivery, clock)
        except Exception as error:  # reported per message: the rest of the batch is unaffected
            return error

    if len(deliveries) <= 1:
        return [one(d) for d in deliveries]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_ATTEMPTS, len(deliveries))) as pool:
        return list(pool.map(one, deliveries))
