"""Notifications through the whole local cloud: AlarmChanged events put on the platform bus (moto
EventBridge) for two tenants reach each of their webhooks exactly once, signed with each tenant's
secret — EventBridge rule → notify queue → notify (rules bridge) → deliveries queue → deliver →
real HTTP receivers — and each tenant's SNS topic once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hemera import aws
from hemera.definitions import ALARM_CHANGED, NOTIFY_DELIVERIES_QUEUE, NOTIFY_EVENTS_QUEUE
from hemera.tenants import load_tenant_file
from hemera_local.cloud import LocalCloud
from hemera_local.tenant_ops import REGISTER, TenantOperations
from tests.integration.conftest import alarm_transition, eventually, put_alarm_changed, topic_inbox
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

# Tenants of this test only, applied as `hemera tenant apply --local` does; north has two webhooks.
TENANTS = {"notify-north": ["/ops", "/scada"], "notify-south": ["/ops"]}


@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, WebhookReceiver]]:
    """One receiver per tenant: it knows only its own tenant's secret."""
    running = {tenant_id: WebhookReceiver().start() for tenant_id in TENANTS}
    yield running
    for receiver in running.values():
        receiver.stop()


@pytest.fixture(scope="module")
def applied(
    local_cloud: LocalCloud, receivers: dict[str, WebhookReceiver], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each tenant applied with its webhooks; each receiver gets its tenant's secret (shown once)."""
    assert local_cloud.settings is not None
    folder = tmp_path_factory.mktemp("notify-tenants")
    operations = TenantOperations(local_cloud.settings, folder / "credentials", REGISTER, local_cloud.pki)
    for tenant_id, paths in TENANTS.items():
        document = {
            "id": tenant_id,
            "name": tenant_id.title(),
            "country": "BR",
            "timezone": "America/Sao_Paulo",
            "notifications": [
                {"kind": "email", "target": f"ops@{tenant_id}.example"},
                *({"kind": "webhook", "target": receivers[tenant_id].url(path)} for path in paths),
            ],
            "customers": [{"id": "c-1", "name": "Customer One"}],
            "rtus": [{"id": "rtu-1"}],
            "meters": [],
        }
        path = folder / f"{tenant_id}.yaml"
        path.write_text(yaml.safe_dump(document))
        report = operations.apply(load_tenant_file(path))
        assert report.webhook_secret is not None
        receivers[tenant_id].secret = report.webhook_secret


def _idle(cloud: LocalCloud) -> bool:
    """Nothing waiting or in flight in the notification queues. Delayed messages are left out:
    they are retries, and this test's receivers answer every first attempt (a failed one would
    keep `wait_for` waiting for its retry), while the sample tenants' webhook (an `.example` host
    that never answers) keeps retries of their alarms delayed in the deliveries queue."""
    sqs = aws.client(cloud.target, "sqs")
    for name in (NOTIFY_EVENTS_QUEUE.local_name, NOTIFY_DELIVERIES_QUEUE.local_name):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        if any(int(v) for v in attributes.values()):
            return False
    return True


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        bodies += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def test_alarm_transitions_of_two_tenants_reach_each_webhook_once_signed(
    local_cloud: LocalCloud, receivers: dict[str, WebhookReceiver], applied: None
) -> None:
    # Given two applied tenants, each topic read back through an SQS subscription
    inboxes = {tenant_id: topic_inbox(local_cloud, tenant_id) for tenant_id in TENANTS}

    # When three transitions per tenant are put on the platform bus, one of them twice
    transitions = [alarm_transition(t, n) for t in TENANTS for n in (1, 2, 3)]
    for alarm in [*transitions, transitions[0]]:
        put_alarm_changed(local_cloud, alarm)

    # Then each webhook channel receives each of its tenant's transitions and, once the queues
    # are idle, exactly once, signed with its tenant's secret (the receiver knows no other)
    for tenant_id, receiver in receivers.items():
        receiver.wait_for(3 * len(TENANTS[tenant_id]), timeout_s=60)
    assert eventually(lambda: _idle(local_cloud), bool, timeout_s=30)
    for tenant_id, receiver in receivers.items():
        got = sorted((r.path, r.body["transition_id"]) for r in receiver.valid_deliveries())
        assert got == sorted((path, f"{tenant_id}-tr-{n}") for path in TENANTS[tenant_id] for n in (1, 2, 3))
        assert receiver.rejected == []
        assert {r.event_type for r in receiver.valid_deliveries()} == {ALARM_CHANGED}
        # one delivery id per (transition, channel): what a receiver de-duplicates on
        assert len({r.delivery_id for r in receiver.valid_deliveries()}) == len(got)
    # and each tenant's topic published each of its transitions once
    sqs = aws.client(local_cloud.target, "sqs")
    for tenant_id, inbox in inboxes.items():
        published = sorted(json.loads(b["Message"])["transition_id"] for b in _drain(sqs, inbox))
        assert published == [f"{tenant_id}-tr-{n}" for n in (1, 2, 3)]
