"""Representations of meter data: the JSON documents of `api_spec/openapi.yaml` and the CSV of a
load profile. Times are written in the tenant's time zone with their UTC offset."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hemera.domain.aggregation import POWER_FACTOR_REACTIVE_CHANNELS, Period
from hemera.domain.readings import CHANNEL_UNITS
from hemera.services.access import LoadProfile
from hemera.services.meter_data import Consumption, Demand, MeterSeries, PowerFactor

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
    for totals in zip(*(result.totals[c] for c in channels), strict=True):
        entry = _period(totals[0].period, zone)
        entry["channels"] = {
            c.value: {"energy": _optional(t.energy), "intervals": t.intervals, "missing": t.missing}
            for c, t in zip(channels, totals, strict=True)
        }
        periods.append(entry)
    return {
        **_header(result.series),
        "granularity": result.granularity.value,
        "units": {c.value: CHANNEL_UNITS[c].value for c in channels},
        "periods": periods,
    }


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
# intervals absent as in JSON. Provenance is the store's: source, VEE status, AEMO quality flag,
# the meter's own status bits and the integer it reported (before scale and CT/VT).
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
)


def load_profile_csv(profile: LoadProfile) -> str:
    zone = profile.tenant.zone
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(LOAD_PROFILE_CSV_COLUMNS)
    for r in profile.intervals:
        writer.writerow(
            (
                profile.meter.id,
                profile.channel.value,
                r.start.astimezone(zone).isoformat(),
                r.end.astimezone(zone).isoformat(),
                format(r.value, "f"),
                r.unit.value,
                r.source.value,
                r.status.value,
                r.quality_flag,
                r.meter_flags,
                "" if r.raw_value is None else r.raw_value,
            )
        )
    return out.getvalue()
