"""Notification channels, delivery ledger and dead letters: the in-memory fakes and the DynamoDB
adapters pass the same cases, so the fakes the service tests use cannot drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hemera import aws
from hemera.adapters.notifications_dynamodb import (
    DynamoChannelDirectory,
    DynamoDeadLetters,
    DynamoDeliveryLedger,
    notification_models,
)
from hemera.adapters.notifications_memory import (
    MemoryChannelDirectory,
    MemoryDeadLetters,
    MemoryDeliveryLedger,
)
from hemera.domain.notifications import (
    ChannelKind,
    ClaimResult,
    DeadLetter,
    DeliveryChannel,
    delivery_channels,
)
from hemera.domain.tenancy import TenantContext

ACME, CORP = TenantContext("acme"), TenantContext("acme-corp")
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
HOOK = DeliveryChannel(ChannelKind.WEBHOOK, "https://ops.acme.example/hemera")


@pytest.fixture(params=["memory", "aws"])
def stores(request: pytest.FixtureRequest, moto_cloud: Any) -> tuple[Any, Any, Any]:
    if request.param == "memory":
        return MemoryChannelDirectory(), MemoryDeliveryLedger(), MemoryDeadLetters()
    models = notification_models(
        moto_cloud.readings_table, moto_cloud.aws, aws.endpoint_url(moto_cloud.aws, "dynamodb")
    )
    return DynamoChannelDirectory(models), DynamoDeliveryLedger(models), DynamoDeadLetters(models)


def test_channels_are_stored_per_tenant_and_a_repeat_changes_nothing(stores: tuple[Any, Any, Any]) -> None:
    directory, _, _ = stores
    channels = delivery_channels("acme", [("email", "ops@acme.example"), ("webhook", HOOK.target)])
    assert directory.channels(ACME) is None
    assert directory.put_channels(ACME, channels) is True
    assert directory.put_channels(ACME, channels) is False
    assert directory.channels(ACME) == channels
    assert directory.channels(CORP) is None  # acme's never reach acme-corp
    assert directory.put_channels(ACME, channels[:1]) is True
    assert directory.channels(ACME) == channels[:1]


def test_a_delivery_is_claimed_once_until_its_attempt_ends(stores: tuple[Any, Any, Any]) -> None:
    _, ledger, _ = stores
    # Given a new delivery, claimed by one worker
    assert ledger.claim(ACME, "tr-1:sns", T0, lease_s=20) is ClaimResult.CLAIMED
    # Then a second worker (the same message handed out twice) must leave it alone
    assert ledger.claim(ACME, "tr-1:sns", T0 + timedelta(seconds=5), lease_s=20) is ClaimResult.IN_FLIGHT
    # while the same id of another tenant is another delivery
    assert ledger.claim(CORP, "tr-1:sns", T0, lease_s=20) is ClaimResult.CLAIMED
    # When the attempt fails, the retry claims it again and its attempts are kept
    ledger.failed(ACME, "tr-1:sns", 1, "HTTP 500", T0 + timedelta(seconds=6))
    assert ledger.attempts(ACME, "tr-1:sns") == ("failed", 1)
    assert ledger.claim(ACME, "tr-1:sns", T0 + timedelta(seconds=40), lease_s=20) is ClaimResult.CLAIMED
    # When it is delivered, every later claim is a duplicate
    ledger.delivered(ACME, "tr-1:sns", 2, T0 + timedelta(seconds=41))
    assert ledger.attempts(ACME, "tr-1:sns") == ("delivered", 2)
    assert ledger.claim(ACME, "tr-1:sns", T0 + timedelta(days=1), lease_s=20) is ClaimResult.ALREADY_DELIVERED
    assert ledger.attempts(ACME, "tr-unknown:sns") is None


def test_the_lease_of_a_worker_that_died_runs_out(stores: tuple[Any, Any, Any]) -> None:
    _, ledger, _ = stores
    assert ledger.claim(ACME, "tr-2:sns", T0, lease_s=20) is ClaimResult.CLAIMED
    assert ledger.claim(ACME, "tr-2:sns", T0 + timedelta(seconds=21), lease_s=20) is ClaimResult.CLAIMED


def test_dead_letters_are_kept_per_tenant_oldest_first(stores: tuple[Any, Any, Any]) -> None:
    _, _, dead_letters = stores

    def record(tenant: str, delivery: str, minutes: int) -> DeadLetter:
        return DeadLetter(
            tenant_id=tenant,
            delivery_id=delivery,
            notification_id=delivery.split(":")[0],
            event_type="AlarmChanged",
            channel=HOOK,
            attempts=6,
            last_error="HTTP 500",
            dead_lettered_at=T0 + timedelta(minutes=minutes),
            body=b'{"transition_id":"x"}',
        )

    later, earlier = record("acme", "tr-9:webhook-1", 5), record("acme", "tr-3:webhook-1", 1)
    for item in (later, earlier, record("acme-corp", "tr-4:webhook-1", 0)):
        dead_letters.put(item)
    dead_letters.put(later)  # the same delivery again replaces it
    assert dead_letters.list(ACME) == [earlier, later]
    assert [d.tenant_id for d in dead_letters.list(CORP)] == ["acme-corp"]
