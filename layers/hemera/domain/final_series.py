"""Final (VEE'd) interval data: what billing, exports, alarms and the portal read.

The VEE engine turns the stored meter data of one meter, channel and *tenant-local* day (23, 24 or
25 hours on DST changes) into a `FinalDay`: every interval of that day, each with a final value
and its provenance (AEMO MDFF quality/method/reason, ESPI `qualityOfReading`, the VEE rule and
version, the data version). Ingest's meter-channel-day items (UTC days) stay as the meter sent
them; a `FinalDay` is recomputed from them, from edits and from history whenever one changes,
and each change bumps its `version` (earlier versions stay readable for restatements).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from hemera.domain.readings import CHANNEL_UNITS, Channel, Unit


class FinalStatus(StrEnum):
    """Where a final value stands (the status column of the load profile)."""

    ACTUAL = "actual"  # the meter's value, validated
    ESTIMATED = "estimated"  # substituted by an estimator of the ladder
    EDITED = "edited"  # set by an operator's edit
    FAILED = "validation_failed"  # failed a rule and could not be estimated (value may be None)


class QualityFlag(StrEnum):
    """AEMO MDFF (NEM12) quality flags (REFERENCE.md)."""

    ACTUAL = "A"
    FORWARD_ESTIMATE = "E"
    FINAL_SUBSTITUTE = "F"
    SUBSTITUTE = "S"
    VARIABLE = "V"  # only for a whole day whose intervals differ (NEM12 300 record)
    NULL = "N"


# ESPI `qualityOfReading` codes used here (NAESB REQ.21; REFERENCE.md).
ESPI_VALID = 0
ESPI_EDITED = 7
ESPI_REFERENCE_DAY = 8
ESPI_LINEAR = 9
ESPI_QUESTIONABLE = 10
ESPI_DERIVED = 11
ESPI_RAW = 14
ESPI_VALIDATED = 17


@dataclass(frozen=True, slots=True)
class FinalInterval:
    """One interval of a final day.

    `start` is tz-aware UTC. `value` is the value billing uses (None only when the interval is
    missing and nothing could estimate it: quality N). `raw_value` is what the meter reported in
    the channel's unit (None when it sent nothing). `method_flag` is the AEMO interval method
    (17 linear, 14 like day, 15 average like day, 23 previous year, 24 data scaling; None for
    actual data), `reason_code` the AEMO reason (43/79 outage, 76 comms fault, …), `rule_id` and
    `rule_version` the VEE rule that failed or the estimator that filled the value.
    """

    start: datetime
    length_minutes: int
    value: Decimal | None
    raw_value: Decimal | None
    status: FinalStatus
    quality_flag: QualityFlag
    espi_quality: int
    method_flag: int | None = None
    reason_code: int | None = None
    rule_id: str | None = None
    rule_version: int | None = None

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.length_minutes)

    @property
    def is_actual(self) -> bool:
        return self.status is FinalStatus.ACTUAL


@dataclass(frozen=True, slots=True)
class FinalDay:
    """Every interval of one meter, channel and tenant-local day, in time order.

    `version` is the final data version of the day (1, 2, …); `source_versions` the versions of
    the UTC meter-channel-day items it was computed from, so a reader can tell it is current.
    """

    meter_id: str
    channel: Channel
    local_day: date
    timezone: str
    interval_minutes: int
    version: int
    intervals: tuple[FinalInterval, ...]
    computed_at: datetime
    source_versions: tuple[tuple[date, int], ...] = ()
    # Why this version exists: "ingest", "late_data", "edit", "sweep", "reread", …
    cause: str = "ingest"
    edited_by: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def unit(self) -> Unit:
        return CHANNEL_UNITS[self.channel]

    def total(self) -> Decimal:
        """Sum of the final values (missing, unestimated intervals count as nothing)."""
        return sum((i.value for i in self.intervals if i.value is not None), Decimal(0))

    def share_substituted(self) -> Decimal:
        """Fraction of intervals that are not actual (estimated, edited or failed), 0 to 1."""
        if not self.intervals:
            return Decimal(0)
        substituted = sum(1 for i in self.intervals if not i.is_actual)
        return Decimal(substituted) / Decimal(len(self.intervals))


@dataclass(frozen=True, slots=True)
class FinalDayChange:
    """One entry of a `FinalDaysChanged` event: a final day stored at a new version.

    `failed_rules` names the VEE rules that failed on the day (alarms count repeated failures),
    `estimated`/`missing` count its estimated and still-missing intervals."""

    meter_id: str
    channel: Channel
    local_day: date
    version: int
    previous_version: int | None
    cause: str
    failed_rules: tuple[str, ...] = ()
    estimated: int = 0
    missing: int = 0

    def detail(self) -> dict[str, Any]:
        return {
            "meter_id": self.meter_id,
            "channel": self.channel.value,
            "local_day": self.local_day.isoformat(),
            "version": self.version,
            "previous_version": self.previous_version,
            "cause": self.cause,
            "failed_rules": list(self.failed_rules),
            "estimated": self.estimated,
            "missing": self.missing,
        }

    @classmethod
    def from_detail(cls, entry: dict[str, Any]) -> FinalDayChange:
        previous = entry.get("previous_version")
        return cls(
            meter_id=str(entry["meter_id"]),
            channel=Channel(str(entry["channel"])),
            local_day=date.fromisoformat(str(entry["local_day"])),
            version=int(str(entry["version"])),
            previous_version=None if previous is None else int(str(previous)),
            cause=str(entry["cause"]),
            failed_rules=tuple(str(r) for r in entry.get("failed_rules") or ()),
            estimated=int(str(entry.get("estimated", 0))),
            missing=int(str(entry.get("missing", 0))),
        )
