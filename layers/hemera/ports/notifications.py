"""Ports of notifications: where a tenant's channels and delivery states are kept, the queue that
carries one message per (notification, channel), and the senders.

Adapters: `hemera.adapters.notifications_dynamodb` (readings table, tenant-first keys
`T#<tenant>#NOTIFY`), `notifications_sqs`, `notifications_sns`, `notifications_webhook` (urllib),
`notifications_secrets` (Secrets Manager) and the in-memory fakes of `notifications_memory`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from hemera.domain.notifications import ClaimResult, DeadLetter, Delivery, DeliveryChannel, Notification
from hemera.domain.tenancy import TenantContext


class ChannelDirectory(Protocol):
    def put_channels(self, ctx: TenantContext, channels: Sequence[DeliveryChannel]) -> bool:
        """Replace the tenant's delivery channels; False when they were already these."""
        ...

    def channels(self, ctx: TenantContext) -> tuple[DeliveryChannel, ...] | None:
        """The tenant's channels; None when the tenant was never applied."""
        ...


class DeliveryLedger(Protocol):
    """One state per (notification, channel): what makes a delivery idempotent."""

    def claim(self, ctx: TenantContext, delivery_id: str, now: datetime, lease_s: int) -> ClaimResult:
        """Take the delivery for one attempt, unless it was delivered or another worker holds an
        unexpired lease on it."""
        ...

    def delivered(self, ctx: TenantContext, delivery_id: str, attempts: int, at: datetime) -> None: ...

    def failed(self, ctx: TenantContext, delivery_id: str, attempts: int, error: str, at: datetime) -> None:
        """Release the lease after a failed attempt (the retry claims it again)."""
        ...

    def attempts(self, ctx: TenantContext, delivery_id: str) -> tuple[str, int] | None:
        """(status, attempts made) of a delivery; None if never attempted."""
        ...


class DeadLetterStore(Protocol):
    def put(self, record: DeadLetter) -> None:
        """Keep a given-up delivery (writing the same delivery again replaces it)."""
        ...

    def list(self, ctx: TenantContext) -> list[DeadLetter]:
        """The tenant's dead letters, oldest first."""
        ...


class DeliveryQueue(Protocol):
    def send(self, deliveries: Sequence[Delivery], delay_s: int = 0) -> None:
        """Queue one message per delivery, visible after `delay_s` (≤ 900) seconds."""
        ...


class TopicPublisher(Protocol):
    def publish(self, topic_name: str, notification: Notification) -> str:
        """Publish to the tenant's topic; returns the message id. Raises DeliveryFailed."""
        ...


class WebhookSender(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        """One POST; returns the 2xx status. Raises DeliveryFailed (refused, timed out, non-2xx)."""
        ...


class SigningSecrets(Protocol):
    def current(self, ctx: TenantContext) -> str | None:
        """The tenant's webhook signing secret; None if it has none."""
        ...
