"""Notifications: platform events (alarm transitions, billing exports) delivered to each tenant's
channels — the tenant's SNS topic (its e-mail subscribers hang there) and its signed webhooks.

Pure: names, the webhook signature scheme and its verification, the retry schedule, and the
records a delivery leaves behind. Sending, storage and queues are ports (`hemera.ports.notifications`).

Webhook signature (the scheme of Stripe's and Svix's webhooks, HMAC-SHA256 per RFC 2104):

    Hemera-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>
    Hemera-Delivery:  <notification id>:<channel id>   (the same on every retry: de-duplicate on it)
    Hemera-Event:     AlarmChanged | ExportWritten

The timestamp is signed with the body, so a receiver that refuses timestamps outside a window
(`DEFAULT_TOLERANCE_S`) cannot be fed an old request again (replay); every attempt is signed anew.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.errors import (
    InvalidWebhookTarget,
    MalformedNotification,
    WebhookSignatureExpired,
    WebhookSignatureMalformed,
    WebhookSignatureMismatch,
)
from hemera.domain.tenancy import validate_id

SIGNATURE_HEADER = "Hemera-Signature"
DELIVERY_HEADER = "Hemera-Delivery"
EVENT_HEADER = "Hemera-Event"
SIGNATURE_VERSION = "v1"
# How far a receiver lets a signed timestamp be from its own clock (Stripe's default, 5 minutes).
DEFAULT_TOLERANCE_S = 300
SECRET_PREFIX = "whsec_"
DELIVERY_SCHEMA = "hemera.notification-delivery/1"


# --- names -------------------------------------------------------------------------------------
# With `*` for the tenant they are the IAM resource patterns of the deliver function's grants.
TENANT_TOPIC_TEMPLATE = "hemera-tenant-{tenant}-notifications"
WEBHOOK_SECRET_TEMPLATE = "hemera/tenants/{tenant}/webhook-signing"


def tenant_topic_name(tenant_id: str) -> str:
    """The tenant's SNS notification topic (created by `hemera tenant apply`)."""
    return TENANT_TOPIC_TEMPLATE.format(tenant=validate_id(tenant_id, "tenant"))


def webhook_secret_name(tenant_id: str) -> str:
    """The Secrets Manager secret holding the tenant's webhook signing secret."""
    return WEBHOOK_SECRET_TEMPLATE.format(tenant=validate_id(tenant_id, "tenant"))


def new_signing_secret() -> str:
    """A new webhook signing secret: 32 random bytes (256 bits, HMAC-SHA256's block-size advice
    of RFC 2104 §3 asks for at least the hash length), URL-safe base64, recognisable prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


# --- signing -----------------------------------------------------------------------------------
def signature(secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256(secret, f"{timestamp}.{body}")."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The `Hemera-Signature` value of one attempt."""
    return f"t={timestamp},{SIGNATURE_VERSION}={signature(secret, timestamp, body)}"


def parse_signature_header(header: str) -> tuple[int, tuple[str, ...]]:
    """(timestamp, v1 signatures) of a `Hemera-Signature` value; several v1 entries may be present
    while a secret is being rotated. WebhookSignatureMalformed otherwise."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookSignatureMalformed(f"not key=value: {part!r}")
        if key == "t":
            if not value.isdigit():
                raise WebhookSignatureMalformed("timestamp is not unix seconds")
            timestamp = int(value)
        elif key == SIGNATURE_VERSION:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookSignatureMalformed("needs t=<unix seconds> and v1=<hex>")
    return timestamp, tuple(signatures)


def verify_signature(
    secrets_: str | Sequence[str],
    header: str | None,
    body: bytes,
    now: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a received webhook: the header parses, its timestamp is within `tolerance_s` of
    `now` (unix seconds) and one v1 signature matches one of `secrets_` (constant-time compare).
    Returns the signed timestamp; raises a `WebhookSignatureInvalid` subclass otherwise."""
    if not header:
        raise WebhookSignatureMalformed(f"no {SIGNATURE_HEADER} header")
    timestamp, received = parse_signature_header(header)
    if abs(now - timestamp) > tolerance_s:
        raise WebhookSignatureExpired(f"timestamp {timestamp} is {now - timestamp} s from now")
    candidates = [secrets_] if isinstance(secrets_, str) else list(secrets_)
    expected = [signature(s, timestamp, body) for s in candidates]
    if not any(hmac.compare_digest(e, r) for e in expected for r in received):
        raise WebhookSignatureMismatch("no v1 signature matches the body and timestamp")
    return timestamp


# --- channels ----------------------------------------------------------------------------------
class ChannelKind(StrEnum):
    TOPIC = "sns"  # the tenant's SNS topic; its e-mail subscriptions are made at tenant apply
    WEBHOOK = "webhook"


@dataclass(frozen=True, slots=True)
class DeliveryChannel:
    kind: ChannelKind
    target: str  # the topic name, or the webhook URL

    @property
    def channel_id(self) -> str:
        """Stable id of the channel within the tenant (part of the delivery id)."""
        if self.kind is ChannelKind.TOPIC:
            return ChannelKind.TOPIC.value
        return f"webhook-{hashlib.sha256(self.target.encode()).hexdigest()[:12]}"


def validate_webhook_target(url: str) -> str:
    """A webhook URL: https, or plain http only to a loopback host (a local receiver) — a signed
    body still travels readable over http, and alarm data is the tenant's."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidWebhookTarget(f"{url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise InvalidWebhookTarget(f"{url!r}: credentials in the URL would be logged; use the signature")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise InvalidWebhookTarget(f"{url!r}: webhooks use https (http only to localhost)")
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def delivery_channels(tenant_id: str, configured: Iterable[tuple[str, str]]) -> tuple[DeliveryChannel, ...]:
    """Where a tenant's notifications go, from its file's (kind, target) channels: always its
    topic (e-mail channels are subscriptions of it), then each distinct webhook, in file order."""
    channels = [DeliveryChannel(ChannelKind.TOPIC, tenant_topic_name(tenant_id))]
    for kind, target in configured:
        if kind == "webhook":
            channel = DeliveryChannel(ChannelKind.WEBHOOK, validate_webhook_target(target))
            if channel not in channels:
                channels.append(channel)
    return tuple(channels)


# --- notifications -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Notification:
    """One platform event for one tenant, as every channel receives it: `body` is the event's
    detail as canonical JSON (the webhook body, the SNS message)."""

    tenant_id: str
    notification_id: str
    event_type: str
    subject: str
    body: bytes
    attributes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_id(self.tenant_id, "tenant")


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _subject(text: str) -> str:
    # SNS: at most 100 printable ASCII characters, no line breaks.
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return clean[:100]


def alarm_notification(event_type: str, detail: dict[str, Any]) -> Notification:
    """The notification of an AlarmChanged event (`AlarmTransition.detail()`)."""
    try:
        transition = AlarmTransition.from_detail(detail)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedNotification(f"not an alarm transition: {type(exc).__name__}: {exc}") from exc
    previous = transition.previous_state or "new"
    return Notification(
        tenant_id=transition.tenant_id,
        notification_id=transition.transition_id,
        event_type=event_type,
        subject=_subject(
            f"Hemera {transition.severity} alarm {transition.alarm_type} {previous}->{transition.state}: "
            f"{transition.subject} {transition.subject_id}"
        ),
        body=canonical_json(detail),
        attributes={
            "tenant": transition.tenant_id,
            "event_type": event_type,
            "severity": transition.severity,
            "state": transition.state,
        },
    )


def export_notification(event_type: str, detail: dict[str, Any]) -> Notification:
    """The notification of an ExportWritten event (`hemera.services.exports.written_detail`):
    `detail["tenant"]` names the tenant. Its id is the export's id and version (a restatement is a
    new version, so a new notification), else a digest of the detail, so that the same event
    delivered twice is the same notification."""
    tenant = detail.get("tenant") if isinstance(detail, dict) else None
    if not isinstance(tenant, str):
        raise MalformedNotification("an export event names its tenant in detail.tenant")
    body = canonical_json(detail)
    export_id, version = detail.get("export_id"), detail.get("version")
    if isinstance(export_id, str) and export_id:
        notification_id = export_id if version is None else f"{export_id}-v{version}"
    else:
        notification_id = f"export-{hashlib.sha256(body).hexdigest()[:32]}"
    formats = detail.get("formats")
    what = [
        notification_id if export_id else "",
        ",".join(str(f) for f in formats) if isinstance(formats, list) else "",
        f"{detail.get('period_start', '')}..{detail.get('period_end', '')}"
        if detail.get("period_start")
        else "",
    ]
    try:
        return Notification(
            tenant_id=tenant,
            notification_id=notification_id,
            event_type=event_type,
            subject=_subject(" ".join(["Hemera billing export written", *filter(None, what)])),
            body=body,
            attributes={"tenant": tenant, "event_type": event_type},
        )
    except ValueError as exc:
        raise MalformedNotification(str(exc)) from exc


# --- deliveries and retries --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification on its way to one channel: the message of the deliveries queue.
    `attempt` is the number of the attempt this message asks for (1 = first)."""

    notification: Notification
    channel: DeliveryChannel
    attempt: int = 1
    last_error: str | None = None

    @property
    def delivery_id(self) -> str:
        return f"{self.notification.notification_id}:{self.channel.channel_id}"

    @property
    def tenant_id(self) -> str:
        return self.notification.tenant_id

    def next_attempt(self, error: str) -> Delivery:
        return Delivery(self.notification, self.channel, self.attempt + 1, error)

    def to_message(self) -> str:
        n = self.notification
        return json.dumps(
            {
                "schema": DELIVERY_SCHEMA,
                "tenant": n.tenant_id,
                "notification_id": n.notification_id,
                "event_type": n.event_type,
                "subject": n.subject,
                "body": n.body.decode(),
                "attributes": n.attributes,
                "channel": {"kind": self.channel.kind.value, "target": self.channel.target},
                "attempt": self.attempt,
                "last_error": self.last_error,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_message(cls, message: str) -> Delivery:
        try:
            document = json.loads(message)
            if document.get("schema") != DELIVERY_SCHEMA:
                raise ValueError(f"schema {document.get('schema')!r}")
            notification = Notification(
                tenant_id=document["tenant"],
                notification_id=str(document["notification_id"]),
                event_type=str(document["event_type"]),
                subject=str(document["subject"]),
                body=str(document["body"]).encode(),
                attributes={str(k): str(v) for k, v in document.get("attributes", {}).items()},
            )
            channel = DeliveryChannel(
                ChannelKind(document["channel"]["kind"]), str(document["channel"]["target"])
            )
            attempt = int(document["attempt"])
            if attempt < 1:
                raise ValueError("attempt < 1")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedNotification(f"not a delivery message: {type(exc).__name__}: {exc}") from exc
        return cls(notification, channel, attempt, document.get("last_error"))


# SQS: DelaySeconds is at most 900 (15 minutes).
MAX_DELAY_S = 900


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with bounded jitter: after failed attempt n the next waits about
    base x 2^(n-1) s, capped at 900 s (SQS's longest DelaySeconds); after `max_attempts` failed
    attempts the delivery is dead-lettered. The jitter (±`jitter` of the delay) is derived from
    the delivery id, so one receiver's many deliveries do not come back in one burst, and the
    schedule of a delivery is reproducible."""

    max_attempts: int = 6
    base_delay_s: int = 30
    cap_s: int = MAX_DELAY_S
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay_s < 0 or not 0 <= self.cap_s <= MAX_DELAY_S:
            raise ValueError("max_attempts >= 1, base_delay_s >= 0 and cap_s within 0..900")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction below 1")

    def gives_up_after(self, attempt: int) -> bool:
        return attempt >= self.max_attempts

    def delay_after(self, attempt: int, delivery_id: str) -> int:
        """Seconds to wait after failed attempt `attempt` (1-based) before the next one."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        nominal = self.base_delay_s * 2 ** min(attempt - 1, 30)
        digest = hashlib.sha256(f"{delivery_id}#{attempt}".encode()).digest()
        spread = int.from_bytes(digest[:4], "big") / 2**32  # [0, 1)
        jittered = nominal * (1 - self.jitter + 2 * self.jitter * spread)
        return min(self.cap_s, round(jittered))

    def schedule(self, delivery_id: str) -> list[int]:
        """The delays between the attempts of one delivery that keeps failing."""
        return [self.delay_after(n, delivery_id) for n in range(1, self.max_attempts)]


class DeliveryResult(StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"  # delivered before: at-least-once queues, the same event twice
    RETRY_SCHEDULED = "retry_scheduled"
    DEAD_LETTERED = "dead_lettered"
    IN_FLIGHT = "in_flight"  # another worker is attempting it right now: try this message later


class ClaimResult(StrEnum):
    CLAIMED = "claimed"
    ALREADY_DELIVERED = "already_delivered"
    IN_FLIGHT = "in_flight"


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one delivery message came to; `attempt` is the attempt it made (if any)."""

    delivery: Delivery
    result: DeliveryResult
    error: str | None = None
    retry_delay_s: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery given up after its attempts: kept for an operator (and a replay)."""

    tenant_id: str
    delivery_id: str
    notification_id: str
    event_type: str
    channel: DeliveryChannel
    attempts: int
    last_error: str
    dead_lettered_at: datetime
    body: bytes

    @classmethod
    def of(cls, delivery: Delivery, error: str, at: datetime) -> DeadLetter:
        n = delivery.notification
        return cls(
            tenant_id=n.tenant_id,
            delivery_id=delivery.delivery_id,
            notification_id=n.notification_id,
            event_type=n.event_type,
            channel=delivery.channel,
            attempts=delivery.attempt,
            last_error=error,
            dead_lettered_at=at,
            body=n.body,
        )
