"""Curate: changed meter-days in, one Parquet object per tenant and UTC day out.

Each announcement (a MeterDaysChanged event, see `hemera.adapters.eventbridge.change_detail`) lists
meter-channel-days of one tenant with their new data versions. Ingest announces a version *before*
it writes it, so an announcement can arrive before its write has landed: a day is curated only
once the store holds at least the announced version; otherwise its record fails and the queue
delivers it again later. The rows carry the version read together with them (one consistent read
of the day item), and the day is curated whole, so a duplicate or superseded announcement only
adds rows that the newest-version rule (`CuratedDatasetDef.latest_select`) collapses.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from hemera.domain.curated import CuratedRow, CuratedSeries, batch_digest, curated_rows
from hemera.domain.errors import HemeraError, InvalidTenantId
from hemera.domain.readings import Channel
from hemera.domain.series import SeriesKey
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.observability import logger
from hemera.ports import ReadingStore, SeriesDay
from hemera.ports.curated import CuratedWriter


class MalformedChangeEvent(HemeraError):
    """An event on the curate queue that is not a well-formed MeterDaysChanged announcement."""

    reason = "malformed_change_event"


class ChangeNotLanded(HemeraError):
    """The store does not hold the announced data version yet: the write is still on its way
    (or failed and is being retried by ingest); curating now would miss the change."""

    reason = "change_not_landed"


@dataclass(frozen=True, slots=True)
class DayChanged:
    """One announced change: a meter-channel-day (UTC) of a tenant reached `version`."""

    tenant_id: str
    meter_id: str
    channel: Channel
    day: date
    version: int
    correlation_id: str = ""


def forwarded_changes(body: str, source: str, detail_type: str) -> tuple[DayChanged, ...]:
    """The changes one SQS message carries: the MeterDaysChanged event an EventBridge rule
    forwarded (curate and VEE read their queues with it). MalformedChangeEvent otherwise."""
    try:
        event = json.loads(body)
        if event["source"] != source or event["detail-type"] != detail_type:
            raise MalformedChangeEvent(f"unexpected event {event['source']}/{event['detail-type']}")
        return changes_of_detail(event["detail"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedChangeEvent(f"not an EventBridge event: {exc}") from exc


def changes_of_messages(
    messages: Iterable[tuple[str, str]], source: str, detail_type: str
) -> tuple[dict[str, tuple[DayChanged, ...]], list[str]]:
    """(changes by message id, ids of malformed messages) of a batch of (message id, body): the
    malformed ones are logged and reported as failures, so SQS retries them and then keeps them in
    the DLQ for a person to look at."""
    changes: dict[str, tuple[DayChanged, ...]] = {}
    failed: list[str] = []
    for message_id, body in messages:
        try:
            changes[message_id] = forwarded_changes(body, source, detail_type)
        except MalformedChangeEvent as error:
            logger.error("not a change announcement", extra={"message_id": message_id, "detail": str(error)})
            failed.append(message_id)
    return changes, failed


def changes_of_detail(detail: Mapping[str, Any]) -> tuple[DayChanged, ...]:
    """The changes listed in the `detail` of one MeterDaysChanged event: `tenant`,
    `correlation_id` and `changes` (meter, channel, day, version each)."""
    try:
        tenant = validate_id(detail["tenant"], "tenant")
        correlation_id = str(detail.get("correlation_id") or "")
        listed = detail["changes"]
        if not isinstance(listed, list) or not listed:
            raise ValueError("no changes listed")
        return tuple(
            DayChanged(
                tenant_id=tenant,
                meter_id=validate_id(change["meter"], "meter"),
                channel=Channel(change["channel"]),
                day=date.fromisoformat(change["day"]),
                version=_version(change["version"]),
                correlation_id=correlation_id,
            )
            for change in listed
        )
    except (KeyError, TypeError, ValueError, InvalidTenantId) as exc:
        raise MalformedChangeEvent(f"not a MeterDaysChanged detail: {exc}") from exc


def _version(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"version {value!r} is not a positive integer")
    return value


@dataclass(frozen=True, slots=True)
class CuratePorts:
    store: ReadingStore
    curated: CuratedWriter


@dataclass(frozen=True, slots=True)
class CuratedObject:
    tenant_id: str
    day: date
    key: str
    rows: int
    series: int


@dataclass(frozen=True, slots=True)
class CurateOutcome:
    """What a batch did: the objects written and, by record id, the records that failed (to be
    delivered again) with the error of each."""

    objects: tuple[CuratedObject, ...] = ()
    failures: Mapping[str, Exception] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.objects)


@dataclass
class _Series:
    """The announcements of one meter-channel-day in a batch: their records and the newest version."""

    record_ids: list[str] = field(default_factory=list)
    version: int = 0


def curate_changes(
    announcements: Mapping[str, Sequence[DayChanged]], ports: CuratePorts, curated_at: datetime
) -> CurateOutcome:
    """Curate a batch of announcements (record id → the changes it lists): for each tenant and UTC
    day, the rows of every changed meter-channel-day whose announced version has landed, in one
    object.

    A record fails when one of its days has not landed or cannot be curated (the other days go
    on), and when its tenant's days cannot be read or the object of one of its tenant-days cannot
    be written. Delivered again, it curates all its days again: the same rows, which the
    newest-version rule collapses.
    """
    wanted: dict[str, dict[SeriesKey, _Series]] = defaultdict(dict)
    for record_id, changes in announcements.items():
        for change in changes:
            series = wanted[change.tenant_id].setdefault(
                (change.meter_id, change.channel, change.day), _Series()
            )
            series.record_ids.append(record_id)
            series.version = max(series.version, change.version)

    objects: list[CuratedObject] = []
    failures: dict[str, Exception] = {}
    for tenant_id, tenant_series in sorted(wanted.items()):
        ctx = TenantContext(tenant_id)
        try:
            # One strongly consistent read gives each day's version and intervals together.
            stored = ports.store.read_series(ctx, sorted(tenant_series))
        except Exception as error:
            _fail(failures, [r for s in tenant_series.values() for r in s.record_ids], error)
            continue
        days: dict[date, _TenantDay] = defaultdict(_TenantDay)
        for key, series in sorted(tenant_series.items()):
            try:
                rows = _series_rows(key, series, stored.get(key), curated_at)
            except (ChangeNotLanded, ValueError) as error:  # this day only: the others go on
                _fail(failures, series.record_ids, error)
                continue
            meter_id, channel, day = key
            days[day].add(CuratedSeries(meter_id, channel, day, stored[key].version), rows, series.record_ids)
        for day, tenant_day in sorted(days.items()):
            try:
                object_key = ports.curated.write(
                    ctx, day, batch_digest(tenant_id, day, tenant_day.series), tenant_day.rows
                )
            except Exception as error:
                _fail(failures, tenant_day.record_ids, error)
                continue
            objects.append(
                CuratedObject(tenant_id, day, object_key, len(tenant_day.rows), len(tenant_day.series))
            )
    return CurateOutcome(tuple(objects), failures)


@dataclass
class _TenantDay:
    """What one tenant-day's object will hold, and the records it answers for."""

    series: list[CuratedSeries] = field(default_factory=list)
    rows: list[CuratedRow] = field(default_factory=list)
    record_ids: list[str] = field(default_factory=list)

    def add(self, series: CuratedSeries, rows: list[CuratedRow], record_ids: list[str]) -> None:
        self.series.append(series)
        self.rows += rows
        self.record_ids += record_ids


def _series_rows(
    key: SeriesKey, series: _Series, stored: SeriesDay | None, curated_at: datetime
) -> list[CuratedRow]:
    meter_id, channel, day = key
    if stored is None or stored.version < series.version:
        held = None if stored is None else stored.version
        raise ChangeNotLanded(
            f"{meter_id} {channel.value} {day}: announced version {series.version}, stored {held}"
        )
    return curated_rows(stored.readings, stored.version, curated_at)


def _fail(failures: dict[str, Exception], record_ids: Sequence[str], error: Exception) -> None:
    """Record the first error of each record (the one its log line names)."""
    for record_id in record_ids:
        failures.setdefault(record_id, error)
