"""Meter models: a Modbus register map as data, and the decoding of load-profile blocks with it.

A model file (`meter_models/<model>.yaml`) states where each quantity lives, its type, word
order, scaler and unit. Adding a meter model is adding a file; the agent never changes.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hemera.domain.errors import MalformedFrame
from hemera.domain.meter_models import load_model_file
from hemera.domain.modbus.registers import WIDTH, RegisterType, WordOrder, decode_value, scaled
from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading, Unit, utc_from_epoch

# Holding registers one "read holding registers" request may ask for.
MAX_READ_REGISTERS = 125


class FieldSpec(BaseModel):
    """One value inside a register block: offset in registers from the block's start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: int = Field(ge=0)
    type: RegisterType
    scaler: int = 0
    unit: str = ""
    channel: Channel | None = None

    @property
    def width(self) -> int:
        return WIDTH[self.type]


RegisterGroup = Literal["energy", "instantaneous", "control", "clock", "info"]


class RegisterSpec(FieldSpec):
    """A single register value at an absolute address (clock, energy registers).

    `group` says what the agent reads it as: `energy` registers (billing totals, read daily and
    on demand as `registers` frames), `instantaneous` values (voltage, current, power, read every
    few minutes), or `control`/`clock`/`info` registers it only touches for a command. A map
    without groups is still valid; the agent then reads no registers of it on a schedule.
    """

    address: int = Field(ge=0, le=0xFFFF)
    offset: int = 0
    access: Literal["r", "rw", "w"] = "r"
    description: str = ""
    group: RegisterGroup | None = None


class LoadProfileSpec(BaseModel):
    """How a meter exposes its interval memory.

    The client writes the UTC epoch second of the first wanted interval into `cursor_address`
    (u32); the meter then fills the window at `window_address` with up to `records_per_window`
    records of `record_size` registers, in time order, starting at the first record at or after
    the cursor. A record whose timestamp is 0 is an empty slot (no more data yet). The start of
    the newest completed interval can be read at `newest_address` (u32).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_minutes: int
    cursor_address: int
    newest_address: int
    window_address: int
    records_per_window: int = Field(ge=1)
    record_size: int = Field(ge=1)
    timestamp: FieldSpec
    status: FieldSpec
    channels: tuple[FieldSpec, ...]

    @model_validator(mode="after")
    def _fits(self) -> LoadProfileSpec:
        if self.records_per_window * self.record_size > MAX_READ_REGISTERS:
            raise ValueError("a window must fit one Modbus read (125 registers)")
        for spec in (self.timestamp, self.status, *self.channels):
            if spec.offset + spec.width > self.record_size:
                raise ValueError(
                    f"field at offset {spec.offset} overflows the {self.record_size}-register record"
                )
        if any(c.channel is None for c in self.channels):
            raise ValueError("every load-profile channel names its canonical channel")
        return self

    @property
    def window_registers(self) -> int:
        return self.records_per_window * self.record_size


class ModbusMeterModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    manufacturer: str
    protocol: Literal["modbus"]
    description: str = ""
    word_order: WordOrder
    registers: dict[str, RegisterSpec]
    load_profile: LoadProfileSpec

    def register_blocks(self, group: RegisterGroup) -> list[tuple[int, int]]:
        """(address, count) of the register runs holding a group: one Modbus read each.

        Registers that touch (the next starts where the previous one ends) share a run, so a
        group costs as few requests as the map allows; a run never exceeds one read's limit of
        125 registers (Modbus application protocol V1.1b3, 6.3), and a gap always ends a run:
        a meter may answer an unmapped address with an exception.
        """
        specs = sorted((s for s in self.registers.values() if s.group == group), key=lambda s: s.address)
        blocks: list[tuple[int, int]] = []
        for spec in specs:
            if blocks:
                address, count = blocks[-1]
                if spec.address == address + count and count + spec.width <= MAX_READ_REGISTERS:
                    blocks[-1] = (address, count + spec.width)
                    continue
            blocks.append((spec.address, spec.width))
        return blocks


def decode_load_profile_window(
    model: ModbusMeterModel, meter_id: str, registers: list[int]
) -> list[IntervalReading]:
    """Decode one load-profile window into canonical interval readings (empty slots skipped)."""
    lp = model.load_profile
    if len(registers) % lp.record_size:
        raise MalformedFrame(
            f"load-profile block of {len(registers)} registers is not whole {lp.record_size}-register records"
        )
    readings: list[IntervalReading] = []
    for base in range(0, len(registers), lp.record_size):
        record = registers[base : base + lp.record_size]
        epoch = int(decode_value(record, lp.timestamp.offset, lp.timestamp.type, model.word_order))
        if epoch == 0:
            continue
        start = utc_from_epoch(epoch)
        flags = int(decode_value(record, lp.status.offset, lp.status.type, model.word_order))
        for spec in lp.channels:
            assert spec.channel is not None  # checked by LoadProfileSpec
            raw = decode_value(record, spec.offset, spec.type, model.word_order)
            readings.append(_reading(meter_id, spec, start, lp.interval_minutes, raw, flags))
    return readings


def _reading(
    meter_id: str, spec: FieldSpec, start: datetime, minutes: int, raw: int | float, flags: int
) -> IntervalReading:
    assert spec.channel is not None
    unit = CHANNEL_UNITS[spec.channel]
    if spec.unit and Unit(spec.unit) is not unit:
        raise MalformedFrame(f"map gives {spec.unit} for {spec.channel}, canonical unit is {unit}")
    return IntervalReading.decoded(
        f"record at {start.isoformat()}",
        meter_id=meter_id,
        channel=spec.channel,
        start=start,
        length_minutes=minutes,
        value=scaled(raw, spec.scaler),
        unit=unit,
        raw_value=int(raw) if isinstance(raw, int) else None,
        meter_flags=flags,
    )


@cache
def load_model(model: str) -> ModbusMeterModel:
    """The register map of a meter model shipped with the platform; `UnknownMeterModel` otherwise."""
    return load_model_file(model, ModbusMeterModel, "register map")
