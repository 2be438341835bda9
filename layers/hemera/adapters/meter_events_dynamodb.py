"""Device events, outages, energy registers and device activity in the readings table (pynamodb),
tenant-first like every item there.

- events: `T#<t>#M#<meter>` (or `T#<t>#D#<rtu>` for an RTU's own events) / `EV#<at, UTC to the
  microsecond>#<type>`: a subject's events of a time range are one Query, in time order; the sort
  key is the event's identity (`MeterEvent.event_id`), so a conditional put records it once.
- registers: `T#<t>#M#<meter>` / `REG#<channel>#<at, UTC to the second>`; a redelivered reading
  puts the same item again.
- outages: `T#<t>#OUTAGES` / `O#<start>#<meter>`: one partition per tenant (outages are rare), so
  the tenant's outages of a range are one Query and a meter's are the same Query filtered by meter.
  Outages are found by start; one overlapping the range that started up to `OUTAGE_LOOKBACK`
  before it is included.
- activity: `T#<t>#ACTIVITY` / `M#<meter>` or `D#<rtu>` with the last-seen time; a conditional
  update only ever moves it forward.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from hemera.adapters.dynamodb import bind_model
from hemera.config import AwsTarget
from hemera.domain.meter_events import EventType, MeterEvent, Outage, OutageSource, Subject
from hemera.domain.outages import OUTAGE_LOOKBACK
from hemera.domain.readings import Channel
from hemera.domain.registers import RegisterReading
from hemera.domain.tenancy import TenantContext, validate_id

EVENT_SK_PREFIX = "EV#"
REGISTER_SK_PREFIX = "REG#"
OUTAGE_SK_PREFIX = "O#"
_CONDITION_FAILED = "ConditionalCheckFailedException"


def _instant(moment: datetime) -> str:
    """UTC to the microsecond, fixed width: sorts as time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _second(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _subject_pk(ctx: TenantContext, subject: Subject, subject_id: str) -> str:
    return ctx.meter_pk(subject_id) if subject is Subject.METER else ctx.device_pk(subject_id)


def event_sk(event: MeterEvent) -> str:
    return f"{EVENT_SK_PREFIX}{_instant(event.at)}#{event.type.value}"


def _outages_pk(ctx: TenantContext) -> str:
    return f"{ctx.key_prefix}OUTAGES"


def _activity_pk(ctx: TenantContext) -> str:
    return f"{ctx.key_prefix}ACTIVITY"


def _activity_sk(subject: Subject, subject_id: str) -> str:
    kind = "meter" if subject is Subject.METER else "device"
    return f"{'M' if subject is Subject.METER else 'D'}#{validate_id(subject_id, kind)}"


class MeterEventRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    subject = UnicodeAttribute()
    subject_id = UnicodeAttribute()
    device = UnicodeAttribute()
    type = UnicodeAttribute()
    at = UnicodeAttribute()  # ISO 8601 with offset, as the event carries it
    code = NumberAttribute(null=True)
    detail = UnicodeAttribute()  # JSON object


class OutageRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    meter = UnicodeAttribute()
    start = UnicodeAttribute()
    end = UnicodeAttribute(null=True)  # None while the outage lasts
    source = UnicodeAttribute()


class RegisterRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    meter = UnicodeAttribute()
    channel = UnicodeAttribute()
    at = UnicodeAttribute()
    value = UnicodeAttribute()  # decimal as a string: exact, like interval values


class ActivityRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    subject = UnicodeAttribute()
    subject_id = UnicodeAttribute()
    last_seen = UnicodeAttribute()  # fixed-width UTC: compares as time in the condition


@cache
def meter_event_models(
    table_name: str, target: AwsTarget, host: str | None
) -> tuple[type[MeterEventRecord], type[OutageRecord], type[RegisterRecord], type[ActivityRecord]]:
    return (
        bind_model(MeterEventRecord, table_name, target, host),
        bind_model(OutageRecord, table_name, target, host),
        bind_model(RegisterRecord, table_name, target, host),
        bind_model(ActivityRecord, table_name, target, host),
    )


class DynamoMeterEvents:
    """`MeterEventStore` (plus `unseen` and `discard_outages`, which translate uses)."""

    def __init__(self, event: type[MeterEventRecord], outage: type[OutageRecord]) -> None:
        self._event, self._outage = event, outage

    def _to_record(self, ctx: TenantContext, event: MeterEvent) -> MeterEventRecord:
        return self._event(
            _subject_pk(ctx, event.subject, event.subject_id),
            event_sk(event),
            tenant=ctx.tenant_id,
            subject=event.subject.value,
            subject_id=event.subject_id,
            device=event.device_id,
            type=event.type.value,
            at=event.at.isoformat(),
            code=event.code,
            detail=json.dumps(event.detail, sort_keys=True, default=str),
        )

    def unseen(self, ctx: TenantContext, events: Sequence[MeterEvent]) -> list[MeterEvent]:
        """The events not stored yet (one BatchGetItem per 100), in the order given."""
        unique = list({e.event_id: e for e in events}.values())
        keys = {(_subject_pk(ctx, e.subject, e.subject_id), event_sk(e)): e for e in unique}
        stored = {(r.pk, r.sk) for r in self._event.batch_get(list(keys), attributes_to_get=["pk", "sk"])}
        return [e for key, e in keys.items() if key not in stored]

    def record(self, ctx: TenantContext, events: Sequence[MeterEvent]) -> list[MeterEvent]:
        new: list[MeterEvent] = []
        for event in {e.event_id: e for e in events}.values():
            record = self._to_record(ctx, event)
            try:
                record.save(condition=self._event.pk.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code != _CONDITION_FAILED:
                    raise
                continue
            new.append(event)
        return new

    def events(
        self, ctx: TenantContext, subject: Subject, subject_id: str, start: datetime, end: datetime
    ) -> list[MeterEvent]:
        low, high = EVENT_SK_PREFIX + _instant(start), EVENT_SK_PREFIX + _instant(end)
        found = [
            _event(r)
            for r in self._event.query(
                _subject_pk(ctx, subject, subject_id), self._event.sk.between(low, high)
            )
            if r.sk < high
        ]
        return [e for e in found if start <= e.at < end]

    def save_outages(self, ctx: TenantContext, outages: Sequence[Outage]) -> None:
        with self._outage.batch_write() as batch:
            for outage in outages:
                batch.save(
                    self._outage(
                        _outages_pk(ctx),
                        _outage_sk(outage.meter_id, outage.start),
                        tenant=ctx.tenant_id,
                        meter=outage.meter_id,
                        start=outage.start.isoformat(),
                        end=None if outage.end is None else outage.end.isoformat(),
                        source=outage.source.value,
                    )
                )

    def discard_outages(self, ctx: TenantContext, outages: Sequence[Outage]) -> None:
        """Delete outages a more trusted one replaced (identity: meter and start)."""
        with self._outage.batch_write() as batch:
            for outage in outages:
                batch.delete(self._outage(_outages_pk(ctx), _outage_sk(outage.meter_id, outage.start)))

    def outages(self, ctx: TenantContext, meter_id: str, start: datetime, end: datetime) -> list[Outage]:
        return self._outages(ctx, start, end, validate_id(meter_id, "meter"))

    def tenant_outages(self, ctx: TenantContext, start: datetime, end: datetime) -> list[Outage]:
        """Every meter's outages overlapping [start, end), in start order."""
        return self._outages(ctx, start, end, None)

    def _outages(
        self, ctx: TenantContext, start: datetime, end: datetime, meter_id: str | None
    ) -> list[Outage]:
        low = OUTAGE_SK_PREFIX + _instant(start - OUTAGE_LOOKBACK)
        high = OUTAGE_SK_PREFIX + _instant(end)  # `#` sorts after nothing shorter: start < end
        condition = None if meter_id is None else self._outage.meter == meter_id
        found = [
            _outage(r)
            for r in self._outage.query(
                _outages_pk(ctx), self._outage.sk.between(low, high), filter_condition=condition
            )
        ]
        return sorted((o for o in found if o.covers(start, end)), key=lambda o: (o.start, o.meter_id))


def _outage_sk(meter_id: str, start: datetime) -> str:
    return f"{OUTAGE_SK_PREFIX}{_instant(start)}#{validate_id(meter_id, 'meter')}"


def _event(record: MeterEventRecord) -> MeterEvent:
    return MeterEvent(
        subject=Subject(record.subject),
        subject_id=record.subject_id,
        device_id=record.device,
        type=EventType(record.type),
        at=datetime.fromisoformat(record.at),
        code=None if record.code is None else int(record.code),
        detail=json.loads(record.detail),
    )


def _outage(record: OutageRecord) -> Outage:
    return Outage(
        meter_id=record.meter,
        start=datetime.fromisoformat(record.start),
        end=None if record.end is None else datetime.fromisoformat(record.end),
        source=OutageSource(record.source),
    )


class DynamoRegisters:
    """`RegisterStore`."""

    def __init__(self, record: type[RegisterRecord]) -> None:
        self._record = record

    def record_registers(self, ctx: TenantContext, readings: Sequence[RegisterReading]) -> None:
        with self._record.batch_write() as batch:
            for r in readings:
                batch.save(
                    self._record(
                        ctx.meter_pk(r.meter_id),
                        f"{REGISTER_SK_PREFIX}{r.channel.value}#{_second(r.at)}",
                        tenant=ctx.tenant_id,
                        meter=r.meter_id,
                        channel=r.channel.value,
                        at=_second(r.at),
                        value=str(r.value),
                    )
                )

    def register_readings(
        self, ctx: TenantContext, meter_id: str, channel: Channel, start: datetime, end: datetime
    ) -> list[RegisterReading]:
        prefix = f"{REGISTER_SK_PREFIX}{channel.value}#"
        low, high = prefix + _second(start), prefix + _second(end)
        return [
            RegisterReading(r.meter, Channel(r.channel), _parse(r.at), Decimal(r.value))
            for r in self._record.query(ctx.meter_pk(meter_id), self._record.sk.between(low, high))
            if r.sk < high and start <= _parse(r.at) < end
        ]


class DynamoDeviceActivity:
    """`DeviceActivity`: one put per subject and call, 25 to a BatchWriteItem (translate calls it
    once per batch: a few requests instead of one conditional update per meter, which doubled the
    write requests of ingest). Times are arrival times, so the last write is the latest delivery
    but for concurrent batches a few seconds apart — nothing for a silence measured in hours."""

    def __init__(self, record: type[ActivityRecord]) -> None:
        self._record = record

    def touch(self, ctx: TenantContext, seen: Mapping[tuple[Subject, str], datetime]) -> None:
        with self._record.batch_write() as batch:
            for (subject, subject_id), at in seen.items():
                batch.save(
                    self._record(
                        _activity_pk(ctx),
                        _activity_sk(subject, subject_id),
                        tenant=ctx.tenant_id,
                        subject=subject.value,
                        subject_id=subject_id,
                        last_seen=_instant(at),
                    )
                )

    def last_seen(self, ctx: TenantContext) -> dict[tuple[Subject, str], datetime]:
        return {
            (Subject(r.subject), r.subject_id): _parse(r.last_seen)
            for r in self._record.query(_activity_pk(ctx))
        }
