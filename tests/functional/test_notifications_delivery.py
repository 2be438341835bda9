"""Notify and deliver functions on moto: AlarmChanged events on the platform bus reach each tenant's
SNS topic and its webhooks (signed), a failing webhook of one tenant neither delays nor blocks
another's, is retried with backoff and dead-lettered, and a transition delivered twice arrives once.

The functions run as the local cloud runs them (the rules bridge's queue poller, in-process), the
webhooks are real HTTP receivers on loopback ports (`tests/webhook_receiver.py`).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hemera import aws
from hemera.definitions import (
    ALARM_CHANGED,
    ALARMS_SOURCE,
    BILLING_SOURCE,
    EXPORT_WRITTEN,
    NOTIFY_CONSUMERS,
    NOTIFY_DELIVERIES_QUEUE,
    NOTIFY_EVENTS_QUEUE,
    QueueConsumer,
)
from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.notifications import tenant_topic_name
from hemera.domain.tenancy import TenantContext
from hemera.services.notifications import (
    MAX_ATTEMPTS_ENV_VAR,
    RETRY_BASE_ENV_VAR,
    WEBHOOK_TIMEOUT_ENV_VAR,
    NotifySettings,
)
from hemera.tenants import load_tenant_file
from hemera.wiring import notification_ports
from hemera_local.bridge import BridgeStats, QueuePoller, cold_start, load_handler
from hemera_local.tenant_ops import TenantOperations
from tests.webhook_receiver import WebhookReceiver

MAX_ATTEMPTS = 3
WEBHOOK_TIMEOUT_S = 3


def tenant_document(tenant_id: str, webhooks: list[str]) -> dict[str, Any]:
    return {
        "id": tenant_id,
        "name": tenant_id.title(),
        "country": "BR",
        "timezone": "America/Sao_Paulo",
        "notifications": [
            {"kind": "email", "target": f"ops@{tenant_id}.example"},
            *({"kind": "webhook", "target": url} for url in webhooks),
        ],
        "customers": [{"id": "c-1", "name": "Customer One"}],
        "rtus": [{"id": "rtu-1"}],
        "meters": [],
    }


def transition(tenant_id: str, transition_id: str, state: str = "open") -> AlarmTransition:
    at = datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
    return AlarmTransition(
        transition_id=transition_id,
        tenant_id=tenant_id,
        alarm_id=f"al-{transition_id}",
        alarm_type="demand_exceeded",
        severity="major",
        subject="meter",
        subject_id=f"{tenant_id}-m-1",
        state=state,
        previous_state=None if state == "open" else "open",
        at=at,
        first_seen=at - timedelta(minutes=15),
        last_seen=at,
        count=2,
        facts={"measured_kw": "812.5", "contracted_kw": "750"},
    )


class Platform:
    """The moto account with the notification functions and the tenants applied."""

    def __init__(self, settings: Any, folder: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.operations = TenantOperations(settings, folder / "credentials")
        self.sqs = aws.client(settings.aws, "sqs")
        self.secrets: dict[str, str] = {}
        self.sns_inboxes: dict[str, str] = {}
        self.stats = BridgeStats()
        self._pollers = {c.queue.local_name: self._poller(c) for c in NOTIFY_CONSUMERS}

    def _poller(self, consumer: QueueConsumer) -> QueuePoller:
        url = self.sqs.get_queue_url(QueueName=consumer.queue.local_name)["QueueUrl"]
        return QueuePoller(self.settings.aws, consumer, url, load_handler(consumer.function), self.stats)

    def apply(self, tenant_id: str, webhooks: list[str]) -> None:
        path = self.folder / f"{tenant_id}.yaml"
        path.write_text(yaml.safe_dump(tenant_document(tenant_id, webhooks)))
        report = self.operations.apply(load_tenant_file(path))
        if report.webhook_secret:
            self.secrets[tenant_id] = report.webhook_secret
        # The topic's messages, read back through an SQS subscription.
        inbox = self.sqs.create_queue(QueueName=f"sns-inbox-{tenant_id}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns = aws.client(self.settings.aws, "sns")
        topic = next(
            t["TopicArn"]
            for t in sns.list_topics()["Topics"]
            if t["TopicArn"].endswith(f":{tenant_topic_name(tenant_id)}")
        )
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        self.sns_inboxes[tenant_id] = inbox

    def put_alarm(self, alarm: AlarmTransition) -> None:
        self.put_event(ALARMS_SOURCE, ALARM_CHANGED, alarm.detail())

    def put_event(self, source: str, detail_type: str, detail: dict[str, Any]) -> None:
        answer = aws.client(self.settings.aws, "events").put_events(
            Entries=[
                {
                    "EventBusName": self.settings.event_bus,
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0

    def notify(self) -> int:
        """One invocation of the notify function (one batch of its queue)."""
        return self._pollers[NOTIFY_EVENTS_QUEUE.local_name].poll_once()

    def deliver(self) -> int:
        """One invocation of the deliver function (one batch of the deliveries queue)."""
        return self._pollers[NOTIFY_DELIVERIES_QUEUE.local_name].poll_once()

    def deliver_until(self, done: Callable[[], bool], invocations: int = 20) -> None:
        """Run the deliver function, batch after batch, until `done()` (retries wait for their
        DelaySeconds in the queue, so this waits with them)."""
        for _ in range(invocations):
            if done():
                return
            self.deliver()

    def queue_counts(self, queue: str) -> tuple[int, int]:
        url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesDelayed"]
        )

    def topic_messages(self, tenant_id: str) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.sns_inboxes[tenant_id], MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    @property
    def ports(self) -> Any:
        return notification_ports(self.settings, NotifySettings.from_environ(_notify_environ()))


def _notify_environ() -> dict[str, str]:
    return {
        RETRY_BASE_ENV_VAR: "1",
        MAX_ATTEMPTS_ENV_VAR: str(MAX_ATTEMPTS),
        WEBHOOK_TIMEOUT_ENV_VAR: str(WEBHOOK_TIMEOUT_S),
    }


@pytest.fixture
def platform(moto_cloud: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Platform:
    # Retries after 1 s, 2 s (instead of 30 s, 1 min, …) and three attempts: the test waits for
    # the real DelaySeconds of the queue.
    for key, value in _notify_environ().items():
        monkeypatch.setenv(key, value)
    cold_start()
    # A new moto account: forget the warm ports (their secret cache belongs to the last one).
    notification_ports.cache_clear()
    return Platform(moto_cloud, tmp_path)


@pytest.fixture
def receivers() -> Iterator[Callable[..., WebhookReceiver]]:
    started: list[WebhookReceiver] = []

    def start(**kwargs: Any) -> WebhookReceiver:
        receiver = WebhookReceiver(**kwargs).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def refused_url() -> str:
    """A loopback URL where nothing listens (the connection is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


def test_an_alarm_transition_reaches_the_tenant_topic_and_its_webhook_signed(
    platform: Platform, receivers: Callable[..., WebhookReceiver]
) -> None:
    # Given sul-energia applied with an e-mail channel and a webhook
    receiver = receivers()
    platform.apply("sul-energia", [receiver.url()])
    receiver.secret = platform.secrets["sul-energia"]
    alarm = transition("sul-energia", "tr-100")

    # When its alarm opens (AlarmChanged on the platform bus) and the functions run
    platform.put_alarm(alarm)
    assert platform.notify() == 1
    assert platform.deliver() == 2  # the topic and the webhook

    # Then the webhook received the transition once, signed with the tenant's secret
    (received,) = receiver.valid_deliveries()
    assert receiver.rejected == []
    assert AlarmTransition.from_detail(received.body) == alarm
    assert received.event_type == ALARM_CHANGED
    assert received.delivery_id is not None and received.delivery_id.startswith("tr-100:webhook-")
    assert received.attempt == 1
    # and the tenant's topic published it (its e-mail subscribers get it) with a readable subject
    (message,) = platform.topic_messages("sul-energia")
    assert json.loads(message["Message"]) == alarm.detail()
    assert message["Subject"] == "Hemera major alarm demand_exceeded new->open: meter sul-energia-m-1"
    assert message["MessageAttributes"]["tenant"]["Value"] == "sul-energia"
    # and nothing is left to do
    assert platform.queue_counts(NOTIFY_DELIVERIES_QUEUE.local_name) == (0, 0)


def test_a_webhook_signed_with_another_tenants_secret_is_refused_by_the_receiver(
    platform: Platform, receivers: Callable[..., WebhookReceiver]
) -> None:
    # Given two tenants, and acme's receiver that knows only acme's secret
    acme, other = receivers(), receivers()
    platform.apply("acme", [acme.url()])
    platform.apply("acme-corp", [other.url()])
    assert platform.secrets["acme"] != platform.secrets["acme-corp"]
    acme.secret = platform.secrets["acme-corp"]  # the wrong one

    # When acme's alarm is delivered
    platform.put_alarm(transition("acme", "tr-200"))
    platform.notify()
    platform.deliver()

    # Then acme's receiver refuses the signature (it was signed with acme's secret)
    assert acme.valid_deliveries() == [] and acme.rejected == [("/hooks", "webhook_signature_mismatch")]


@pytest.mark.parametrize("failure", ["answers 500", "refuses connections"])
def test_a_failing_webhook_of_one_tenant_does_not_delay_another_and_ends_as_a_dead_letter(
    platform: Platform, receivers: Callable[..., WebhookReceiver], failure: str
) -> None:
    # Given tenant B's receiver works, and tenant A's fails; A's (when it answers) holds each
    # request until B's delivery has arrived, for at most 2 s (below the 3 s webhook timeout)
    working = receivers()
    failing = receivers(status=500, hold=working.arrived, hold_timeout_s=2)
    a_url = failing.url() if failure == "answers 500" else refused_url()
    platform.apply("tenant-a", [a_url])
    platform.apply("tenant-b", [working.url()])
    failing.secret, working.secret = platform.secrets["tenant-a"], platform.secrets["tenant-b"]

    # When both tenants' alarms open at once
    platform.put_alarm(transition("tenant-a", "tr-a"))
    platform.put_alarm(transition("tenant-b", "tr-b"))
    assert platform.notify() == 2
    # and the deliver function runs its first batch (both tenants' topic and webhook)
    assert platform.deliver() == 4

    # Then B's webhook was delivered in that first batch, at its first attempt
    assert [r.attempt for r in working.valid_deliveries()] == [1]
    if failure == "answers 500":
        # while A's request was still in flight: A never held B up
        assert failing.released_by_hold == [True]
    # and A's second attempt is not retried inside the function: it waits in the queue (delayed)
    assert platform.queue_counts(NOTIFY_DELIVERIES_QUEUE.local_name) == (0, 1)

    # When the deliver function keeps running until A gives up
    ports = platform.ports
    ctx_a = TenantContext("tenant-a")
    platform.deliver_until(lambda: bool(ports.dead_letters.list(ctx_a)))

    # Then A's webhook was attempted MAX_ATTEMPTS times, then dead-lettered with the reason
    (dead,) = ports.dead_letters.list(ctx_a)
    assert (dead.tenant_id, dead.notification_id, dead.attempts) == ("tenant-a", "tr-a", MAX_ATTEMPTS)
    assert dead.channel.target == a_url
    if failure == "answers 500":
        assert dead.last_error == "HTTP 500"
    else:
        assert dead.last_error.startswith("unreachable: ConnectionRefusedError")
    assert json.loads(dead.body)["transition_id"] == "tr-a"
    if failure == "answers 500":
        assert [r.attempt for r in failing.valid_deliveries()] == [1, 2, 3]
    # and its topic was delivered once, as B's was; B has no dead letter and got one delivery
    assert len(platform.topic_messages("tenant-a")) == 1
    assert ports.dead_letters.list(TenantContext("tenant-b")) == []
    assert [r.attempt for r in working.valid_deliveries()] == [1]
    assert platform.queue_counts(NOTIFY_DELIVERIES_QUEUE.local_name) == (0, 0)


def test_a_retry_delivers_once_the_receiver_recovers(
    platform: Platform, receivers: Callable[..., WebhookReceiver]
) -> None:
    # Given a receiver that fails at first
    receiver = receivers(status=503)
    platform.apply("acme", [receiver.url()])
    receiver.secret = platform.secrets["acme"]
    platform.put_alarm(transition("acme", "tr-300"))
    platform.notify()
    platform.deliver()
    assert [r.attempt for r in receiver.valid_deliveries()] == [1]

    # When it recovers before the next attempt
    receiver.status = 200
    platform.deliver_until(lambda: len(receiver.valid_deliveries()) == 2)

    # Then the second attempt is delivered, freshly signed, and nothing is dead-lettered
    first, second = receiver.valid_deliveries()
    assert second.attempt == 2 and second.delivery_id == first.delivery_id
    assert platform.ports.dead_letters.list(TenantContext("acme")) == []
    assert platform.ports.ledger.attempts(TenantContext("acme"), str(second.delivery_id)) == ("delivered", 2)


def test_the_same_transition_delivered_twice_arrives_once(
    platform: Platform, receivers: Callable[..., WebhookReceiver]
) -> None:
    # Given a tenant with a webhook
    receiver = receivers()
    platform.apply("acme", [receiver.url()])
    receiver.secret = platform.secrets["acme"]
    alarm = transition("acme", "tr-400")

    # When the same transition is put on the bus twice (at-least-once), and again later
    platform.put_alarm(alarm)
    platform.put_alarm(alarm)
    assert platform.notify() == 2
    platform.deliver_until(lambda: platform.queue_counts(NOTIFY_DELIVERIES_QUEUE.local_name) == (0, 0))
    platform.put_alarm(alarm)
    platform.notify()
    platform.deliver_until(lambda: platform.queue_counts(NOTIFY_DELIVERIES_QUEUE.local_name) == (0, 0))

    # Then the receiver counts exactly one delivery, and the topic one message
    assert [r.body["transition_id"] for r in receiver.valid_deliveries()] == ["tr-400"]
    assert len(platform.topic_messages("acme")) == 1
    # while the next transition of the same alarm is a delivery of its own
    platform.put_alarm(transition("acme", "tr-401", state="closed"))
    platform.notify()
    platform.deliver()
    assert [r.body["transition_id"] for r in receiver.valid_deliveries()] == ["tr-400", "tr-401"]


def test_an_export_written_event_reaches_the_same_channels(
    platform: Platform, receivers: Callable[..., WebhookReceiver]
) -> None:
    receiver = receivers()
    platform.apply("acme", [receiver.url()])
    receiver.secret = platform.secrets["acme"]
    # as billing's `written_detail` writes it (abridged)
    detail = {"tenant": "acme", "export_id": "ex-2026-02", "version": 1, "formats": ["csv"]}

    platform.put_event(BILLING_SOURCE, EXPORT_WRITTEN, detail)
    platform.notify()
    platform.deliver()

    (received,) = receiver.valid_deliveries()
    assert (received.event_type, received.body) == (EXPORT_WRITTEN, detail)
    assert str(received.delivery_id).startswith("ex-2026-02-v1:webhook-")
    (message,) = platform.topic_messages("acme")
    assert json.loads(message["Message"]) == detail


def test_events_of_a_tenant_never_applied_are_dropped_and_unreadable_events_are_retried(
    platform: Platform,
) -> None:
    # Given no channels for ghost, and an AlarmChanged event that is no transition
    platform.put_alarm(transition("ghost", "tr-500"))
    platform.put_event(ALARMS_SOURCE, ALARM_CHANGED, {"tenant": "acme"})

    # When notify runs
    platform.notify()

    # Then nothing is queued for ghost, and the unreadable event stays for a retry (then the DLQ)
    assert platform.queue_counts(NOTIFY_DELIVERIES_QUEUE.local_name) == (0, 0)
    assert platform.stats.records_failed == 1
