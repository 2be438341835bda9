"""The local cloud sets up each sample tenant's notifications as `hemera tenant apply` does in AWS:
its SNS topic with the tenant file's e-mail subscriptions, its delivery channels and, for a tenant
with a webhook, its signing secret — so alarm transitions of the demo tenants reach their topics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hemera import aws
from hemera.domain.notifications import tenant_topic_name, webhook_secret_name
from hemera_local.cloud import LocalCloud
from tests.integration.conftest import alarm_transition, eventually, put_alarm_changed, topic_inbox

pytestmark = pytest.mark.integration


def _topic_arn(sns: Any, tenant_id: str) -> str | None:
    suffix = f":{tenant_topic_name(tenant_id)}"
    return next((t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(suffix)), None)


def test_each_sample_tenant_has_its_topic_subscriptions_and_webhook_secret(local_cloud: LocalCloud) -> None:
    # Given the local cloud started with the sample tenants (sul-energia: an e-mail channel;
    # coastal-power: a webhook)
    sns = aws.client(local_cloud.target, "sns")
    secrets = aws.client(local_cloud.target, "secretsmanager")

    # Then each has its topic, the e-mail address is subscribed to sul-energia's
    topics = {tenant_id: _topic_arn(sns, tenant_id) for tenant_id in local_cloud.tenants}
    assert all(topics.values()), topics
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topics["sul-energia"])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [
        ("email", "medicao@sul-energia.example")
    ]
    # and the webhook tenant's signing secret is stored where the deliver function reads it,
    # the same one the local cloud kept to show once; the e-mail-only tenant needs none
    stored = secrets.get_secret_value(SecretId=webhook_secret_name("coastal-power"))["SecretString"]
    assert local_cloud.webhook_secrets["coastal-power"] in stored
    assert "sul-energia" not in local_cloud.webhook_secrets


def test_an_alarm_transition_of_a_sample_tenant_reaches_its_topic(local_cloud: LocalCloud) -> None:
    # Given sul-energia's topic read back through an SQS subscription (as its e-mail subscriber)
    inbox = topic_inbox(local_cloud, "sul-energia")
    sqs = aws.client(local_cloud.target, "sqs")

    # When an alarm transition of that tenant is put on the platform bus
    transition = alarm_transition("sul-energia", 1, "cover_open", ("meter", "sul-m-1001"))
    put_alarm_changed(local_cloud, transition)

    # Then the topic publishes it once (EventBridge rule → notify → deliver → SNS); the tenant's
    # other alarms of the running local cloud may be published beside it
    seen: list[str] = []

    def published() -> list[str]:
        messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
        seen.extend(json.loads(json.loads(m["Body"])["Message"])["transition_id"] for m in messages)
        return seen

    eventually(published, lambda got: transition.transition_id in got, timeout_s=60)
    assert seen.count(transition.transition_id) == 1
