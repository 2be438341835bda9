"""`hemera tenant apply|offboard` and notifications on moto: the webhook signing secret is created
once (shown once) in Secrets Manager, webhooks are no SNS subscriptions, and offboarding deletes
the secret of the tenant and of no other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hemera import aws
from hemera.domain.errors import InvalidWebhookTarget
from hemera.domain.notifications import ChannelKind, tenant_topic_name, webhook_secret_name
from hemera.domain.tenancy import TenantContext
from hemera.tenants import TenantDefinition, load_tenant_file
from hemera_local.tenant_ops import CREATED, DELETED, UNCHANGED, TenantOperations

HOOK = "https://ops.{tenant}.example/hemera"


def tenant(folder: Path, tenant_id: str, *, webhook: bool = True, url: str | None = None) -> TenantDefinition:
    channels = [{"kind": "email", "target": f"ops@{tenant_id}.example"}]
    if webhook:
        channels.append({"kind": "webhook", "target": url or HOOK.format(tenant=tenant_id)})
    document = {
        "id": tenant_id,
        "name": tenant_id.title(),
        "country": "BR",
        "timezone": "America/Sao_Paulo",
        "notifications": channels,
        "customers": [{"id": "c-1", "name": "Customer One"}],
        "rtus": [{"id": "rtu-1"}],
        "meters": [],
    }
    path = folder / f"{tenant_id}.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_tenant_file(path)


@pytest.fixture
def operations(moto_cloud: Any, tmp_path: Path) -> TenantOperations:
    return TenantOperations(moto_cloud, tmp_path / "credentials")


def _secret(settings: Any, tenant_id: str) -> str:
    sm = aws.client(settings.aws, "secretsmanager")
    return str(sm.get_secret_value(SecretId=webhook_secret_name(tenant_id))["SecretString"])


def _subscriptions(settings: Any, tenant_id: str) -> set[tuple[str, str]]:
    sns = aws.client(settings.aws, "sns")
    (arn,) = [
        t["TopicArn"]
        for t in sns.list_topics()["Topics"]
        if t["TopicArn"].endswith(f":{tenant_topic_name(tenant_id)}")
    ]
    return {
        (s["Protocol"], s["Endpoint"]) for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    }


def test_apply_creates_the_signing_secret_once_and_shows_it_once(
    operations: TenantOperations, moto_cloud: Any, tmp_path: Path
) -> None:
    # When a tenant with a webhook is applied
    first = operations.apply(tenant(tmp_path, "acme"))
    # Then its secret is in Secrets Manager, shown in the report, and nowhere in the tenant file
    assert first.webhook_secret is not None and first.webhook_secret.startswith("whsec_")
    assert _secret(moto_cloud, "acme") == first.webhook_secret
    assert first.webhook_secret not in (tmp_path / "acme.yaml").read_text()
    assert ("webhook secret", webhook_secret_name("acme"), CREATED) in {
        (c.kind, c.name, c.action) for c in first.changes
    }
    # and the topic carries the e-mail channel only: the webhook is delivered signed, not by SNS
    assert _subscriptions(moto_cloud, "acme") == {("email", "ops@acme.example")}
    channels = operations._channels.channels(TenantContext("acme"))
    assert channels is not None
    assert [c.kind for c in channels] == [ChannelKind.TOPIC, ChannelKind.WEBHOOK]

    # When it is applied again, the secret stays and is not shown again
    second = operations.apply(tenant(tmp_path, "acme"))
    assert second.webhook_secret is None and not second.changed
    assert _secret(moto_cloud, "acme") == first.webhook_secret


def test_a_tenant_without_webhooks_gets_no_secret(operations: TenantOperations, tmp_path: Path) -> None:
    report = operations.apply(tenant(tmp_path, "acme", webhook=False))
    assert report.webhook_secret is None
    assert operations.remaining("acme").secrets == 0


def test_an_http_webhook_subscription_left_from_before_is_removed(
    operations: TenantOperations, moto_cloud: Any, tmp_path: Path
) -> None:
    # Given a topic on which an earlier apply subscribed the webhook itself
    operations.apply(tenant(tmp_path, "acme", webhook=False))
    sns = aws.client(moto_cloud.aws, "sns")
    arn = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if "acme-notifications" in t["TopicArn"])
    sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=HOOK.format(tenant="acme"))
    # When the tenant is applied now
    report = operations.apply(tenant(tmp_path, "acme"))
    # Then that subscription is gone: it would deliver unsigned
    assert ("subscription", f"https:{HOOK.format(tenant='acme')}", DELETED) in {
        (c.kind, c.name, c.action) for c in report.changes
    }
    assert _subscriptions(moto_cloud, "acme") == {("email", "ops@acme.example")}


def test_a_plain_http_webhook_is_refused_at_apply_before_anything_changes(
    operations: TenantOperations, tmp_path: Path
) -> None:
    with pytest.raises(InvalidWebhookTarget):
        operations.apply(tenant(tmp_path, "acme", url="http://ops.acme.example/hemera"))
    assert operations.remaining("acme").total == 0


def test_offboarding_deletes_the_tenants_secret_and_no_other(
    operations: TenantOperations, moto_cloud: Any, tmp_path: Path
) -> None:
    # Given acme and acme-corp, both with webhooks
    for tenant_id in ("acme", "acme-corp"):
        operations.apply(tenant(tmp_path, tenant_id))
    corp_secret = _secret(moto_cloud, "acme-corp")
    assert operations.remaining("acme").secrets == 1

    # When acme is offboarded
    report = operations.offboard("acme", tmp_path / "archives")

    # Then acme's secret and channels are gone, and nothing of acme remains
    assert report.remaining.secrets == 0 and report.remaining.total == 0
    assert operations._channels.channels(TenantContext("acme")) is None
    # and acme-corp keeps its secret, unchanged
    assert _secret(moto_cloud, "acme-corp") == corp_secret
    assert operations.remaining("acme-corp").secrets == 1
    assert all(c.action == UNCHANGED for c in operations.apply(tenant(tmp_path, "acme-corp")).changes)
