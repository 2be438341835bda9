"""CSV read back with the standard library's `csv` reader and the fixed-width TXT sliced by its
documented record layout (README `### Formats`), as the legacy system would."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from hemera.domain.errors import ExportNotRenderable
from hemera.domain.exports import ExportFormat, render
from tests.export_builders import expected_totals, export_request, sao_paulo_meter, sydney_meter

DOCUMENTED_COLUMNS = [
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
]

# The TXT record layout as README documents it: (field, first column, last column), 1-based.
DOCUMENTED_TXT_LAYOUT = [
    ("meter_id", 1, 63),
    ("channel", 65, 80),
    ("unit", 82, 86),
    ("interval_start_utc", 88, 107),
    ("interval_start_local", 109, 133),
    ("interval_minutes", 135, 136),
    ("value", 138, 153),
    ("raw_value", 155, 170),
    ("status", 172, 188),
    ("quality_flag", 190, 190),
    ("method_flag", 192, 193),
    ("reason_code", 195, 197),
    ("espi_quality", 199, 200),
    ("day_version", 202, 206),
]
TXT_RECORD_LENGTH = 206
ALL_INTERVALS = 2 * (96 + 100 + 96) + (48 + 48 + 48)


def _csv_rows() -> list[dict[str, str]]:
    content = render(export_request(ExportFormat.CSV)).content.decode()
    reader = csv.DictReader(io.StringIO(content, newline=""))
    assert reader.fieldnames == DOCUMENTED_COLUMNS
    return list(reader)


def test_csv_has_one_row_per_meter_channel_interval_and_our_totals() -> None:
    rows = _csv_rows()
    rendered = render(export_request(ExportFormat.CSV))

    assert len(rows) == rendered.rows == ALL_INTERVALS
    dst_day = [
        r
        for r in rows
        if (r["meter_id"], r["channel"], r["local_day"]) == ("cp-m-2001", "active_import", "2026-04-05")
    ]
    assert len(dst_day) == 100
    totals: dict[str, Decimal] = {}
    for row in rows:
        key = f"{row['channel']}_{row['unit']}"
        totals[key] = totals.get(key, Decimal(0)) + Decimal(row["value"] or "0")
    assert totals == expected_totals([sydney_meter(), sao_paulo_meter()]) == rendered.totals


def test_csv_rows_carry_the_vee_flags() -> None:
    rows = {(r["meter_id"], r["channel"], r["interval_start_local"]): r for r in _csv_rows()}

    linear = rows[("cp-m-2001", "active_import", "2026-04-04T02:00:00+11:00")]
    assert {
        k: linear[k] for k in ("status", "quality_flag", "method_flag", "reason_code", "espi_quality")
    } == {
        "status": "estimated",
        "quality_flag": "S",
        "method_flag": "17",
        "reason_code": "76",
        "espi_quality": "9",
    }
    assert (linear["value"], linear["raw_value"], linear["interval_start_utc"]) == (
        "0.1875",
        "0.125",
        "2026-04-03T15:00:00Z",
    )
    missing = rows[("cp-m-2001", "reactive_import", "2026-04-05T02:30:00+11:00")]
    assert (missing["value"], missing["quality_flag"], missing["status"]) == ("", "N", "validation_failed")
    edited = rows[("cp-m-2002", "active_import", "2026-04-05T15:00:00-03:00")]
    assert (edited["quality_flag"], edited["method_flag"], edited["espi_quality"], edited["day_version"]) == (
        "F",
        "14",
        "7",
        "2",
    )
    # the repeated 02:00 of the DST day is two distinct rows
    assert ("cp-m-2001", "active_import", "2026-04-05T02:00:00+10:00") in rows


def _txt_records() -> list[dict[str, str]]:
    content = render(export_request(ExportFormat.TXT)).content.decode()
    assert content.endswith("\r\n")
    lines = content.split("\r\n")[:-1]
    assert {len(line) for line in lines} == {TXT_RECORD_LENGTH}
    return [
        {name: line[first - 1 : last].strip() for name, first, last in DOCUMENTED_TXT_LAYOUT}
        for line in lines
    ]


def test_txt_fixed_width_records_read_back_by_position() -> None:
    records = _txt_records()
    rendered = render(export_request(ExportFormat.TXT))

    assert len(records) == rendered.rows == ALL_INTERVALS
    totals: dict[str, Decimal] = {}
    for record in records:
        key = f"{record['channel']}_{record['unit']}"
        totals[key] = totals.get(key, Decimal(0)) + Decimal(record["value"] or "0")
    assert totals == expected_totals([sydney_meter(), sao_paulo_meter()]) == rendered.totals
    like_day = next(
        r
        for r in records
        if (r["meter_id"], r["interval_start_local"]) == ("cp-m-2001", "2026-04-06T10:00:00+10:00")
    )
    assert (
        like_day["quality_flag"],
        like_day["method_flag"],
        like_day["reason_code"],
        like_day["value"],
    ) == (
        "S",
        "14",
        "43",
        "0.187500",
    )


def test_the_longest_meter_id_fits_and_a_longer_field_is_refused_not_truncated() -> None:
    from dataclasses import replace

    longest = replace(sao_paulo_meter(), meter_id="m" * 63)  # the longest valid meter id
    records = render(export_request(ExportFormat.TXT, [longest])).content.decode().split("\r\n")
    assert records[0][:63] == "m" * 63 and len(records[0]) == TXT_RECORD_LENGTH

    too_long = replace(sao_paulo_meter(), meter_id="m" * 64)
    with pytest.raises(ExportNotRenderable):
        render(export_request(ExportFormat.TXT, [too_long]))


def test_days_outside_the_period_are_not_exported() -> None:
    rendered = render(
        export_request(
            ExportFormat.CSV,
            period_start=sydney_meter().days[1].local_day,
            period_end=sydney_meter().days[1].local_day,
        )
    )
    assert rendered.rows == 100 + 100 + 48
    assert rendered.name == "acme_20260405_20260405_v1.csv"
