"""DLMS meter models: which COSEM objects a model exposes, and the decoding of its load profile.

A model file (`meter_models/<model>.yaml`, `protocol: dlms`) names the load profile's capture
objects in capture order with the canonical channel, scaler and unit of each; the cloud decodes
the raw A-XDR buffer the agent shipped with it. Adding a DLMS meter model is adding a file.

Event logs (`events:`) carry one code per entry. Most codes are IDIS's (the defaults in
`hemera.domain.events_decode`); `event_codes:` states the model's own codes and overrides, e.g.
the manufacturer codes IDIS leaves to the maker (reverse energy has no IDIS code).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hemera.domain.dlms.axdr import decode, decode_datetime
from hemera.domain.dlms.obis import Obis
from hemera.domain.errors import MalformedFrame
from hemera.domain.meter_events import EventType
from hemera.domain.meter_models import load_model_file
from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading, Unit

PROFILE_GENERIC_CLASS = 7

# Energy units a DLMS meter reports (Blue Book unit enumeration: 30 Wh, 32 varh) and the power of
# ten that turns them into the canonical kWh / kvarh.
_TO_CANONICAL: dict[str, tuple[Unit, int]] = {
    "Wh": (Unit.KWH, -3),
    "kWh": (Unit.KWH, 0),
    "varh": (Unit.KVARH, -3),
    "kvarh": (Unit.KVARH, 0),
}


class CaptureColumn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    obis: Obis
    class_id: int = Field(ge=1, le=0xFFFF)
    attribute: int = Field(ge=1, le=127)
    role: Literal["clock", "channel", "status"]
    channel: Channel | None = None
    scaler: int = Field(default=0, ge=-128, le=127)
    unit: str = ""


class DlmsLoadProfileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    obis: Obis
    interval_minutes: Literal[5, 15, 30, 60]
    clock_marks: Literal["interval_end", "interval_start"]
    columns: tuple[CaptureColumn, ...]

    @model_validator(mode="after")
    def _columns(self) -> DlmsLoadProfileSpec:
        roles = [c.role for c in self.columns]
        if roles.count("clock") != 1:
            raise ValueError("a load profile has exactly one clock column")
        if roles.count("status") > 1:
            raise ValueError("a load profile has at most one status column")
        for column in self.columns:
            if column.role == "channel":
                if column.channel is None or column.unit not in _TO_CANONICAL:
                    raise ValueError(f"channel column {column.obis} needs a channel and an energy unit")
                if _TO_CANONICAL[column.unit][0] is not CHANNEL_UNITS[column.channel]:
                    raise ValueError(f"{column.obis}: {column.unit} cannot feed {column.channel}")
        return self


class CosemObjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    obis: Obis
    class_id: int = Field(ge=1, le=0xFFFF)
    scaler: int | None = None
    unit: str | None = None


class EventCode(BaseModel):
    """What an event-log code means: its canonical type (None: the entry is valid but no
    canonical event, e.g. "log cleared") and the facts the code itself states, such as the phase
    of IDIS 82 "missing voltage L1" or the cover of IDIS 40 "terminal cover removed"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: EventType | None
    phase: Literal[1, 2, 3] | None = None
    cover: Literal["terminal", "meter"] | None = None

    def detail(self) -> dict[str, Any]:
        """The code's facts as event detail (only those it states)."""
        facts: dict[str, Any] = {}
        if self.phase is not None:
            facts["phase"] = self.phase
        if self.cover is not None:
            facts["cover"] = self.cover
        return facts


# An event code is captured as `unsigned` by IDIS meters, `long-unsigned` by some others.
EventCodeNumber = Annotated[int, Field(ge=0, le=0xFFFF)]


class DlmsMeterModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    manufacturer: str
    protocol: Literal["dlms"]
    description: str = ""
    load_profile: DlmsLoadProfileSpec
    registers: dict[str, CosemObjectSpec] = Field(default_factory=dict)
    instantaneous: dict[str, CosemObjectSpec] = Field(default_factory=dict)
    events: dict[str, CosemObjectSpec] = Field(default_factory=dict)
    # The model's own event codes; they win over the IDIS defaults for the same number.
    event_codes: dict[EventCodeNumber, EventCode] = Field(default_factory=dict)
    disconnect_control: CosemObjectSpec | None = None


def decode_load_profile_buffer(model: DlmsMeterModel, meter_id: str, data: bytes) -> list[IntervalReading]:
    """Decode a ProfileGeneric `buffer` (attribute 2: array of capture rows) into interval readings.

    Each row is a structure with one element per capture object, in the model's column order.
    Values are scaled by the column's scaler (value = raw x 10^scaler, Blue Book class 3) and
    converted to kWh/kvarh. With `clock_marks: interval_end` the row's clock closes the interval,
    so the interval starts one period earlier (the convention of most DLMS meters).
    """
    lp = model.load_profile
    rows = decode(data)
    if not isinstance(rows, list):
        raise MalformedFrame("a load-profile buffer is an A-XDR array")
    period = timedelta(minutes=lp.interval_minutes)
    readings: list[IntervalReading] = []
    for index, row in enumerate(rows):
        if not isinstance(row, tuple) or len(row) != len(lp.columns):
            raise MalformedFrame(f"row {index} is not a structure of {len(lp.columns)} capture values")
        start: datetime | None = None
        flags = 0
        for column, value in zip(lp.columns, row, strict=True):
            if column.role == "clock":
                if not isinstance(value, bytes):
                    raise MalformedFrame(f"row {index}: the clock column is not a date-time")
                moment = decode_datetime(value)
                start = moment - period if lp.clock_marks == "interval_end" else moment
            elif column.role == "status":
                flags = _integer(value, index, column)
        assert start is not None  # the spec has exactly one clock column
        for column, value in zip(lp.columns, row, strict=True):
            if column.role == "channel":
                readings.append(_reading(meter_id, column, start, lp.interval_minutes, value, flags, index))
    return readings


def _integer(value: Any, index: int, column: CaptureColumn) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedFrame(f"row {index}: {column.obis} is not an integer")
    return value


def _reading(
    meter_id: str, column: CaptureColumn, start: datetime, minutes: int, value: Any, flags: int, index: int
) -> IntervalReading:
    assert column.channel is not None  # checked by DlmsLoadProfileSpec
    raw = _integer(value, index, column)
    unit, exponent = _TO_CANONICAL[column.unit]
    return IntervalReading.decoded(
        f"row {index}",
        meter_id=meter_id,
        channel=column.channel,
        start=start,
        length_minutes=minutes,
        value=Decimal(raw).scaleb(column.scaler + exponent),
        unit=unit,
        raw_value=raw,
        meter_flags=flags,
    )


@cache
def load_dlms_model(model: str) -> DlmsMeterModel:
    """The COSEM map of a DLMS meter model shipped with the platform; `UnknownMeterModel` otherwise."""
    return load_model_file(model, DlmsMeterModel, "COSEM map")
