"""Green Button "Download My Data": an Atom feed of NAESB REQ.21 ESPI resources.

Per meter one UsagePoint (electricity); per channel and interval length one MeterReading with
its ReadingType (energy, delta data, Wh or VArh with a power-of-ten multiplier, forward for
import and reverse for export channels); per tenant-local day one IntervalBlock whose
IntervalReadings carry the final value and a ReadingQuality with the interval's ESPI
`qualityOfReading` from VEE. ESPI times are UTC epoch seconds, so DST days need nothing special
(an IntervalBlock simply lasts 23 or 25 hours).

Resources are linked the ESPI way (`self`, `up`, `related` hrefs under `/espi/1_1/resource/`):
a UsagePoint's `related` names its MeterReading collection, a MeterReading's `related` names its
ReadingType and its IntervalBlock collection. An interval that is missing and could not be
estimated (no value) has no IntervalReading: ESPI has no null reading.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from xml.etree import ElementTree as ET

from hemera.domain.exports.model import (
    ExportRequest,
    RenderedFile,
    add_total,
    days_in_period,
    file_stem,
)
from hemera.domain.final_series import FinalDay
from hemera.domain.readings import Channel, Unit

ATOM_NS = "http://www.w3.org/2005/Atom"
ESPI_NS = "http://naesb.org/espi"
RESOURCE_ROOT = "/espi/1_1/resource"

# ESPI enumerations (NAESB REQ.21 espi.xsd).
_ACCUMULATION_DELTA_DATA = 4
_COMMODITY_ELECTRICITY_SECONDARY_METERED = 1
_DATA_QUALIFIER_NORMAL = 12
_FLOW_FORWARD, _FLOW_REVERSE = 1, 19
_KIND_ENERGY = 12
_SERVICE_KIND_ELECTRICITY = 0
_UOM = {Unit.KWH: 72, Unit.KVARH: 73}  # Wh, VArh
_FLOW = {
    Channel.ACTIVE_IMPORT: _FLOW_FORWARD,
    Channel.ACTIVE_EXPORT: _FLOW_REVERSE,
    Channel.REACTIVE_IMPORT: _FLOW_FORWARD,
    Channel.REACTIVE_EXPORT: _FLOW_REVERSE,
}
# powerOfTenMultiplier values tried, coarsest first (UnitMultiplierKind allows 0, -1, -2, -3, …).
_MULTIPLIERS = (0, -1, -2, -3)


# Elements are named as they are written (Atom the default namespace, ESPI prefixed `espi:`,
# both declared on the feed), so serialisation never depends on ElementTree's global prefix map.
def _espi(tag: str) -> str:
    return f"espi:{tag}"


def _text(parent: ET.Element, tag: str, text: object) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = str(text)
    return element


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry(
    feed: ET.Element,
    *,
    entry_id: str,
    title: str,
    self_href: str,
    up_href: str,
    related: Sequence[str],
    updated: str,
) -> ET.Element:
    """An Atom entry with its ESPI links; returns its `content` element."""
    entry = ET.SubElement(feed, "entry")
    _text(entry, "id", entry_id)
    ET.SubElement(entry, "link", rel="self", href=self_href)
    ET.SubElement(entry, "link", rel="up", href=up_href)
    for href in related:
        ET.SubElement(entry, "link", rel="related", href=href)
    _text(entry, "title", title)
    _text(entry, "published", updated)
    _text(entry, "updated", updated)
    return ET.SubElement(entry, "content")


def _multiplier(days: Sequence[FinalDay]) -> int:
    """The coarsest power of ten that carries every value of `days` in whole Wh/VArh units."""
    values = [i.value * 1000 for d in days for i in d.intervals if i.value is not None]
    for power in _MULTIPLIERS:
        if all(v.scaleb(-power) == v.scaleb(-power).to_integral_value() for v in values):
            return power
    return _MULTIPLIERS[-1]


def _integer(value_kwh: Decimal, power: int) -> int:
    """ESPI integer of a kWh/kvarh value at `power` (value = integer x 10^power Wh)."""
    return int((value_kwh * 1000).scaleb(-power).to_integral_value())


def render_green_button(request: ExportRequest) -> RenderedFile:
    """The Green Button ESPI Atom feed of the request (see the module docstring)."""
    updated = _timestamp(request.created_at)
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"hemera:{request.tenant_id}:{file_stem(request)}")
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xmlns:espi": ESPI_NS})
    _text(feed, "id", f"urn:uuid:{namespace}")
    _text(
        feed, "title", f"{request.tenant_name} Green Button data {request.period_start}..{request.period_end}"
    )
    _text(feed, "updated", updated)
    totals: dict[str, Decimal] = {}
    readings = 0

    def entry_id(href: str) -> str:
        return f"urn:uuid:{uuid.uuid5(namespace, href)}"

    for point_index, meter in enumerate(request.meters, start=1):
        point = f"{RESOURCE_ROOT}/Subscription/{request.tenant_id}/UsagePoint/{point_index}"
        days = days_in_period(meter, request)
        content = _entry(
            feed,
            entry_id=entry_id(point),
            title=meter.meter_id,
            self_href=point,
            up_href=f"{RESOURCE_ROOT}/Subscription/{request.tenant_id}/UsagePoint",
            related=[f"{point}/MeterReading"],
            updated=updated,
        )
        usage_point = ET.SubElement(content, _espi("UsagePoint"))
        category = ET.SubElement(usage_point, _espi("ServiceCategory"))
        _text(category, _espi("kind"), _SERVICE_KIND_ELECTRICITY)

        groups: dict[tuple[Channel, int], list[FinalDay]] = {}
        for day in days:
            groups.setdefault((day.channel, day.interval_minutes), []).append(day)
        for reading_index, ((channel, minutes), group) in enumerate(groups.items(), start=1):
            meter_reading = f"{point}/MeterReading/{reading_index}"
            reading_type = f"{RESOURCE_ROOT}/ReadingType/{point_index}-{reading_index}"
            blocks = f"{meter_reading}/IntervalBlock"
            content = _entry(
                feed,
                entry_id=entry_id(meter_reading),
                title=f"{meter.meter_id} {channel.value} {minutes}-minute",
                self_href=meter_reading,
                up_href=f"{point}/MeterReading",
                related=[blocks, reading_type],
                updated=updated,
            )
            ET.SubElement(content, _espi("MeterReading"))

            power = _multiplier(group)
            content = _entry(
                feed,
                entry_id=entry_id(reading_type),
                title=f"{channel.value} {group[0].unit.value}",
                self_href=reading_type,
                up_href=f"{RESOURCE_ROOT}/ReadingType",
                related=[],
                updated=updated,
            )
            # Child order follows the ReadingType sequence of espi.xsd.
            rt = ET.SubElement(content, _espi("ReadingType"))
            _text(rt, _espi("accumulationBehaviour"), _ACCUMULATION_DELTA_DATA)
            _text(rt, _espi("commodity"), _COMMODITY_ELECTRICITY_SECONDARY_METERED)
            _text(rt, _espi("dataQualifier"), _DATA_QUALIFIER_NORMAL)
            _text(rt, _espi("flowDirection"), _FLOW[channel])
            _text(rt, _espi("intervalLength"), minutes * 60)
            _text(rt, _espi("kind"), _KIND_ENERGY)
            _text(rt, _espi("powerOfTenMultiplier"), power)
            _text(rt, _espi("uom"), _UOM[group[0].unit])

            for day in group:
                if not day.intervals:
                    continue
                block = f"{blocks}/{day.local_day:%Y%m%d}"
                content = _entry(
                    feed,
                    entry_id=entry_id(block),
                    title=f"{meter.meter_id} {channel.value} {day.local_day}",
                    self_href=block,
                    up_href=blocks,
                    related=[],
                    updated=updated,
                )
                interval_block = ET.SubElement(content, _espi("IntervalBlock"))
                span = ET.SubElement(interval_block, _espi("interval"))
                first, last = day.intervals[0], day.intervals[-1]
                _text(span, _espi("duration"), int((last.end - first.start).total_seconds()))
                _text(span, _espi("start"), int(first.start.timestamp()))
                for interval in day.intervals:
                    if interval.value is None:
                        continue
                    reading = ET.SubElement(interval_block, _espi("IntervalReading"))
                    quality = ET.SubElement(reading, _espi("ReadingQuality"))
                    _text(quality, _espi("quality"), interval.espi_quality)
                    period = ET.SubElement(reading, _espi("timePeriod"))
                    _text(period, _espi("duration"), interval.length_minutes * 60)
                    _text(period, _espi("start"), int(interval.start.timestamp()))
                    integer = _integer(interval.value, power)
                    _text(reading, _espi("value"), integer)
                    add_total(totals, channel, Decimal(integer).scaleb(power - 3))
                    readings += 1

    ET.indent(feed)
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return RenderedFile(
        name=f"{file_stem(request)}_green_button.xml",
        content_type="application/atom+xml",
        content=body,
        rows=readings,
        totals=totals,
    )
