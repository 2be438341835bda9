"""NEM12 read back by two independent readers: `nemreader` (strict mode) and
`aemo-mdff-reader` (MDFF v2.6 parser and structural validator). Their totals, interval counts,
quality/method/reason fields, NMIs and serials must be what the final days and the registry
say; a meter without an NMI is left out and listed as skipped, never given a made-up NMI."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import aemo_mdff_reader
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nemreader import NEMFile

from hemera.domain.errors import ExportNotRenderable
from hemera.domain.exports import ExportFormat, MeterExportData, RenderedFile, SkippedMeter, render
from hemera.domain.exports.nem12 import standard_offset
from hemera.domain.readings import Channel
from tests.export_builders import (
    FALL_BACK_DAY,
    LINEAR_COMMS_FAULT,
    SAO_PAULO,
    export_request,
    final_day,
    sao_paulo_meter,
    sydney_meter,
)

# Real-shaped NMIs as the registry holds them (10 characters; AEMO worked examples of the NMI
# procedure, checksums 5 and 3).
SYDNEY_NMI = "NCCC519495"
SAO_PAULO_NMI = "QAAAVZZZZZ"


def _day_total(meter_days, channel: Channel) -> Decimal:
    return sum((d.total() for d in meter_days if d.channel is channel), Decimal(0))


@pytest.fixture
def nem12(tmp_path: Path) -> tuple[Path, RenderedFile]:
    meters = [sydney_meter(nmi=SYDNEY_NMI), sao_paulo_meter(nmi=SAO_PAULO_NMI)]
    rendered = render(export_request(ExportFormat.NEM12, meters))
    path = tmp_path / rendered.name
    path.write_bytes(rendered.content)
    return path, rendered


def expected_by_stream() -> dict[tuple[str, str], Decimal]:
    sydney, sao_paulo = sydney_meter(), sao_paulo_meter()
    return {
        (SYDNEY_NMI, "E1"): _day_total(sydney.days, Channel.ACTIVE_IMPORT),
        (SYDNEY_NMI, "Q1"): _day_total(sydney.days, Channel.REACTIVE_IMPORT),
        (SAO_PAULO_NMI, "E1"): _day_total(sao_paulo.days, Channel.ACTIVE_IMPORT),
    }


def test_nemreader_strict_reads_our_totals_and_full_nem12_days(nem12: tuple[Path, RenderedFile]) -> None:
    # Given a NEM12 of a 15-minute Sydney meter (two channels, the 25-hour DST day) and a
    # 30-minute São Paulo meter, both with their registered NMI
    path, rendered = nem12

    # When nemreader reads it in strict mode
    data = NEMFile(str(path), strict=True).nem_data()

    # Then the header is ours, and every stream's total equals the final days' total
    assert (data.header.version_header, data.header.from_participant, data.header.to_participant) == (
        "NEM12",
        "HEMERA",
        "ACMERETAIL",
    )
    for (nmi, suffix), expected in expected_by_stream().items():
        readings = data.readings[nmi][suffix]
        assert sum(r.read_value or 0 for r in readings) == pytest.approx(float(expected), abs=1e-9)
    # Sydney's local days 4-6 April (AEDT +11 until the 5th) span NEM-time (+10) days 3-6:
    # four full 96-interval days; São Paulo (no DST) three 48-interval days.
    assert len(data.readings[SYDNEY_NMI]["E1"]) == 4 * 96
    assert len(data.readings[SYDNEY_NMI]["Q1"]) == 4 * 96
    assert len(data.readings[SAO_PAULO_NMI]["E1"]) == 3 * 48
    assert rendered.rows == 4 + 4 + 3
    # The registry's NMIs and serial are the file's identities; nothing was left out
    assert set(data.readings) == {SYDNEY_NMI, SAO_PAULO_NMI}
    assert {r.meter_serial_number for r in data.readings[SYDNEY_NMI]["E1"]} == {"SN2001"}
    assert {r.meter_serial_number for r in data.readings[SAO_PAULO_NMI]["E1"]} == {""}
    assert rendered.skipped == ()


def test_nemreader_reads_quality_method_and_reason_from_vee(nem12: tuple[Path, RenderedFile]) -> None:
    path, _ = nem12
    data = NEMFile(str(path), strict=True).nem_data()
    by_start = {
        (nmi, suffix, r.t_start): r
        for nmi, streams in data.readings.items()
        for suffix, readings in streams.items()
        for r in readings
    }
    # Local 02:00 AEDT on the 4th is 01:00 NEM time: linear estimate, communications fault.
    linear = by_start[(SYDNEY_NMI, "E1", datetime(2026, 4, 4, 1, 0))]
    assert (linear.quality_method, linear.event_code) == ("S17", "76")
    assert linear.read_value == pytest.approx(0.125 * 1 * 1.5)  # interval 8 of the day: base x 1 x 1.5
    like_day = by_start[(SYDNEY_NMI, "E1", datetime(2026, 4, 6, 10, 45))]
    assert (like_day.quality_method, like_day.event_code) == ("S14", "43")
    edited = by_start[(SAO_PAULO_NMI, "E1", datetime(2026, 4, 5, 15, 30))]
    assert (edited.quality_method, edited.event_code) == ("F14", "24")
    actual = by_start[(SYDNEY_NMI, "E1", datetime(2026, 4, 5, 12, 0))]
    assert (actual.quality_method, actual.event_code) == ("A", "")
    # The reactive interval VEE could not fill (5 April, local 02:30 AEDT = 01:30 NEM time).
    missing = by_start[(SYDNEY_NMI, "Q1", datetime(2026, 4, 5, 1, 30))]
    assert (missing.quality_method, missing.event_code, missing.read_value) == ("N", "76", 0.0)
    # NEM time 3 April 23:00 is local midnight of the 4th: the first exported interval.
    assert by_start[(SYDNEY_NMI, "E1", datetime(2026, 4, 3, 23, 0))].quality_method == "A"
    padding = by_start[(SYDNEY_NMI, "E1", datetime(2026, 4, 3, 22, 45))]
    assert (padding.quality_method, padding.event_code, padding.read_value) == ("N", "78", 0.0)


def test_aemo_mdff_reader_validates_and_totals(nem12: tuple[Path, RenderedFile]) -> None:
    path, rendered = nem12

    assert aemo_mdff_reader.validate_file(str(path)) == []
    header = aemo_mdff_reader.parse_header(str(path))
    assert header is not None and header.version == "NEM12"
    totals: dict[tuple[str, str], float] = defaultdict(float)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    lengths: dict[tuple[str, str], int] = {}
    for reading in aemo_mdff_reader.parse(str(path)):
        key = (reading.nmi, reading.nmi_suffix)
        totals[key] += reading.value
        counts[key] += 1
        lengths[key] = reading.interval_length
    for key, expected in expected_by_stream().items():
        assert totals[key] == pytest.approx(float(expected), abs=1e-9)
    assert counts == {(SYDNEY_NMI, "E1"): 384, (SYDNEY_NMI, "Q1"): 384, (SAO_PAULO_NMI, "E1"): 144}
    assert lengths == {(SYDNEY_NMI, "E1"): 15, (SYDNEY_NMI, "Q1"): 15, (SAO_PAULO_NMI, "E1"): 30}
    # Our manifest totals are the readers' totals.
    assert float(rendered.totals["active_import_kWh"]) == pytest.approx(
        totals[(SYDNEY_NMI, "E1")] + totals[(SAO_PAULO_NMI, "E1")], abs=1e-9
    )
    assert float(rendered.totals["reactive_import_kvarh"]) == pytest.approx(
        totals[(SYDNEY_NMI, "Q1")], abs=1e-9
    )


def test_aemo_mdff_reader_reads_400_events_of_variable_days(nem12: tuple[Path, RenderedFile]) -> None:
    path, _ = nem12
    events = [
        (e.nmi, e.interval_date.date(), e.start_interval, e.end_interval, e.quality_method, e.reason_code)
        for e in aemo_mdff_reader.parse_events(str(path))
    ]
    assert (SYDNEY_NMI, date(2026, 4, 4), 5, 8, "S17", 76) in events
    assert (SYDNEY_NMI, date(2026, 4, 6), 41, 44, "S14", 43) in events
    assert (SAO_PAULO_NMI, date(2026, 4, 5), 31, 32, "F14", 24) in events
    # A day whose intervals are all actual has no 400 records: its 300 record says A.
    assert not [e for e in events if e[:2] == (SAO_PAULO_NMI, date(2026, 4, 4))]
    for reading in aemo_mdff_reader.parse(str(path)):
        if reading.interval_date.date() == date(2026, 4, 4) and reading.nmi == SAO_PAULO_NMI:
            assert reading.quality_method == "A"


def test_a_meter_without_an_nmi_is_left_out_and_listed_as_skipped(tmp_path: Path) -> None:
    # Given a NEM12 export of the Sydney meter (NMI registered) and the São Paulo one (none)
    rendered = render(export_request(ExportFormat.NEM12, [sydney_meter(nmi=SYDNEY_NMI), sao_paulo_meter()]))
    path = tmp_path / rendered.name
    path.write_bytes(rendered.content)

    # When both independent readers read it
    data = NEMFile(str(path), strict=True).nem_data()
    mdff_nmis = {r.nmi for r in aemo_mdff_reader.parse(str(path))}

    # Then only the Sydney NMI is in the file (no stand-in for the other), the meter left out is
    # listed with the reason, and the totals are the Sydney meter's alone
    assert set(data.readings) == mdff_nmis == {SYDNEY_NMI}
    assert aemo_mdff_reader.validate_file(str(path)) == []
    assert rendered.skipped == (SkippedMeter("cp-m-2002", "no_nmi"),)
    assert rendered.totals["active_import_kWh"] == _day_total(sydney_meter().days, Channel.ACTIVE_IMPORT)
    assert rendered.rows == 4 + 4


def test_meters_sharing_an_nmi_are_all_left_out(tmp_path: Path) -> None:
    # Given two meters registered with the same NMI (which meter the data is of is unknown)
    meters = [sydney_meter(nmi=SYDNEY_NMI), sao_paulo_meter(nmi=SYDNEY_NMI)]
    # When NEM12 is rendered
    rendered = render(export_request(ExportFormat.NEM12, meters))
    # Then neither is written under it, and both are listed as skipped
    assert b"\r\n200," not in rendered.content and rendered.rows == 0
    assert rendered.skipped == (
        SkippedMeter("cp-m-2001", "duplicate_nmi"),
        SkippedMeter("cp-m-2002", "duplicate_nmi"),
    )


def test_a_part_of_an_export_is_a_whole_nem12_file_named_for_its_part(tmp_path: Path) -> None:
    # Given part 2 of a version in parts: the Sydney meter, whose NMI no other part carries, and
    # the São Paulo meter, whose NMI a meter of another part also has
    request = replace(
        export_request(
            ExportFormat.NEM12, [sydney_meter(nmi=SYDNEY_NMI), sao_paulo_meter(nmi=SAO_PAULO_NMI)]
        ),
        part=2,
        other_nmis=frozenset({SAO_PAULO_NMI}),
    )
    # When it is rendered
    rendered = render(request)
    path = tmp_path / rendered.name.replace("#", "_")
    path.write_bytes(rendered.content)
    # Then its name carries the part (two parts never share a name) and both readers read it
    # whole: 100 to 900, the Sydney meter only; the shared NMI is left out as a duplicate
    assert rendered.name == "NEM12#ACME2026040420260406V1P0002#HEMERA#ACMERETAIL.csv"
    assert set(NEMFile(str(path), strict=True).nem_data().readings) == {SYDNEY_NMI}
    assert aemo_mdff_reader.validate_file(str(path)) == []
    assert rendered.skipped == (SkippedMeter("cp-m-2002", "duplicate_nmi"),)


def test_a_long_tenant_id_is_cut_in_the_file_name_never_the_part() -> None:
    request = replace(export_request(ExportFormat.NEM12, [sydney_meter(nmi=SYDNEY_NMI)]), part=12, version=3)
    named = render(replace(request, tenant_id="a-very-long-tenant-name-for-a-cooperative")).name
    unique_id = named.split("#")[1]
    assert len(unique_id) == 36 and unique_id.endswith("2026040420260406V3P0012")


def test_hourly_data_cannot_be_nem12() -> None:
    # Given a meter whose days have 60-minute intervals (NEM12 allows 5, 15 and 30)
    meter = sao_paulo_meter()
    hourly = type(meter)(
        meter_id=meter.meter_id,
        serial=None,
        nmi=SAO_PAULO_NMI,
        customer_id=None,
        timezone=SAO_PAULO,
        days=[
            final_day(
                meter.meter_id, Channel.ACTIVE_IMPORT, FALL_BACK_DAY, timezone=SAO_PAULO, interval_minutes=60
            )
        ],
    )
    # Then rendering refuses instead of writing a file the market would reject
    with pytest.raises(ExportNotRenderable):
        render(export_request(ExportFormat.NEM12, [hourly]))


def test_a_nmi_that_is_not_ten_nmi_characters_is_refused() -> None:
    with pytest.raises(ExportNotRenderable):
        render(export_request(ExportFormat.NEM12, [sydney_meter(nmi="NCDE0012")]))


DST_DAYS = {
    "Australia/Sydney": [date(2026, 4, 5), date(2026, 10, 4), date(2026, 6, 1)],
    "Europe/London": [date(2026, 3, 29), date(2026, 10, 25), date(2026, 7, 1)],
    "America/Sao_Paulo": [date(2026, 4, 5)],
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    timezone=st.sampled_from(sorted(DST_DAYS)),
    day_index=st.integers(min_value=0, max_value=2),
    minutes=st.sampled_from([15, 30]),
    base=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("9.999"), places=3),
    estimated=st.sets(st.integers(min_value=0, max_value=45), max_size=6),
    missing=st.sets(st.integers(min_value=0, max_value=45), max_size=3),
)
def test_aemo_reader_reads_back_every_interval_of_any_day(
    tmp_path: Path,
    timezone: str,
    day_index: int,
    minutes: int,
    base: Decimal,
    estimated: set[int],
    missing: set[int],
) -> None:
    # Given one final day in a DST-changing (or not) timezone with estimated and missing intervals
    local_day = DST_DAYS[timezone][day_index % len(DST_DAYS[timezone])]
    day = final_day(
        "m-prop",
        Channel.ACTIVE_IMPORT,
        local_day,
        timezone=timezone,
        interval_minutes=minutes,
        base=str(base),
        substituted=dict.fromkeys(estimated - missing, LINEAR_COMMS_FAULT),
        missing=missing,
    )
    meter = MeterExportData("m-prop", "SN1", SYDNEY_NMI, None, timezone, [day])
    rendered = render(
        export_request(ExportFormat.NEM12, [meter], period_start=local_day, period_end=local_day)
    )
    path = tmp_path / "prop.csv"
    path.write_bytes(rendered.content)

    # When aemo-mdff-reader reads it back (400 events give the quality of a V day's intervals)
    events = list(aemo_mdff_reader.parse_events(str(path)))

    def quality(reading: aemo_mdff_reader.IntervalReading) -> str:
        if reading.quality_method != "V":
            return reading.quality_method
        (event,) = [
            e
            for e in events
            if e.interval_date == reading.interval_date
            and e.start_interval <= reading.interval_index <= e.end_interval
        ]
        return event.quality_method

    readings = {r.interval_start: r for r in aemo_mdff_reader.parse(str(path))}

    # Then every final interval is there, at its NEM-time (standard time) start, with its value
    # and QualityMethod, and the padding slots carry no energy and quality N
    zone = ZoneInfo(timezone)
    offset = standard_offset(zone, datetime.combine(local_day, datetime.min.time(), zone))
    for interval in day.intervals:
        reading = readings.pop((interval.start + offset).replace(tzinfo=None))
        assert reading.value == float(interval.value or 0)
        expected = "N" if interval.value is None else ("S17" if interval.method_flag == 17 else "A")
        assert quality(reading) == expected
    assert all(r.value == 0 and quality(r) == "N" for r in readings.values())
    assert float(rendered.totals["active_import_kWh"]) == pytest.approx(float(day.total()), abs=1e-9)
