"""What a billing export is rendered from and what rendering returns.

The export service gathers the final (VEE'd) days of a tenant's meters for a billing period and
asks `hemera.domain.exports.render` for one file; these types are that contract. Rendering is pure:
no storage, no clock, no AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from hemera.domain.final_series import FinalDay
from hemera.domain.readings import CHANNEL_UNITS, Channel


class ExportFormat(StrEnum):
    CSV = "csv"
    TXT = "txt"  # fixed-width variant of the CSV for legacy commercial systems
    NEM12 = "nem12"  # AEMO Meter Data File Format, interval data
    GREEN_BUTTON = "green_button"  # NAESB REQ.21 ESPI "Download My Data" Atom feed
    REGULATORY_XML = "regulatory_xml"  # hourly kWh/kvarh per measurement point (own XSD)


@dataclass(frozen=True)
class MeterExportData:
    """One meter of the export with its final days (any channels, any order).

    `nmi` is the meter's registered National Metering Identifier (10 characters, no checksum
    digit) and `serial` its serial number, when the tenant file gives them. NEM12 needs the NMI:
    a meter without one is left out of a NEM12 file and listed in `RenderedFile.skipped`.
    """

    meter_id: str
    serial: str | None
    nmi: str | None
    customer_id: str | None
    timezone: str
    days: Sequence[FinalDay]


@dataclass(frozen=True)
class ExportRequest:
    """One export file: a tenant's meters over `period_start`..`period_end` (tenant-local days,
    inclusive). `version` numbers restatements of the same period (1, 2, …)."""

    tenant_id: str
    tenant_name: str
    format: ExportFormat
    period_start: date
    period_end: date
    created_at: datetime
    version: int
    meters: Sequence[MeterExportData]
    # NEM12 100-record participants (at most 10 characters each); an empty `participant_to`
    # stands for the tenant id in upper case.
    participant_from: str = "HEMERA"
    participant_to: str = ""
    # A version too large for one file is rendered in parts (each a complete file of its format
    # for some of the meters): the part number, None for the whole export in one file.
    part: int | None = None
    # NMIs that meters of the export outside this part carry: NEM12 leaves a meter whose NMI is
    # among them out as a duplicate, as it would if both were in one file.
    other_nmis: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SkippedMeter:
    """A meter of the request that a format leaves out of its file, and why (`no_nmi`: NEM12
    without an NMI; `duplicate_nmi`: NEM12 with an NMI another meter of the file also has)."""

    meter_id: str
    reason: str


@dataclass(frozen=True)
class RenderedFile:
    """A rendered export. `rows` counts its data records (CSV/TXT lines, NEM12 300 records, ESPI
    IntervalReadings, regulatory Hour elements); `totals` sums the values written, per
    channel and unit (keys like `active_import_kWh`), for the export manifest; `skipped` lists
    the meters of the request the file leaves out (the manifest records them)."""

    name: str
    content_type: str
    content: bytes
    rows: int
    totals: dict[str, Decimal]
    skipped: tuple[SkippedMeter, ...] = ()


def totals_key(channel: Channel) -> str:
    """The manifest key of a channel's total: channel and unit, e.g. `reactive_import_kvarh`."""
    return f"{channel.value}_{CHANNEL_UNITS[channel].value}"


def days_in_period(meter: MeterExportData, request: ExportRequest) -> list[FinalDay]:
    """The meter's final days inside the request's period, by channel then day."""
    channel_order = list(Channel)
    days = [d for d in meter.days if request.period_start <= d.local_day <= request.period_end]
    return sorted(days, key=lambda d: (channel_order.index(d.channel), d.local_day))


def add_total(totals: dict[str, Decimal], channel: Channel, value: Decimal | None) -> None:
    key = totals_key(channel)
    totals[key] = totals.get(key, Decimal(0)) + (value if value is not None else Decimal(0))


def empty_totals(channels: Iterable[Channel]) -> dict[str, Decimal]:
    return {totals_key(c): Decimal(0) for c in channels}


def decimal_text(value: Decimal) -> str:
    """A decimal in plain positional notation (never `1E+1`), without a negative zero."""
    if value == 0:
        value = abs(value)
    return format(value, "f")


def quantized(value: Decimal, places: int) -> Decimal:
    """`value` rounded half-even to `places` decimals (what a fixed-decimal field can carry)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def file_stem(request: ExportRequest) -> str:
    """The name every file of the request starts with; a part's carries `_part-0001`."""
    stem = f"{request.tenant_id}_{request.period_start:%Y%m%d}_{request.period_end:%Y%m%d}_v{request.version}"
    return stem if request.part is None else f"{stem}_part-{request.part:04d}"
