"""NEM12: the AEMO Meter Data File Format for interval data (MDFF NEM12 & NEM13, v2.6).

Records written: 100 header, 200 NMI data details per NMI, channel (NMI suffix) and interval
length, 300 interval data per day, 400 interval events when the intervals of a day differ in
quality (the 300 record's QualityMethod is then `V`), 900 end. No 500 B2B records: exports are
not B2B service-order responses.

Days. NEM12 days have exactly 1440 / IntervalLength intervals in NEM time, which keeps no
daylight saving. A tenant-local day can have 23 or 25 hours, so NEM12 days here are the days of
the meter timezone's *standard* time (UTC offset without DST; for Australia/Sydney or Brisbane
that is NEM time itself). Each final interval goes to the standard-time day and slot it falls in;
a slot of such a day that no final day covers (the hour by which standard and daylight time
differ, at the ends of the period) is written as 0 with quality `N` and reason 78 (null data).

Identity. The 200 record carries the meter's registered NMI (10 characters; the checksum digit
is not a NEM12 field) and serial (MeterSerialNumber, at most 12 characters). A meter without an
NMI is never given a made-up one: it is left out of the file and listed in
`RenderedFile.skipped` with reason `no_nmi`; meters sharing an NMI are all left out
(`duplicate_nmi`: which one the data belongs to is not known).

Quality. Per interval, QualityMethod is the AEMO quality flag followed by the two-digit method
flag (`A`, `S14`, `F17`, `E23`, `N`); ReasonCode is the interval's AEMO reason code. When all
intervals of a day share them the 300 record carries them; otherwise it carries `V` and one
400 record per run of intervals with the same QualityMethod and reason.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hemera.domain.errors import ExportNotRenderable
from hemera.domain.exports.model import (
    ExportRequest,
    MeterExportData,
    RenderedFile,
    SkippedMeter,
    add_total,
    days_in_period,
    decimal_text,
)
from hemera.domain.final_series import FinalDay, FinalInterval, QualityFlag
from hemera.domain.nmi import NMI_LENGTH, SERIAL_MAX_LENGTH, parse_nmi
from hemera.domain.readings import Channel

# NMI suffix per channel (MDFF Appendix: E import Wh, B export Wh, Q import varh, K export varh),
# meter 1 of the NMI.
NMI_SUFFIX: dict[Channel, str] = {
    Channel.ACTIVE_IMPORT: "E1",
    Channel.ACTIVE_EXPORT: "B1",
    Channel.REACTIVE_IMPORT: "Q1",
    Channel.REACTIVE_EXPORT: "K1",
}
UOM: dict[Channel, str] = {
    Channel.ACTIVE_IMPORT: "kWh",
    Channel.ACTIVE_EXPORT: "kWh",
    Channel.REACTIVE_IMPORT: "kVArh",
    Channel.REACTIVE_EXPORT: "kVArh",
}
ALLOWED_INTERVAL_LENGTHS = (5, 15, 30)
NULL_DATA_REASON = 78  # MDFF reason code "Null Data"
# Why a meter of the request is not in the file (`RenderedFile.skipped`).
SKIPPED_NO_NMI = "no_nmi"
SKIPPED_DUPLICATE_NMI = "duplicate_nmi"
_PARTICIPANT = re.compile(r"^[A-Z0-9]{1,10}$")


@dataclass(frozen=True, slots=True)
class _Slot:
    value: Decimal
    quality_method: str
    reason_code: int | None


_NULL_SLOT = _Slot(Decimal(0), QualityFlag.NULL.value, NULL_DATA_REASON)


def standard_offset(zone: ZoneInfo, at: datetime) -> timedelta:
    """The zone's UTC offset without daylight saving at `at` (e.g. +10:00 for Sydney all year)."""
    local = at.astimezone(zone)
    offset = local.utcoffset() or timedelta(0)
    return offset - (local.dst() or timedelta(0))


def quality_method(interval: FinalInterval) -> str:
    """MDFF QualityMethod of an interval: flag, then the two-digit method for non-actual data."""
    if interval.value is None:
        return QualityFlag.NULL.value
    flag = interval.quality_flag
    if flag in (QualityFlag.ACTUAL, QualityFlag.NULL) or interval.method_flag is None:
        return flag.value
    return f"{flag.value}{interval.method_flag:02d}"


def _slot(interval: FinalInterval) -> _Slot:
    if interval.value is None:
        return _Slot(Decimal(0), QualityFlag.NULL.value, interval.reason_code or NULL_DATA_REASON)
    reason = None if interval.quality_flag is QualityFlag.ACTUAL else interval.reason_code
    return _Slot(interval.value, quality_method(interval), reason)


@dataclass
class _Stream:
    """One 200 block: the NEM12 days of one channel at one interval length."""

    channel: Channel
    interval_minutes: int
    days: dict[date, list[_Slot | None]]
    updated: dict[date, datetime]


def _streams(meter: MeterExportData, request: ExportRequest, offset: timedelta) -> list[_Stream]:
    nem_time = timezone(offset)
    streams: dict[tuple[Channel, int], _Stream] = {}
    final_days: list[FinalDay] = days_in_period(meter, request)
    for day in final_days:
        minutes = day.interval_minutes
        if minutes not in ALLOWED_INTERVAL_LENGTHS:
            raise ExportNotRenderable(
                f"meter {meter.meter_id}: NEM12 allows 5, 15 or 30-minute intervals, not {minutes}"
            )
        stream = streams.setdefault(
            (day.channel, minutes), _Stream(day.channel, minutes, days={}, updated={})
        )
        per_day = 1440 // minutes
        for interval in day.intervals:
            start = interval.start.astimezone(nem_time)
            nem_day = start.date()
            slots = stream.days.setdefault(nem_day, [None] * per_day)
            slots[(start.hour * 60 + start.minute) // minutes] = _slot(interval)
            computed = day.computed_at.astimezone(nem_time)
            stream.updated[nem_day] = max(stream.updated.get(nem_day, computed), computed)
    order = list(Channel)
    return sorted(streams.values(), key=lambda s: (order.index(s.channel), s.interval_minutes))


def _runs(slots: list[_Slot]) -> Iterator[tuple[int, int, _Slot]]:
    """Runs of consecutive slots with the same quality and reason: (first, last, slot), 1-based."""
    first = 0
    for index in range(1, len(slots) + 1):
        if index == len(slots) or (slots[index].quality_method, slots[index].reason_code) != (
            slots[first].quality_method,
            slots[first].reason_code,
        ):
            yield first + 1, index, slots[first]
            first = index


def _participant(value: str, role: str) -> str:
    if not _PARTICIPANT.match(value):
        raise ExportNotRenderable(f"NEM12 {role} participant {value!r} is not 1-10 upper-case letters/digits")
    return value


def _nmi(meter: MeterExportData) -> str:
    """The meter's NMI as NEM12 carries it: exactly 10 characters of the NMI alphabet."""
    nmi = meter.nmi or ""
    try:
        if len(nmi) != NMI_LENGTH:
            raise ValueError(f"NEM12 carries the {NMI_LENGTH} characters of an NMI, not {nmi!r}")
        return parse_nmi(nmi)
    except ValueError as exc:
        raise ExportNotRenderable(f"meter {meter.meter_id}: {exc}") from exc


def _exported(
    meters: Sequence[MeterExportData], other_nmis: frozenset[str] = frozenset()
) -> tuple[list[MeterExportData], list[SkippedMeter]]:
    """The meters NEM12 can identify (in request order) and the ones it leaves out, with why
    (`other_nmis`: the NMIs of the export's meters in other parts)."""
    counts = Counter(m.nmi for m in meters if m.nmi is not None)
    exported, skipped = [], []
    for meter in meters:
        if meter.nmi is None:
            skipped.append(SkippedMeter(meter.meter_id, SKIPPED_NO_NMI))
        elif counts[meter.nmi] > 1 or meter.nmi in other_nmis:
            skipped.append(SkippedMeter(meter.meter_id, SKIPPED_DUPLICATE_NMI))
        else:
            exported.append(meter)
    return exported, skipped


def _file_identifier(request: ExportRequest) -> str:
    """The file name's unique id (at most 36 characters): a long tenant id is cut, never the
    period, version or part (two parts must not share a name)."""
    tenant = re.sub(r"[^A-Za-z0-9]", "", request.tenant_id).upper()
    rest = f"{request.period_start:%Y%m%d}{request.period_end:%Y%m%d}V{request.version}"
    if request.part is not None:
        rest += f"P{request.part:04d}"
    return f"{tenant[: max(0, 36 - len(rest))]}{rest}"


def render_nem12(request: ExportRequest) -> RenderedFile:
    """The NEM12 file of the request (see the module docstring for days and quality)."""
    from_participant = _participant(request.participant_from, "from")
    to_participant = _participant(
        request.participant_to or re.sub(r"[^A-Z0-9]", "", request.tenant_id.upper())[:10], "to"
    )
    header_offset = (
        standard_offset(ZoneInfo(request.meters[0].timezone), request.created_at)
        if request.meters
        else timedelta(0)
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        (
            100,
            "NEM12",
            request.created_at.astimezone(timezone(header_offset)).strftime("%Y%m%d%H%M"),
            from_participant,
            to_participant,
        )
    )
    totals: dict[str, Decimal] = {}
    records_300 = 0
    exported, skipped = _exported(request.meters, request.other_nmis)
    for meter in exported:
        zone = ZoneInfo(meter.timezone)
        period_start = datetime.combine(request.period_start, datetime.min.time(), zone).astimezone(UTC)
        offset = standard_offset(zone, period_start)
        streams = _streams(meter, request, offset)
        nmi = _nmi(meter)
        configuration = "".join(dict.fromkeys(NMI_SUFFIX[s.channel] for s in streams))
        serial = meter.serial or ""
        if len(serial) > SERIAL_MAX_LENGTH:
            raise ExportNotRenderable(
                f"meter {meter.meter_id}: serial {serial!r} exceeds NEM12's {SERIAL_MAX_LENGTH} characters"
            )
        registers = list(dict.fromkeys(s.channel for s in streams))
        for stream in streams:
            register = registers.index(stream.channel) + 1
            writer.writerow(
                (
                    200,
                    nmi,
                    configuration,
                    register,
                    NMI_SUFFIX[stream.channel],
                    f"N{register}",
                    serial,
                    UOM[stream.channel],
                    stream.interval_minutes,
                    "",
                )
            )
            for nem_day in sorted(stream.days):
                slots = [slot or _NULL_SLOT for slot in stream.days[nem_day]]
                runs = list(_runs(slots))
                variable = len(runs) > 1
                writer.writerow(
                    (
                        300,
                        f"{nem_day:%Y%m%d}",
                        *(decimal_text(slot.value) for slot in slots),
                        QualityFlag.VARIABLE.value if variable else slots[0].quality_method,
                        "" if variable or slots[0].reason_code is None else slots[0].reason_code,
                        "",
                        f"{stream.updated[nem_day]:%Y%m%d%H%M%S}",
                        "",
                    )
                )
                records_300 += 1
                if variable:
                    for first, last, slot in runs:
                        writer.writerow(
                            (
                                400,
                                first,
                                last,
                                slot.quality_method,
                                "" if slot.reason_code is None else slot.reason_code,
                                "",
                            )
                        )
                for slot in slots:
                    add_total(totals, stream.channel, slot.value)
    writer.writerow((900,))
    return RenderedFile(
        name=f"NEM12#{_file_identifier(request)}#{from_participant}#{to_participant}.csv",
        content_type="text/csv; charset=utf-8",
        content=out.getvalue().encode(),
        rows=records_300,
        totals=totals,
        skipped=tuple(skipped),
    )
