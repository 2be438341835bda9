"""Green Button (ESPI Atom feed) read back by the independent `greenbutton-objects` parser:
interval counts, totals, reading types and `qualityOfReading` equal the final days'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from greenbutton_objects import enums, parse

from hemera.domain.exports import ExportFormat, RenderedFile, render
from hemera.domain.readings import Channel
from tests.export_builders import (
    expected_totals,
    export_request,
    sao_paulo_meter,
    sydney_meter,
    valued_intervals,
)


@pytest.fixture
def feed(tmp_path: Path) -> tuple[list, RenderedFile]:
    rendered = render(export_request(ExportFormat.GREEN_BUTTON))
    path = tmp_path / rendered.name
    path.write_bytes(rendered.content)
    return parse.parse_feed(str(path)), rendered


def _reading(usage_points: list, meter_id: str, uom: enums.UomType):
    (point,) = [p for p in usage_points if p.title == meter_id]
    (meter_reading,) = [m for m in point.meterReadings if m.readingType.uom is uom]
    return point, meter_reading


def test_parser_counts_our_intervals_and_totals_our_energy(feed: tuple[list, RenderedFile]) -> None:
    # Given the Green Button feed of a Sydney meter (active + reactive, 15 min, a 25-hour day)
    # and a São Paulo meter (active, 30 min)
    usage_points, rendered = feed
    sydney, sao_paulo = sydney_meter(), sao_paulo_meter()

    # Then greenbutton-objects finds one electricity UsagePoint per meter
    assert sorted(p.title for p in usage_points) == ["cp-m-2001", "cp-m-2002"]
    assert {p.serviceCategory for p in usage_points} == {enums.ServiceKind.electricity}

    # and per channel as many IntervalReadings as intervals with a value, totalling our energy
    cases = [
        ("cp-m-2001", enums.UomType.wattHours, sydney, Channel.ACTIVE_IMPORT),
        ("cp-m-2001", enums.UomType.voltAmpReactiveHours, sydney, Channel.REACTIVE_IMPORT),
        ("cp-m-2002", enums.UomType.wattHours, sao_paulo, Channel.ACTIVE_IMPORT),
    ]
    for meter_id, uom, meter, channel in cases:
        _, meter_reading = _reading(usage_points, meter_id, uom)
        readings = list(meter_reading.intervalReadings)
        assert len(readings) == valued_intervals([meter], channel)
        expected_kwh = sum((d.total() for d in meter.days if d.channel is channel), Decimal(0))
        assert sum(r.value for r in readings) / 1000 == pytest.approx(float(expected_kwh), abs=1e-9)
    assert rendered.rows == valued_intervals([sydney, sao_paulo])
    assert rendered.totals == expected_totals([sydney, sao_paulo])


def test_reading_types_say_energy_delta_data_and_interval_length(feed: tuple[list, RenderedFile]) -> None:
    usage_points, _ = feed
    _, active = _reading(usage_points, "cp-m-2001", enums.UomType.wattHours)
    _, thirty = _reading(usage_points, "cp-m-2002", enums.UomType.wattHours)

    assert active.readingType.kind is enums.KindType.energy
    assert active.readingType.accumulationBehaviour is enums.AccumulationBehaviourType.deltaData
    assert active.readingType.flowDirection is enums.FlowDirectionType.forward
    assert active.readingType.commodity is enums.CommodityType.electricity
    assert (active.readingType.intervalLength, thirty.readingType.intervalLength) == (900, 1800)


def test_quality_of_reading_comes_from_vee(feed: tuple[list, RenderedFile]) -> None:
    usage_points, _ = feed
    _, active = _reading(usage_points, "cp-m-2001", enums.UomType.wattHours)
    _, reactive = _reading(usage_points, "cp-m-2001", enums.UomType.voltAmpReactiveHours)
    _, sao_paulo = _reading(usage_points, "cp-m-2002", enums.UomType.wattHours)

    def qualities(meter_reading, start_utc: datetime) -> set:
        (reading,) = [r for r in meter_reading.intervalReadings if r.timePeriod.start == start_utc]
        return {q.quality for q in reading.readingQualities}

    # 4 April 02:00 AEDT (15:00 UTC on the 3rd): linear interpolation (VEE method 17)
    assert qualities(active, datetime(2026, 4, 3, 15, 0, tzinfo=UTC)) == {
        enums.QualityOfReading.estimatedUsingLinearInterpolation
    }
    # 6 April 10:00 AEST (00:00 UTC): like-day estimate (method 14)
    assert qualities(active, datetime(2026, 4, 6, 0, 0, tzinfo=UTC)) == {
        enums.QualityOfReading.estimatedUsingReferenceDay
    }
    # 5 April 15:00 in São Paulo (18:00 UTC): an operator's edit
    assert qualities(sao_paulo, datetime(2026, 4, 5, 18, 0, tzinfo=UTC)) == {
        enums.QualityOfReading.manuallyEdited
    }
    assert qualities(active, datetime(2026, 4, 5, 2, 0, tzinfo=UTC)) == {enums.QualityOfReading.valid}
    # The reactive interval VEE could not fill has no reading (ESPI has no null value)
    starts = {r.timePeriod.start for r in reactive.intervalReadings}
    assert datetime(2026, 4, 4, 15, 30, tzinfo=UTC) not in starts
    assert datetime(2026, 4, 4, 15, 15, tzinfo=UTC) in starts


def test_dst_day_is_one_25_hour_interval_block(feed: tuple[list, RenderedFile]) -> None:
    usage_points, _ = feed
    _, active = _reading(usage_points, "cp-m-2001", enums.UomType.wattHours)

    durations = [block.interval.duration for block in active.intervalBlocks]
    assert durations == [timedelta(hours=24), timedelta(hours=25), timedelta(hours=24)]
    assert len(active.intervalBlocks[1].intervalReadings) == 100


def test_fractions_of_a_watt_hour_use_a_power_of_ten_multiplier(tmp_path: Path) -> None:
    # Given a meter whose final values have fractions of a Wh (0.0005 kWh = 0.5 Wh steps)
    from dataclasses import replace

    from tests.export_builders import final_day

    meter = sydney_meter()
    fine = replace(
        meter, days=[final_day(meter.meter_id, Channel.ACTIVE_IMPORT, meter.days[1].local_day, base="0.0005")]
    )
    rendered = render(export_request(ExportFormat.GREEN_BUTTON, [fine]))
    path = tmp_path / "fine.xml"
    path.write_bytes(rendered.content)

    # When the independent parser reads it
    (point,) = parse.parse_feed(str(path))
    (meter_reading,) = point.meterReadings

    # Then it applies the multiplier and finds our total
    assert meter_reading.readingType.powerOfTenMultiplier == -1
    total_wh = sum(r.value for r in meter_reading.intervalReadings)
    assert total_wh / 1000 == pytest.approx(float(fine.days[0].total()), abs=1e-9)
