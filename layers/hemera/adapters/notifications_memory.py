"""In-memory fakes of the notification ports, with the semantics of the AWS adapters (the contract
tests run both)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hemera.domain.errors import DeliveryFailed
from hemera.domain.notifications import ClaimResult, DeadLetter, Delivery, DeliveryChannel, Notification
from hemera.domain.tenancy import TenantContext

DELIVERED, SENDING, FAILED = "delivered", "sending", "failed"


class MemoryChannelDirectory:
    def __init__(self) -> None:
        self._channels: dict[str, tuple[DeliveryChannel, ...]] = {}

    def put_channels(self, ctx: TenantContext, channels: Sequence[DeliveryChannel]) -> bool:
        new = tuple(channels)
        changed = self._channels.get(ctx.tenant_id) != new
        self._channels[ctx.tenant_id] = new
        return changed

    def channels(self, ctx: TenantContext) -> tuple[DeliveryChannel, ...] | None:
        return self._channels.get(ctx.tenant_id)


@dataclass
class _State:
    status: str
    attempts: int
    lease_until: datetime
    error: str | None = None


class MemoryDeliveryLedger:
    def __init__(self) -> None:
        self._states: dict[tuple[str, str], _State] = {}
        self._lock = threading.Lock()

    def claim(self, ctx: TenantContext, delivery_id: str, now: datetime, lease_s: int) -> ClaimResult:
        with self._lock:
            state = self._states.get((ctx.tenant_id, delivery_id))
            if state is not None and state.status == DELIVERED:
                return ClaimResult.ALREADY_DELIVERED
            if state is not None and state.status == SENDING and state.lease_until > now:
                return ClaimResult.IN_FLIGHT
            attempts = state.attempts if state else 0
            self._states[(ctx.tenant_id, delivery_id)] = _State(
                SENDING, attempts, now + timedelta(seconds=lease_s)
            )
            return ClaimResult.CLAIMED

    def delivered(self, ctx: TenantContext, delivery_id: str, attempts: int, at: datetime) -> None:
        with self._lock:
            self._states[(ctx.tenant_id, delivery_id)] = _State(DELIVERED, attempts, at)

    def failed(self, ctx: TenantContext, delivery_id: str, attempts: int, error: str, at: datetime) -> None:
        with self._lock:
            self._states[(ctx.tenant_id, delivery_id)] = _State(FAILED, attempts, at, error)

    def attempts(self, ctx: TenantContext, delivery_id: str) -> tuple[str, int] | None:
        state = self._states.get((ctx.tenant_id, delivery_id))
        return None if state is None else (state.status, state.attempts)


class MemoryDeadLetters:
    def __init__(self) -> None:
        self._records: dict[tuple[str, str], DeadLetter] = {}

    def put(self, record: DeadLetter) -> None:
        self._records[(record.tenant_id, record.delivery_id)] = record

    def list(self, ctx: TenantContext) -> list[DeadLetter]:
        mine = [r for (t, _), r in self._records.items() if t == ctx.tenant_id]
        return sorted(mine, key=lambda r: (r.dead_lettered_at, r.delivery_id))


@dataclass
class MemoryDeliveryQueue:
    """Records what was sent, with its delay; `take()` hands the messages out (delay ignored)."""

    sent: list[tuple[Delivery, int]] = field(default_factory=list)

    def send(self, deliveries: Sequence[Delivery], delay_s: int = 0) -> None:
        self.sent += [(d, delay_s) for d in deliveries]

    def take(self) -> list[tuple[Delivery, int]]:
        taken, self.sent = self.sent, []
        return taken


@dataclass
class MemoryTopicPublisher:
    published: list[tuple[str, Notification]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)

    def publish(self, topic_name: str, notification: Notification) -> str:
        if topic_name in self.failing:
            raise DeliveryFailed(f"topic {topic_name} refused the message")
        self.published.append((topic_name, notification))
        return f"msg-{len(self.published)}"


@dataclass
class MemoryWebhookSender:
    """Answers each URL with `answer(url)`: a status, or raises DeliveryFailed."""

    answer: Callable[[str], int] = lambda _url: 200
    posts: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        self.posts.append((url, body, dict(headers)))
        status = self.answer(url)
        if not 200 <= status < 300:
            raise DeliveryFailed(f"HTTP {status}")
        return status


@dataclass
class MemorySigningSecrets:
    secrets: dict[str, str] = field(default_factory=dict)

    def current(self, ctx: TenantContext) -> str | None:
        return self.secrets.get(ctx.tenant_id)
