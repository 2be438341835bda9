"""Notification state in the readings table (pynamodb), tenant-first like every item there, all in
the tenant's notification partition `T#<tenant>#NOTIFY` (a few items per alarm transition):

- the tenant's delivery channels: sort key `CHANNELS` (written by `hemera tenant apply`);
- one delivery state per (notification, channel): `DLV#<notification id>:<channel id>` — status,
  attempts and the lease of the attempt in flight; expires (table TTL) 14 days after its last
  attempt, longer than any redelivery of the queues;
- one dead letter per given-up delivery: `DL#<delivery id>`, kept until an operator removes it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from hemera.adapters.dynamodb import bind_model
from hemera.config import AwsTarget
from hemera.domain.notifications import ChannelKind, ClaimResult, DeadLetter, DeliveryChannel
from hemera.domain.tenancy import TenantContext

CHANNELS_SK = "CHANNELS"
DELIVERY_SK_PREFIX = "DLV#"
DEAD_LETTER_SK_PREFIX = "DL#"
DELIVERED, SENDING, FAILED = "delivered", "sending", "failed"
STATE_RETENTION = timedelta(days=14)


def notify_pk(ctx: TenantContext) -> str:
    return f"{ctx.key_prefix}NOTIFY"


class ChannelsRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#NOTIFY
    sk = UnicodeAttribute(range_key=True)  # CHANNELS
    tenant = UnicodeAttribute()
    channels = UnicodeAttribute()  # JSON [{"kind", "target"}]


class DeliveryStateRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#NOTIFY
    sk = UnicodeAttribute(range_key=True)  # DLV#<delivery id>
    status = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    lease_until = NumberAttribute()  # epoch seconds
    last_error = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute()
    expires_at = NumberAttribute()  # the table's TTL attribute


class DeadLetterRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#NOTIFY
    sk = UnicodeAttribute(range_key=True)  # DL#<delivery id>
    tenant = UnicodeAttribute()
    delivery_id = UnicodeAttribute()
    notification_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    channel_kind = UnicodeAttribute()
    channel_target = UnicodeAttribute()
    attempts = NumberAttribute()
    last_error = UnicodeAttribute()
    dead_lettered_at = UnicodeAttribute()
    body = UnicodeAttribute()


@dataclass(frozen=True, slots=True)
class NotificationModels:
    channels: type[ChannelsRecord]
    state: type[DeliveryStateRecord]
    dead_letter: type[DeadLetterRecord]


@cache
def notification_models(table_name: str, target: AwsTarget, host: str | None) -> NotificationModels:
    return NotificationModels(
        bind_model(ChannelsRecord, table_name, target, host),
        bind_model(DeliveryStateRecord, table_name, target, host),
        bind_model(DeadLetterRecord, table_name, target, host),
    )


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


class DynamoChannelDirectory:
    def __init__(self, models: NotificationModels) -> None:
        self._record = models.channels

    def put_channels(self, ctx: TenantContext, channels: Sequence[DeliveryChannel]) -> bool:
        document = json.dumps([{"kind": c.kind.value, "target": c.target} for c in channels])
        if self._stored(ctx) == document:
            return False
        self._record(notify_pk(ctx), CHANNELS_SK, tenant=ctx.tenant_id, channels=document).save()
        return True

    def _stored(self, ctx: TenantContext) -> str | None:
        try:
            return str(self._record.get(notify_pk(ctx), CHANNELS_SK, consistent_read=True).channels)
        except self._record.DoesNotExist:
            return None

    def channels(self, ctx: TenantContext) -> tuple[DeliveryChannel, ...] | None:
        stored = self._stored(ctx)
        if stored is None:
            return None
        return tuple(DeliveryChannel(ChannelKind(c["kind"]), c["target"]) for c in json.loads(stored))


class DynamoDeliveryLedger:
    def __init__(self, models: NotificationModels) -> None:
        self._record = models.state

    def _key(self, ctx: TenantContext, delivery_id: str) -> DeliveryStateRecord:
        return self._record(notify_pk(ctx), DELIVERY_SK_PREFIX + delivery_id)

    def claim(self, ctx: TenantContext, delivery_id: str, now: datetime, lease_s: int) -> ClaimResult:
        r = self._record
        item = self._key(ctx, delivery_id)
        # One conditional write decides between concurrent workers (at-least-once queues can hand
        # the same delivery to two): new, or failed before, or a lease that ran out (a worker died).
        condition = r.pk.does_not_exist() | (
            (r.status != DELIVERED) & ((r.status != SENDING) | (r.lease_until < _epoch(now)))
        )
        try:
            item.update(
                actions=[
                    r.status.set(SENDING),
                    r.lease_until.set(_epoch(now) + lease_s),
                    r.updated_at.set(now.isoformat()),
                    r.expires_at.set(_epoch(now + STATE_RETENTION)),
                ],
                condition=condition,
            )
        except UpdateError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            state = self.attempts(ctx, delivery_id)
            return ClaimResult.ALREADY_DELIVERED if state and state[0] == DELIVERED else ClaimResult.IN_FLIGHT
        return ClaimResult.CLAIMED

    def _settle(
        self,
        ctx: TenantContext,
        delivery_id: str,
        status: str,
        attempts: int,
        at: datetime,
        error: str | None,
    ) -> None:
        self._record(
            notify_pk(ctx),
            DELIVERY_SK_PREFIX + delivery_id,
            status=status,
            attempts=attempts,
            lease_until=0,
            last_error=error,
            updated_at=at.isoformat(),
            expires_at=_epoch(at + STATE_RETENTION),
        ).save()

    def delivered(self, ctx: TenantContext, delivery_id: str, attempts: int, at: datetime) -> None:
        self._settle(ctx, delivery_id, DELIVERED, attempts, at, None)

    def failed(self, ctx: TenantContext, delivery_id: str, attempts: int, error: str, at: datetime) -> None:
        self._settle(ctx, delivery_id, FAILED, attempts, at, error)

    def attempts(self, ctx: TenantContext, delivery_id: str) -> tuple[str, int] | None:
        try:
            item = self._record.get(notify_pk(ctx), DELIVERY_SK_PREFIX + delivery_id, consistent_read=True)
        except self._record.DoesNotExist:
            return None
        return str(item.status), int(item.attempts)


class DynamoDeadLetters:
    def __init__(self, models: NotificationModels) -> None:
        self._record = models.dead_letter

    def put(self, record: DeadLetter) -> None:
        ctx = TenantContext(record.tenant_id)
        self._record(
            notify_pk(ctx),
            DEAD_LETTER_SK_PREFIX + record.delivery_id,
            tenant=record.tenant_id,
            delivery_id=record.delivery_id,
            notification_id=record.notification_id,
            event_type=record.event_type,
            channel_kind=record.channel.kind.value,
            channel_target=record.channel.target,
            attempts=record.attempts,
            last_error=record.last_error,
            dead_lettered_at=record.dead_lettered_at.isoformat(),
            body=record.body.decode(),
        ).save()

    def list(self, ctx: TenantContext) -> list[DeadLetter]:
        records = [
            DeadLetter(
                tenant_id=r.tenant,
                delivery_id=r.delivery_id,
                notification_id=r.notification_id,
                event_type=r.event_type,
                channel=DeliveryChannel(ChannelKind(r.channel_kind), r.channel_target),
                attempts=int(r.attempts),
                last_error=r.last_error,
                dead_lettered_at=datetime.fromisoformat(r.dead_lettered_at),
                body=r.body.encode(),
            )
            for r in self._record.query(
                notify_pk(ctx),
                self._record.sk.startswith(DEAD_LETTER_SK_PREFIX),
                consistent_read=True,
            )
        ]
        return sorted(records, key=lambda r: (r.dead_lettered_at, r.delivery_id))
