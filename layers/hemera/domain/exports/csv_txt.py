"""CSV export (one row per meter, channel and interval, with its VEE provenance) and its
fixed-width TXT variant for legacy commercial systems.

CSV follows RFC 4180 (comma, CRLF, a header row, quotes only where a field needs them). The TXT
file carries the same intervals in fixed columns, without a header: `TXT_LAYOUT` is its record
layout (README `### Formats` prints it), one space between fields, CRLF line ends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from zoneinfo import ZoneInfo

from hemera.domain.errors import ExportNotRenderable
from hemera.domain.exports.model import (
    ExportRequest,
    RenderedFile,
    add_total,
    days_in_period,
    decimal_text,
    file_stem,
    quantized,
)
from hemera.domain.final_series import FinalDay, FinalInterval

CSV_COLUMNS = (
    "tenant_id",
    "meter_id",
    "meter_serial",
    "customer_id",
    "channel",
    "unit",
    "local_day",
    "interval_start_utc",
    "interval_start_local",
    "interval_minutes",
    "value",
    "raw_value",
    "status",
    "quality_flag",
    "method_flag",
    "reason_code",
    "espi_quality",
    "rule_id",
    "rule_version",
    "day_version",
)

# Decimals of the TXT value fields: a fixed-decimal field rounds (half-even) beyond this.
TXT_DECIMALS = 6


@dataclass(frozen=True)
class TxtField:
    name: str
    width: int
    right_aligned: bool = False


TXT_LAYOUT = (
    TxtField("meter_id", 63),  # every valid meter id (1-63 characters) fits
    TxtField("channel", 16),
    TxtField("unit", 5),
    TxtField("interval_start_utc", 20),
    TxtField("interval_start_local", 25),
    TxtField("interval_minutes", 2, right_aligned=True),
    TxtField("value", 16, right_aligned=True),
    TxtField("raw_value", 16, right_aligned=True),
    TxtField("status", 17),
    TxtField("quality_flag", 1),
    TxtField("method_flag", 2, right_aligned=True),
    TxtField("reason_code", 3, right_aligned=True),
    TxtField("espi_quality", 2, right_aligned=True),
    TxtField("day_version", 5, right_aligned=True),
)
TXT_RECORD_LENGTH = sum(f.width for f in TXT_LAYOUT) + len(TXT_LAYOUT) - 1


def _optional(value: object | None) -> str:
    return "" if value is None else str(value)


def _intervals(
    request: ExportRequest,
) -> Iterator[tuple[str, str | None, str | None, FinalDay, FinalInterval]]:
    for meter in request.meters:
        for day in days_in_period(meter, request):
            for interval in day.intervals:
                yield meter.meter_id, meter.serial, meter.customer_id, day, interval


def render_csv(request: ExportRequest) -> RenderedFile:
    """The CSV export: `CSV_COLUMNS`, one row per meter, channel and interval; an interval that
    is missing and could not be estimated has an empty `value` (quality flag N)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    totals: dict[str, Decimal] = {}
    rows = 0
    for meter_id, serial, customer_id, day, interval in _intervals(request):
        zone = ZoneInfo(day.timezone)
        writer.writerow(
            (
                request.tenant_id,
                meter_id,
                _optional(serial),
                _optional(customer_id),
                day.channel.value,
                day.unit.value,
                day.local_day.isoformat(),
                interval.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                interval.start.astimezone(zone).isoformat(),
                interval.length_minutes,
                "" if interval.value is None else decimal_text(interval.value),
                "" if interval.raw_value is None else decimal_text(interval.raw_value),
                interval.status.value,
                interval.quality_flag.value,
                _optional(interval.method_flag),
                _optional(interval.reason_code),
                interval.espi_quality,
                _optional(interval.rule_id),
                _optional(interval.rule_version),
                day.version,
            )
        )
        add_total(totals, day.channel, interval.value)
        rows += 1
    return RenderedFile(
        name=f"{file_stem(request)}.csv",
        content_type="text/csv; charset=utf-8",
        content=out.getvalue().encode(),
        rows=rows,
        totals=totals,
    )


def _fixed(field: TxtField, text: str, meter_id: str) -> str:
    if len(text) > field.width:
        raise ExportNotRenderable(
            f"meter {meter_id}: {field.name} {text!r} is longer than its {field.width}-character TXT field"
        )
    return text.rjust(field.width) if field.right_aligned else text.ljust(field.width)


def _txt_decimal(value: Decimal | None) -> tuple[str, Decimal | None]:
    if value is None:
        return "", None
    written = quantized(value, TXT_DECIMALS)
    return decimal_text(written), written


def render_txt(request: ExportRequest) -> RenderedFile:
    """The fixed-width TXT export: the CSV's intervals laid out by `TXT_LAYOUT` (values with
    `TXT_DECIMALS` decimals, blank when missing)."""
    lines: list[str] = []
    totals: dict[str, Decimal] = {}
    for meter_id, _serial, _customer, day, interval in _intervals(request):
        zone = ZoneInfo(day.timezone)
        value_text, written = _txt_decimal(interval.value)
        raw_text, _ = _txt_decimal(interval.raw_value)
        values = {
            "meter_id": meter_id,
            "channel": day.channel.value,
            "unit": day.unit.value,
            "interval_start_utc": interval.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "interval_start_local": interval.start.astimezone(zone).isoformat(),
            "interval_minutes": str(interval.length_minutes),
            "value": value_text,
            "raw_value": raw_text,
            "status": interval.status.value,
            "quality_flag": interval.quality_flag.value,
            "method_flag": _optional(interval.method_flag),
            "reason_code": _optional(interval.reason_code),
            "espi_quality": str(interval.espi_quality),
            "day_version": str(day.version),
        }
        lines.append(" ".join(_fixed(f, values[f.name], meter_id) for f in TXT_LAYOUT))
        add_total(totals, day.channel, written)
    return RenderedFile(
        name=f"{file_stem(request)}.txt",
        content_type="text/plain; charset=utf-8",
        content="".join(line + "\r\n" for line in lines).encode(),
        rows=len(lines),
        totals=totals,
    )
