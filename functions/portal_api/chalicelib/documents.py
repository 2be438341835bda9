"""Representations of meter data: the JSON documents of `api_spec/openapi.yaml` and the CSV of a
load profile. Times are written in the tenant's time zone with their UTC offset."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hemera.domain.aggregation import POWER_FACTOR_REACTIVE_CHANNELS, Period
from hemera.domain.readings import CHANNEL_UNITS
from hemera.services.meter_data import Consumption, Demand, MeterSeries, PowerFactor
from hemera.services.vee import FinalProfile

from .http import number

# Power factor is written with 4 decimals: finer than any meter's accuracy class, and enough to
# compare with a reference such as 0.92.
_PF_STEP = Decimal("0.0001")


def _optional(value: Decimal | None) -> float | int | None:
    return None if value is None else number(value)


def _period(period: Period, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "start": period.start.astimezone(zone).isoformat(),
        "end": period.end.astimezone(zone).isoformat(),
        "expected_intervals": period.expected_intervals,
    }


def _header(series: MeterSeries) -> dict[str, Any]:
    zone = series.tenant.zone
    return {
        "meter_id": series.meter.id,
        "timezone": series.tenant.timezone,
        "interval_minutes": series.interval_minutes,
        "from": series.start.astimezone(zone).isoformat(),
        "to": series.end.astimezone(zone).isoformat(),
    }


def consumption_document(result: Consumption) -> dict[str, Any]:
    zone = result.series.tenant.zone
    channels = list(result.totals)
    periods = []
    for index, totals in enumerate(zip(*(result.totals[c] for c in channels), strict=True)):
        entry = _period(totals[0].period, zone)
        if result.posts:  # granularity=post: each entry covers the range, for one post
            entry["post"] = result.posts[index]
        entry["channels"] = {
            c.value: {"energy": _optional(t.energy), "intervals": t.intervals, "missing": t.missing}
            for c, t in zip(channels, totals, strict=True)
        }
        periods.append(entry)
    document = {
        **_header(result.series),
        "granularity": result.granularity.value,
        "units": {c.value: CHANNEL_UNITS[c].value for c in channels},
        "periods": periods,
    }
    if result.tariff_id is not None:
        document["tariff_id"] = result.tariff_id
    return document


def _local(instant: datetime | None, zone: ZoneInfo) -> str | None:
    return None if instant is None else instant.astimezone(zone).isoformat()


def demand_document(result: Demand) -> dict[str, Any]:
    zone = result.series.tenant.zone
    return {
        **_header(result.series),
        "period": result.granularity.value,
        "channel": "active_import",
        "unit": "kW",
        "periods": [
            _period(peak.period, zone)
            | {
                "intervals": peak.intervals,
                "missing": peak.missing,
                "max_demand_kw": _optional(peak.demand_kw),
                "at": _local(peak.at, zone),
            }
            for peak in result.peaks
        ],
    }


def power_factor_document(result: PowerFactor) -> dict[str, Any]:
    zone = result.series.tenant.zone
    return {
        **_header(result.series),
        "granularity": result.granularity.value,
        "reactive_channels": [c.value for c in POWER_FACTOR_REACTIVE_CHANNELS],
        "periods": [
            _period(pf.period, zone)
            | {
                "intervals": pf.intervals,
                "missing": pf.missing,
                "active_kwh": _optional(pf.active_kwh),
                "reactive_kvarh": _optional(pf.reactive_kvarh),
                "power_factor": None
                if pf.power_factor is None
                else number(pf.power_factor.quantize(_PF_STEP, ROUND_HALF_EVEN)),
            }
            for pf in result.periods
        ],
    }


# Columns of a load profile as CSV (documented in the spec): one row per interval found, missing
# intervals absent as in JSON. Provenance: where VEE has computed the local day, the final value
# with its status, AEMO quality/method/reason, ESPI quality, the VEE rule and the day's data
# version; elsewhere the stored meter data (status as stored, `raw`), without VEE columns.
LOAD_PROFILE_CSV_COLUMNS = (
    "meter_id",
    "channel",
    "start",
    "end",
    "value",
    "unit",
    "source",
    "status",
    "quality",
    "meter_flags",
    "raw_value",
    "method_flag",
    "reason_code",
    "espi_quality",
    "rule_id",
    "rule_version",
    "data_version",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def load_profile_csv(profile: FinalProfile) -> str:
    zone = profile.tenant.zone
    unit = CHANNEL_UNITS[profile.channel].value
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(LOAD_PROFILE_CSV_COLUMNS)
    for r in profile.intervals:
        writer.writerow(
            (
                profile.meter_id,
                profile.channel.value,
                r.start.astimezone(zone).isoformat(),
                r.end.astimezone(zone).isoformat(),
                *(
                    _cell(v)
                    for v in (
                        r.value,
                        unit,
                        r.source,
                        r.status,
                        r.quality_flag,
                        r.meter_flags,
                        r.raw_value,
                        r.method_flag,
                        r.reason_code,
                        r.espi_quality,
                        r.rule_id,
                        r.rule_version,
                        r.data_version,
                    )
                ),
            )
        )
    return out.getvalue()


def load_profile_document(profile: FinalProfile) -> dict[str, Any]:
    zone = profile.tenant.zone
    intervals = [
        {
            "start": r.start.astimezone(zone).isoformat(),
            "end": r.end.astimezone(zone).isoformat(),
            "value": _optional(r.value),
            "raw_value": _optional(r.raw_value),
            "status": r.status,
            "quality": r.quality_flag,
            "quality_flag": r.quality_flag,
            "source": r.source,
            "method_flag": r.method_flag,
            "reason_code": r.reason_code,
            "espi_quality": r.espi_quality,
            "rule_id": r.rule_id,
            "rule_version": r.rule_version,
            "data_version": r.data_version,
        }
        for r in profile.intervals
    ]
    minutes = profile.intervals[0].length_minutes if profile.intervals else 15
    # In UTC: local wall-clock arithmetic would call a 23-hour DST day 24 hours long.
    expected = int((profile.end.astimezone(UTC) - profile.start.astimezone(UTC)) / timedelta(minutes=minutes))
    return {
        "meter_id": profile.meter_id,
        "channel": profile.channel.value,
        "unit": CHANNEL_UNITS[profile.channel].value,
        "interval_minutes": minutes,
        "timezone": profile.tenant.timezone,
        "from": profile.start.astimezone(zone).isoformat(),
        "to": profile.end.astimezone(zone).isoformat(),
        "summary": {
            # Intervals with a value: a final day also lists the ones nothing could fill (null).
            "intervals": sum(1 for r in profile.intervals if r.value is not None),
            "expected_intervals": expected,
            "total": number(sum((r.value for r in profile.intervals if r.value is not None), Decimal(0))),
        },
        "data_versions": [
            {"local_day": day.isoformat(), "version": version}
            for day, version in sorted(profile.versions.items())
        ],
        "intervals": intervals,
    }
