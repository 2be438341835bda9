"""Regulatory hourly XML: every file validates against the project's XSD (checked here with
`xmlschema` loading the XSD from the repo, not through the renderer), hours integrate the final
intervals, and files that break the schema are refused."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import xmlschema

from hemera.domain.errors import ExportNotRenderable
from hemera.domain.exports import ExportFormat, render
from hemera.domain.readings import Channel
from tests.export_builders import (
    LINEAR_COMMS_FAULT,
    expected_totals,
    export_request,
    final_day,
    interval_value,
    sao_paulo_meter,
    sydney_meter,
)

XSD = Path(__file__).parents[3] / "layers" / "hemera" / "domain" / "exports" / "regulatory_hourly.xsd"
NS = {"h": "urn:hemera:regulatory:hourly:1"}


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


@pytest.fixture(scope="module")
def delivery() -> bytes:
    return render(export_request(ExportFormat.REGULATORY_XML)).content


def _point(root: ET.Element, meter_id: str) -> ET.Element:
    (point,) = [p for p in root.findall("h:MeasurementPoint", NS) if p.get("id") == meter_id]
    return point


def test_file_validates_against_the_xsd_in_the_repo(schema: xmlschema.XMLSchema, delivery: bytes) -> None:
    schema.validate(delivery.decode())
    assert schema.is_valid(delivery.decode())


def test_hours_follow_the_local_clock_through_the_dst_change(delivery: bytes) -> None:
    root = ET.fromstring(delivery)
    sydney = _point(root, "cp-m-2001")
    starts = [h.get("start") for h in sydney.findall("h:Hour", NS)]

    # 24 + 25 + 24 hours; the repeated 02:00 of 5 April appears with both offsets
    assert len(starts) == 73
    assert "2026-04-05T02:00:00+11:00" in starts and "2026-04-05T02:00:00+10:00" in starts
    assert (starts[0], starts[-1]) == ("2026-04-04T00:00:00+11:00", "2026-04-06T23:00:00+10:00")
    assert len(_point(root, "cp-m-2002").findall("h:Hour", NS)) == 72


def test_an_hour_is_the_sum_of_its_intervals_with_the_correction_method(delivery: bytes) -> None:
    root = ET.fromstring(delivery)
    sydney = _point(root, "cp-m-2001")
    hour = sydney.find("h:Hour[@start='2026-04-04T02:00:00+11:00']", NS)
    assert hour is not None
    active = hour.find("h:ActiveImport", NS)
    reactive = hour.find("h:ReactiveImport", NS)
    assert active is not None and reactive is not None

    # Intervals 8-11 of the day were estimated linearly (substitute = meter value x 1.5)
    expected = sum(interval_value(i, Decimal("0.125")) * Decimal("1.5") for i in range(8, 12))
    assert Decimal(active.text or "") == expected
    assert active.attrib | {} == {
        "unit": "kWh",
        "status": "estimated",
        "intervals": "4",
        "expected": "4",
        "substituted": "4",
        "methods": "17",
        "reasons": "76",
    }
    assert reactive.get("status") == "actual" and reactive.get("unit") == "kvarh"


def test_an_hour_with_a_missing_interval_is_incomplete(delivery: bytes) -> None:
    root = ET.fromstring(delivery)
    hour = _point(root, "cp-m-2001").find("h:Hour[@start='2026-04-05T02:00:00+11:00']", NS)
    assert hour is not None
    reactive = hour.find("h:ReactiveImport", NS)
    assert reactive is not None
    assert (reactive.get("status"), reactive.get("intervals"), reactive.get("reasons")) == (
        "incomplete",
        "3",
        "76",
    )


def test_totals_equal_the_final_days(delivery: bytes) -> None:
    root = ET.fromstring(delivery)
    rendered = render(export_request(ExportFormat.REGULATORY_XML))
    expected = expected_totals([sydney_meter(), sao_paulo_meter()])
    file_totals: dict[str, Decimal] = {}
    # The file's own names: ActiveImport -> active_import, with the element's unit
    for point in root.findall("h:MeasurementPoint", NS):
        hours = point.findall("h:Hour/*", NS)
        for total in point.findall("h:Totals/*", NS):
            same = [h for h in hours if h.tag == total.tag]
            assert Decimal(total.text or "") == sum(Decimal(h.text or "") for h in same)
            name = re.sub(r"(?<!^)([A-Z])", r"_\1", total.tag.split("}")[1]).lower()
            key = f"{name}_{total.get('unit')}"
            file_totals[key] = file_totals.get(key, Decimal(0)) + Decimal(total.text or "")
    assert file_totals == expected == rendered.totals
    assert rendered.rows == 73 + 72


TAMPERINGS = {
    "negative energy": (r">1\.250000<", ">-1.250000<"),
    "hour without UTC offset": (r'start="2026-04-04T00:00:00\+11:00"', 'start="2026-04-04T00:00:00"'),
    "repeated hour": (r'start="2026-04-04T01:00:00\+11:00"', 'start="2026-04-04T00:00:00+11:00"'),
    "unknown status": (r'status="estimated"', 'status="guessed"'),
    "wrong unit": (r'unit="kvarh"', 'unit="kWh"'),
    "more than six decimals": (r">1\.250000<", ">1.2500001<"),
    "method flag out of range": (r'methods="17"', 'methods="7"'),
    "channel twice in an hour": (r"(<ActiveImport [^>]*>[^<]*</ActiveImport>)", r"\1\1"),
    "hour with no energy": (
        r"(<Hour [^>]*>)\s*<ActiveImport[^>]*>[^<]*</ActiveImport>\s*<ReactiveImport[^>]*>[^<]*</ReactiveImport>",
        r"\1",
    ),
}


@pytest.mark.parametrize("tampering", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_tampered_file_fails_the_xsd(
    schema: xmlschema.XMLSchema, delivery: bytes, tampering: tuple[str, str]
) -> None:
    pattern, replacement = tampering
    tampered, count = re.subn(pattern, replacement, delivery.decode(), count=1)
    assert count == 1  # the tampering applied

    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema.validate(tampered)


def test_the_renderer_refuses_a_file_its_xsd_rejects() -> None:
    # Given a meter whose final data has a negative hour (the schema's energy is never negative)
    meter = sao_paulo_meter()
    day = final_day(
        meter.meter_id, Channel.ACTIVE_IMPORT, date(2026, 4, 5), timezone=meter.timezone, interval_minutes=30
    )
    broken = replace(day, intervals=(replace(day.intervals[0], value=Decimal("-5")), *day.intervals[1:]))

    # Then no file is returned
    with pytest.raises(ExportNotRenderable, match=r"regulatory_hourly\.xsd"):
        render(export_request(ExportFormat.REGULATORY_XML, [replace(meter, days=[broken])]))


def test_substituted_hours_list_every_method_and_reason() -> None:
    meter = sydney_meter()
    from tests.export_builders import LIKE_DAY_OUTAGE

    day = final_day(
        meter.meter_id,
        Channel.ACTIVE_IMPORT,
        date(2026, 4, 6),
        substituted={4: LINEAR_COMMS_FAULT, 5: LIKE_DAY_OUTAGE},
    )
    root = ET.fromstring(
        render(export_request(ExportFormat.REGULATORY_XML, [replace(meter, days=[day])])).content
    )
    active = root.find("h:MeasurementPoint/h:Hour[@start='2026-04-06T01:00:00+10:00']/h:ActiveImport", NS)
    assert active is not None
    assert (active.get("methods"), active.get("reasons"), active.get("substituted")) == (
        "14 17",
        "43 76",
        "2",
    )
