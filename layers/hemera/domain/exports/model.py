"""What a billing export is rendered from and what rendering returns.

The export service gathers the final (VEE'd) days of a tenant's meters for a billing period and
asks `hemera.domain.exports.render` for one file; these types are that contract. Rendering is pure:
no storage, no clock, no AWS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from hemera.domain.errors import ExportNotRenderable
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

    `nmi` is the meter's National Metering Identifier when the tenant has one (NEM12 needs it);
    when it is None, NEM12 uses `derived_nmi(meter_id)`, a stable 10-character stand-in.
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


@dataclass(frozen=True)
class RenderedFile:
    """A rendered export. `rows` counts its data records (CSV/TXT lines, NEM12 300 records, ESPI
    IntervalReadings, regulatory Hour elements); `totals` sums the values written, per
    channel and unit (keys like `active_import_kWh`), for the export manifest."""

    name: str
    content_type: str
    content: bytes
    rows: int
    totals: dict[str, Decimal]


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
    return f"{request.tenant_id}_{request.period_start:%Y%m%d}_{request.period_end:%Y%m%d}_v{request.version}"


# NMI characters: digits and upper-case letters without I and O (AEMO NMI Allocation List).
_NMI_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def derived_nmi(meter_id: str) -> str:
    """A stable 10-character NMI stand-in for a meter that has none: `H` and nine characters of
    the NMI alphabet taken from the SHA-256 of the meter id. Same meter id, same NMI, in every
    export; it is not an AEMO-allocated NMI and must not be sent into the NEM market."""
    number = int.from_bytes(hashlib.sha256(meter_id.encode()).digest(), "big")
    chars = []
    for _ in range(9):
        number, index = divmod(number, len(_NMI_ALPHABET))
        chars.append(_NMI_ALPHABET[index])
    return "H" + "".join(chars)


def export_nmi(meter: MeterExportData) -> str:
    """The NMI NEM12 carries for `meter`: its own (10 characters of the NMI alphabet) or the
    derived one."""
    if meter.nmi is None:
        return derived_nmi(meter.meter_id)
    nmi = meter.nmi.upper()
    if len(nmi) != 10 or any(c not in _NMI_ALPHABET for c in nmi):
        raise ExportNotRenderable(f"meter {meter.meter_id}: NMI {meter.nmi!r} is not 10 NMI characters")
    return nmi
