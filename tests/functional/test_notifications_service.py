"""The notifications service with the in-memory fakes: fan-out per channel, one attempt per message,
the retry delays the policy gives, dead letters, and attempts of one batch that run side by side."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from hemera.adapters.notifications_memory import (
    MemoryChannelDirectory,
    MemoryDeadLetters,
    MemoryDeliveryLedger,
    MemoryDeliveryQueue,
    MemorySigningSecrets,
    MemoryTopicPublisher,
    MemoryWebhookSender,
)
from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.errors import MalformedNotification
from hemera.domain.notifications import (
    ChannelKind,
    Delivery,
    DeliveryResult,
    Notification,
    alarm_notification,
    verify_signature,
)
from hemera.domain.tenancy import TenantContext
from hemera.services.notifications import (
    NotificationPorts,
    NotifySettings,
    attempt_delivery,
    configure_channels,
    deliver_all,
    fan_out,
    notification_of_event,
)

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
A_HOOK, B_HOOK = "https://a.example/hooks", "https://b.example/hooks"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def ports(sender: MemoryWebhookSender | None = None, **settings: object) -> NotificationPorts:
    return NotificationPorts(
        channels=MemoryChannelDirectory(),
        queue=MemoryDeliveryQueue(),
        ledger=MemoryDeliveryLedger(),
        dead_letters=MemoryDeadLetters(),
        topics=MemoryTopicPublisher(),
        webhooks=sender or MemoryWebhookSender(),
        secrets=MemorySigningSecrets({"tenant-a": "whsec_a", "tenant-b": "whsec_b"}),
        settings=NotifySettings.model_validate(settings),
    )


def alarm(tenant_id: str, transition_id: str = "tr-1") -> Notification:
    at = T0
    transition = AlarmTransition(
        transition_id,
        tenant_id,
        "al-1",
        "phase_loss",
        "critical",
        "meter",
        "m-1",
        "open",
        None,
        at,
        at,
        at,
        1,
    )
    return alarm_notification("AlarmChanged", transition.detail())


def webhook_delivery(p: NotificationPorts, tenant_id: str, url: str) -> Delivery:
    configure_channels(p.channels, tenant_id, [("webhook", url)])
    deliveries = fan_out(p, alarm(tenant_id))
    assert deliveries is not None
    p.queue.take()  # type: ignore[attr-defined]
    (delivery,) = [d for d in deliveries if d.channel.kind is ChannelKind.WEBHOOK]
    return delivery


def test_fan_out_queues_one_delivery_per_channel_and_nothing_for_an_unknown_tenant() -> None:
    p = ports()
    configure_channels(p.channels, "tenant-a", [("email", "ops@a.example"), ("webhook", A_HOOK)])
    deliveries = fan_out(p, alarm("tenant-a"))
    assert deliveries is not None
    assert [(d.channel.kind, d.attempt) for d, _delay in p.queue.take()] == [  # type: ignore[attr-defined]
        (ChannelKind.TOPIC, 1),
        (ChannelKind.WEBHOOK, 1),
    ]
    assert fan_out(p, alarm("tenant-z")) is None
    assert p.queue.take() == []  # type: ignore[attr-defined]


def test_a_failing_webhook_is_retried_with_the_policys_delays_then_dead_lettered() -> None:
    # Given a receiver that always answers 500
    p = ports(MemoryWebhookSender(answer=lambda _url: 500))
    clock = Clock()
    delivery = webhook_delivery(p, "tenant-a", A_HOOK)
    policy = p.settings.retry_policy

    # When each message is attempted as the queue hands it out
    delays, results = [], []
    message: Delivery | None = delivery
    while message is not None:
        outcome = attempt_delivery(p, message, clock)
        results.append(outcome.result)
        sent = p.queue.take()  # type: ignore[attr-defined]
        message = None
        if sent:
            ((message, delay),) = sent
            delays.append(delay)
            clock.now += timedelta(seconds=delay)

    # Then it was attempted six times, waiting the policy's schedule between attempts
    assert results == [DeliveryResult.RETRY_SCHEDULED] * 5 + [DeliveryResult.DEAD_LETTERED]
    assert delays == policy.schedule(delivery.delivery_id)
    assert [post[2]["Hemera-Attempt"] for post in p.webhooks.posts] == ["1", "2", "3", "4", "5", "6"]  # type: ignore[attr-defined]
    # and the dead letter says who, where, how often and why
    (dead,) = p.dead_letters.list(TenantContext("tenant-a"))
    assert (dead.attempts, dead.last_error, dead.channel.target) == (6, "HTTP 500", A_HOOK)
    assert dead.dead_lettered_at == clock.now


def test_every_attempt_is_signed_anew_with_its_own_time() -> None:
    p = ports(MemoryWebhookSender(answer=lambda _url: 503))
    clock = Clock()
    delivery = webhook_delivery(p, "tenant-a", A_HOOK)
    attempt_delivery(p, delivery, clock)
    ((retry, delay),) = p.queue.take()  # type: ignore[attr-defined]
    clock.now += timedelta(seconds=delay)
    attempt_delivery(p, retry, clock)
    (url1, body1, first), (_, body2, second) = p.webhooks.posts  # type: ignore[attr-defined]
    assert url1 == A_HOOK and body1 == body2 == delivery.notification.body
    assert verify_signature("whsec_a", first["Hemera-Signature"], body1, now=int(T0.timestamp())) == int(
        T0.timestamp()
    )
    assert verify_signature(
        "whsec_a", second["Hemera-Signature"], body2, now=int(clock.now.timestamp())
    ) == int(clock.now.timestamp())
    assert first["Hemera-Delivery"] == second["Hemera-Delivery"] == delivery.delivery_id


def test_a_tenant_without_a_signing_secret_is_retried_not_sent_unsigned() -> None:
    p = ports()
    delivery = webhook_delivery(p, "tenant-c", "https://c.example/hooks")
    outcome = attempt_delivery(p, delivery, Clock())
    assert outcome.result is DeliveryResult.RETRY_SCHEDULED
    assert "no webhook signing secret" in str(outcome.error)
    assert p.webhooks.posts == []  # type: ignore[attr-defined]


def test_a_delivery_already_made_is_a_duplicate_and_sends_nothing() -> None:
    p = ports()
    delivery = webhook_delivery(p, "tenant-a", A_HOOK)
    assert attempt_delivery(p, delivery, Clock()).result is DeliveryResult.DELIVERED
    assert attempt_delivery(p, delivery, Clock()).result is DeliveryResult.DUPLICATE
    assert len(p.webhooks.posts) == 1  # type: ignore[attr-defined]


def test_the_attempts_of_one_batch_run_side_by_side() -> None:
    # Given A's receiver that answers only once B's delivery has been posted (or gives up after
    # 5 s and answers 504): one after the other, A would hold B up for the whole wait
    b_posted = threading.Event()
    a_saw_b: list[bool] = []

    def answer(url: str) -> int:
        if url == B_HOOK:
            b_posted.set()
            return 200
        a_saw_b.append(b_posted.wait(5))
        return 504

    p = ports(MemoryWebhookSender(answer=answer))
    a, b = webhook_delivery(p, "tenant-a", A_HOOK), webhook_delivery(p, "tenant-b", B_HOOK)

    # When both are attempted in one batch, A first
    outcomes = deliver_all(p, [a, b], Clock())

    # Then B was posted while A's attempt was still waiting
    assert a_saw_b == [True]
    assert [o.result for o in outcomes if not isinstance(o, Exception)] == [
        DeliveryResult.RETRY_SCHEDULED,
        DeliveryResult.DELIVERED,
    ]


def test_only_alarm_and_export_events_are_notifications() -> None:
    with pytest.raises(MalformedNotification):
        notification_of_event("hemera.vee", "FinalDaysChanged", {"tenant": "tenant-a"})
    with pytest.raises(MalformedNotification):
        notification_of_event("hemera.alarms", "AlarmChanged", {"tenant": "tenant-a"})
    with pytest.raises(MalformedNotification):
        notification_of_event("hemera.alarms", "AlarmChanged", None)


def test_a_topic_that_refuses_is_retried_like_a_webhook() -> None:
    p = ports()
    configure_channels(p.channels, "tenant-a", [])
    (topic,) = fan_out(p, alarm("tenant-a")) or ()
    p.topics.failing.add(topic.channel.target)  # type: ignore[attr-defined]
    outcome = attempt_delivery(p, topic, Clock())
    assert outcome.result is DeliveryResult.RETRY_SCHEDULED
    assert outcome.retry_delay_s == p.settings.retry_policy.delay_after(1, topic.delivery_id)
