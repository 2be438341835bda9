"""Final days and export requests for the billing-export tests.

`final_day` builds every interval of one tenant-local day (23, 24 or 25 hours on DST changes) with
deterministic values of three decimals; `substituted` marks intervals estimated or edited by VEE
with their AEMO method flag and reason code, `missing` those VEE could not fill (quality N).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hemera.domain.exports import ExportFormat, ExportRequest, MeterExportData, totals_key
from hemera.domain.final_series import (
    ESPI_EDITED,
    ESPI_LINEAR,
    ESPI_QUESTIONABLE,
    ESPI_REFERENCE_DAY,
    ESPI_VALID,
    FinalDay,
    FinalInterval,
    FinalStatus,
    QualityFlag,
)
from hemera.domain.readings import Channel

SYDNEY = "Australia/Sydney"  # AEDT (+11) ends 2026-04-05 03:00 → 02:00 AEST (+10): a 25-hour day
SAO_PAULO = "America/Sao_Paulo"  # -03:00 all year
FALL_BACK_DAY = date(2026, 4, 5)
CREATED_AT = datetime(2026, 4, 7, 2, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Substitution:
    """How VEE replaced one interval's value: AEMO method flag and reason, quality flag, status."""

    method: int
    reason: int
    flag: QualityFlag = QualityFlag.SUBSTITUTE
    status: FinalStatus = FinalStatus.ESTIMATED
    factor: Decimal = Decimal("1.5")  # the substitute differs from what the meter sent


LINEAR_COMMS_FAULT = Substitution(method=17, reason=76)  # S17, communications fault
LIKE_DAY_OUTAGE = Substitution(method=14, reason=43)  # S14, power outage
EDITED_CORRECTION = Substitution(
    method=14, reason=24, flag=QualityFlag.FINAL_SUBSTITUTE, status=FinalStatus.EDITED
)
MISSING_REASON = 76

_ESPI_FOR_METHOD = {17: ESPI_LINEAR, 14: ESPI_REFERENCE_DAY, 15: ESPI_REFERENCE_DAY}


def interval_value(index: int, base: Decimal) -> Decimal:
    """The meter's value of the day's `index`-th interval: base x 1..8 (three decimals)."""
    return base * (1 + index % 8)


def final_day(
    meter_id: str,
    channel: Channel,
    local_day: date,
    *,
    timezone: str = SYDNEY,
    interval_minutes: int = 15,
    base: str = "0.125",
    substituted: Mapping[int, Substitution] | None = None,
    missing: Iterable[int] = (),
    version: int = 1,
) -> FinalDay:
    """Every interval of `local_day` in `timezone`; index 0 starts at local midnight."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(local_day, time(), zone).astimezone(UTC)
    end = datetime.combine(local_day + timedelta(days=1), time(), zone).astimezone(UTC)
    count = int((end - start) / timedelta(minutes=interval_minutes))
    substituted = substituted or {}
    missing = set(missing)
    intervals = []
    for index in range(count):
        raw = interval_value(index, Decimal(base))
        begin = start + timedelta(minutes=interval_minutes * index)
        if index in missing:
            intervals.append(
                FinalInterval(
                    start=begin,
                    length_minutes=interval_minutes,
                    value=None,
                    raw_value=None,
                    status=FinalStatus.FAILED,
                    quality_flag=QualityFlag.NULL,
                    espi_quality=ESPI_QUESTIONABLE,
                    reason_code=MISSING_REASON,
                    rule_id="gap",
                    rule_version=1,
                )
            )
        elif index in substituted:
            sub = substituted[index]
            intervals.append(
                FinalInterval(
                    start=begin,
                    length_minutes=interval_minutes,
                    value=raw * sub.factor,
                    raw_value=raw,
                    status=sub.status,
                    quality_flag=sub.flag,
                    espi_quality=ESPI_EDITED
                    if sub.status is FinalStatus.EDITED
                    else _ESPI_FOR_METHOD[sub.method],
                    method_flag=sub.method,
                    reason_code=sub.reason,
                    rule_id="estimate_linear" if sub.method == 17 else "estimate_like_day",
                    rule_version=2,
                )
            )
        else:
            intervals.append(
                FinalInterval(
                    start=begin,
                    length_minutes=interval_minutes,
                    value=raw,
                    raw_value=raw,
                    status=FinalStatus.ACTUAL,
                    quality_flag=QualityFlag.ACTUAL,
                    espi_quality=ESPI_VALID,
                )
            )
    return FinalDay(
        meter_id=meter_id,
        channel=channel,
        local_day=local_day,
        timezone=timezone,
        interval_minutes=interval_minutes,
        version=version,
        intervals=tuple(intervals),
        computed_at=CREATED_AT - timedelta(hours=1),
    )


def sydney_meter(nmi: str | None = "NCDE001234") -> MeterExportData:
    """A 15-minute meter in Sydney with active and reactive import over 4-6 April 2026 (the 5th
    has 25 hours): S17 reason 76 on the 4th 02:00-03:00 and S14 reason 43 on the 6th 10:00-11:00
    (active), one missing reactive interval on the 5th."""
    meter_id = "cp-m-2001"
    days = [
        final_day(
            meter_id,
            Channel.ACTIVE_IMPORT,
            date(2026, 4, 4),
            substituted=dict.fromkeys(range(8, 12), LINEAR_COMMS_FAULT),
        ),
        final_day(meter_id, Channel.ACTIVE_IMPORT, FALL_BACK_DAY),
        final_day(
            meter_id,
            Channel.ACTIVE_IMPORT,
            date(2026, 4, 6),
            substituted=dict.fromkeys(range(40, 44), LIKE_DAY_OUTAGE),
        ),
        final_day(meter_id, Channel.REACTIVE_IMPORT, date(2026, 4, 4), base="0.050"),
        final_day(meter_id, Channel.REACTIVE_IMPORT, FALL_BACK_DAY, base="0.050", missing=[10]),
        final_day(meter_id, Channel.REACTIVE_IMPORT, date(2026, 4, 6), base="0.050"),
    ]
    return MeterExportData(
        meter_id=meter_id, serial="SN2001", nmi=nmi, customer_id="cust-1", timezone=SYDNEY, days=days
    )


def sao_paulo_meter(nmi: str | None = None) -> MeterExportData:
    """A 30-minute meter in São Paulo (without an NMI unless given), active import over 4-6 April
    2026, with an operator's edit (F14 reason 24) on the 5th 15:00-16:00."""
    meter_id = "cp-m-2002"
    days = [
        final_day(
            meter_id,
            Channel.ACTIVE_IMPORT,
            date(2026, 4, 4),
            timezone=SAO_PAULO,
            interval_minutes=30,
            base="0.500",
        ),
        final_day(
            meter_id,
            Channel.ACTIVE_IMPORT,
            FALL_BACK_DAY,
            timezone=SAO_PAULO,
            interval_minutes=30,
            base="0.500",
            substituted=dict.fromkeys((30, 31), EDITED_CORRECTION),
            version=2,
        ),
        final_day(
            meter_id,
            Channel.ACTIVE_IMPORT,
            date(2026, 4, 6),
            timezone=SAO_PAULO,
            interval_minutes=30,
            base="0.500",
        ),
    ]
    return MeterExportData(
        meter_id=meter_id, serial=None, nmi=nmi, customer_id=None, timezone=SAO_PAULO, days=days
    )


def export_request(
    export_format: ExportFormat,
    meters: Sequence[MeterExportData] | None = None,
    *,
    period_start: date = date(2026, 4, 4),
    period_end: date = date(2026, 4, 6),
    version: int = 1,
) -> ExportRequest:
    return ExportRequest(
        tenant_id="acme",
        tenant_name="Acme Energia",
        format=export_format,
        period_start=period_start,
        period_end=period_end,
        created_at=CREATED_AT,
        version=version,
        meters=list(meters) if meters is not None else [sydney_meter(), sao_paulo_meter()],
        participant_to="ACMERETAIL",
    )


def expected_totals(meters: Sequence[MeterExportData]) -> dict[str, Decimal]:
    """Our totals, straight from the final days: the sum of `FinalDay.total()` per channel."""
    totals: dict[str, Decimal] = {}
    for meter in meters:
        for day in meter.days:
            key = totals_key(day.channel)
            totals[key] = totals.get(key, Decimal(0)) + day.total()
    return totals


def valued_intervals(meters: Sequence[MeterExportData], channel: Channel | None = None) -> int:
    """How many intervals carry a value (ESPI writes one IntervalReading for each)."""
    return sum(
        1
        for meter in meters
        for day in meter.days
        if channel is None or day.channel is channel
        for interval in day.intervals
        if interval.value is not None
    )


def export_written_listener(event_bus: str, name: str) -> Callable[[], list[dict[str, Any]]]:
    """A queue (in-process moto) that receives every `ExportWritten` put on `event_bus`; calling
    the result drains it and returns the events' details."""
    import boto3

    from hemera.definitions import BILLING_SOURCE, EXPORT_WRITTEN

    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [BILLING_SOURCE], "detail-type": [EXPORT_WRITTEN]}
    events.put_rule(Name=name, EventBusName=event_bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=event_bus, Targets=[{"Id": "q", "Arn": arn}])

    def received() -> list[dict[str, Any]]:
        found = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                found.append(json.loads(message["Body"])["detail"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    return received
