"""Regulatory hourly XML: active kWh and reactive kvarh integrated per clock hour and measurement
point (the CCEE/SCDE-style delivery of free-market and border points).

No public layout exists for that delivery (REFERENCE.md), so the file follows the project's own
schema, `regulatory_hourly.xsd` (namespace `urn:hemera:regulatory:hourly:1`), kept beside this
module and shipped in the layer. Every file is validated against it before it is returned: a
file that does not validate is never handed out (`ExportNotRenderable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import xmlschema

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
from hemera.domain.final_series import FinalInterval, FinalStatus
from hemera.domain.readings import CHANNEL_UNITS, Channel

NAMESPACE = "urn:hemera:regulatory:hourly:1"
SCHEMA_FILE = "regulatory_hourly.xsd"
DECIMALS = 6  # fractionDigits of the schema's Energy type

# Element per channel, in the order an Hour lists them (the XSD's content model).
_ELEMENT: dict[Channel, str] = {
    Channel.ACTIVE_IMPORT: "ActiveImport",
    Channel.ACTIVE_EXPORT: "ActiveExport",
    Channel.REACTIVE_IMPORT: "ReactiveImport",
    Channel.REACTIVE_EXPORT: "ReactiveExport",
}


@cache
def hourly_schema() -> xmlschema.XMLSchema:
    """The regulatory hourly XSD, loaded once per process from the package."""
    source = resources.files("hemera.domain.exports").joinpath(SCHEMA_FILE)
    with resources.as_file(source) as path:
        return xmlschema.XMLSchema(str(path))


@dataclass(frozen=True)
class _Hour:
    """One channel's energy in one clock hour."""

    value: Decimal
    status: str
    intervals: int
    expected: int
    substituted: int
    methods: tuple[int, ...]
    reasons: tuple[int, ...]


def _hour_start(interval: FinalInterval, zone: ZoneInfo) -> datetime:
    """UTC start of the local clock hour the interval starts in."""
    local = interval.start.astimezone(zone)
    return interval.start.astimezone(UTC) - timedelta(minutes=local.minute, seconds=local.second)


def _integrate(intervals: Sequence[FinalInterval], interval_minutes: int) -> _Hour:
    valued = [i for i in intervals if i.value is not None]
    substituted = [i for i in valued if not i.is_actual]
    expected = max(1, 60 // interval_minutes)
    statuses = {i.status for i in intervals}
    if len(valued) < expected:
        status = "incomplete"
    elif FinalStatus.FAILED in statuses:
        status = "suspect"
    elif FinalStatus.EDITED in statuses:
        status = "edited"
    elif FinalStatus.ESTIMATED in statuses:
        status = "estimated"
    else:
        status = "actual"
    not_actual = [i for i in intervals if not i.is_actual]
    return _Hour(
        value=quantized(sum((i.value for i in valued if i.value is not None), Decimal(0)), DECIMALS),
        status=status,
        intervals=len(valued),
        expected=expected,
        substituted=len(substituted),
        methods=tuple(sorted({i.method_flag for i in not_actual if i.method_flag is not None})),
        reasons=tuple(sorted({i.reason_code for i in not_actual if i.reason_code is not None})),
    )


def _energy(parent: ET.Element, channel: Channel, value: Decimal, unit: str) -> ET.Element:
    element = ET.SubElement(parent, _ELEMENT[channel], unit=unit)
    element.text = decimal_text(value)
    return element


def render_regulatory_xml(request: ExportRequest) -> RenderedFile:
    """The regulatory hourly XML of the request, validated against `regulatory_hourly.xsd`."""
    root = ET.Element(
        "HourlyEnergyDelivery",
        # Elements are named as written, in the default namespace declared here, so serialisation
        # never depends on ElementTree's global prefix map.
        xmlns=NAMESPACE,
        schemaVersion="1",
        tenant=request.tenant_id,
        tenantName=request.tenant_name,
        fileVersion=str(request.version),
        createdAt=request.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        periodStart=request.period_start.isoformat(),
        periodEnd=request.period_end.isoformat(),
    )
    totals: dict[str, Decimal] = {}
    hours_written = 0
    channel_order = list(Channel)
    for meter in request.meters:
        zone = ZoneInfo(meter.timezone)
        point = ET.SubElement(root, "MeasurementPoint", id=meter.meter_id)
        if meter.serial:
            point.set("serial", meter.serial)
        if meter.customer_id:
            point.set("customer", meter.customer_id)
        point.set("timezone", meter.timezone)

        by_hour: dict[datetime, dict[Channel, list[FinalInterval]]] = {}
        for day in days_in_period(meter, request):
            for interval in day.intervals:
                by_hour.setdefault(_hour_start(interval, zone), {}).setdefault(day.channel, []).append(
                    interval
                )
        point_totals: dict[Channel, Decimal] = {}
        for start in sorted(by_hour):
            hour = ET.SubElement(point, "Hour", start=start.astimezone(zone).isoformat())
            for channel in sorted(by_hour[start], key=channel_order.index):
                intervals = by_hour[start][channel]
                energy = _integrate(intervals, intervals[0].length_minutes)
                element = _energy(hour, channel, energy.value, _unit(channel))
                element.set("status", energy.status)
                element.set("intervals", str(energy.intervals))
                element.set("expected", str(energy.expected))
                element.set("substituted", str(energy.substituted))
                if energy.methods:
                    element.set("methods", " ".join(map(str, energy.methods)))
                if energy.reasons:
                    element.set("reasons", " ".join(map(str, energy.reasons)))
                point_totals[channel] = point_totals.get(channel, Decimal(0)) + energy.value
                add_total(totals, channel, energy.value)
            hours_written += 1
        summary = ET.SubElement(point, "Totals")
        for channel in sorted(point_totals, key=channel_order.index):
            _energy(summary, channel, point_totals[channel], _unit(channel))

    ET.indent(root)
    content = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    _validate(content)
    return RenderedFile(
        name=f"{file_stem(request)}_regulatory_hourly.xml",
        content_type="application/xml",
        content=content,
        rows=hours_written,
        totals=totals,
    )


def _unit(channel: Channel) -> str:
    return CHANNEL_UNITS[channel].value


def _validate(content: bytes) -> None:
    error = next(hourly_schema().iter_errors(content.decode()), None)
    if error is not None:
        raise ExportNotRenderable(
            f"regulatory hourly XML fails {SCHEMA_FILE}: {error.reason} at {error.path}"
        )
