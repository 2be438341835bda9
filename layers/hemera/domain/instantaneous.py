"""Instantaneous values: the supply as a meter sees it at one moment (V and I per phase, total P
and Q, power factor, frequency), decoded from an envelope's `instantaneous` frames.

The agent reads them every few minutes (`instantaneous_every_seconds`): a Modbus meter as the
register runs of its map's `instantaneous` group (one `ModbusFrame` per run), a DLMS meter as the
value (class 3, attribute 2) and scaler_unit (attribute 3) of each object of its model's
`instantaneous:` section. Frames carry no capture time of their own, so the reading is dated by
the envelope's `collected_at` (the agent's clock when it assembled the readout), to the second.

Canonical units: V, A, W, var, PF without unit, Hz. Active power is in W (not kW) because that is
what the meters' maps state, so the value stays the meter's number times its scaler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from hemera.domain.dlms.axdr import decode
from hemera.domain.dlms.model import DlmsMeterModel, load_dlms_model
from hemera.domain.envelope import DlmsFrame, Envelope, FrameKind, Protocol
from hemera.domain.errors import MalformedFrame, UnsupportedProtocol
from hemera.domain.modbus.model import ModbusMeterModel, load_model
from hemera.domain.modbus.registers import scaled
from hemera.domain.modbus_readout import group_registers

# DLMS Register (class 3) attribute holding the value; attribute 3 (scaler_unit) is read too, but
# the model's scaler is the one applied (the map is the contract, as for the load profile).
_DLMS_VALUE_ATTRIBUTE = 2


class Quantity(StrEnum):
    VOLTAGE_L1 = "voltage_l1"
    VOLTAGE_L2 = "voltage_l2"
    VOLTAGE_L3 = "voltage_l3"
    CURRENT_L1 = "current_l1"
    CURRENT_L2 = "current_l2"
    CURRENT_L3 = "current_l3"
    ACTIVE_POWER = "active_power"
    REACTIVE_POWER = "reactive_power"
    POWER_FACTOR = "power_factor"
    FREQUENCY = "frequency"


QUANTITY_UNITS: Mapping[Quantity, str] = {
    Quantity.VOLTAGE_L1: "V",
    Quantity.VOLTAGE_L2: "V",
    Quantity.VOLTAGE_L3: "V",
    Quantity.CURRENT_L1: "A",
    Quantity.CURRENT_L2: "A",
    Quantity.CURRENT_L3: "A",
    Quantity.ACTIVE_POWER: "W",
    Quantity.REACTIVE_POWER: "var",
    Quantity.POWER_FACTOR: "",
    Quantity.FREQUENCY: "Hz",
}

# What the meter's CT x VT multiplier scales. The registry keeps only the product of the two
# ratios, so V (VT only) and I (CT only) cannot be brought to the primary side; P and Q (CT x VT)
# can. Power factor and frequency are ratios/rates and never scale.
SCALED_BY_MULTIPLIER = frozenset({Quantity.ACTIVE_POWER, Quantity.REACTIVE_POWER})


@dataclass(frozen=True, slots=True)
class InstantaneousReading:
    """The instantaneous values of one meter at one capture time (UTC), by canonical quantity.

    A model that does not measure a quantity (hd500 has no P/Q objects) simply lacks its key.
    """

    meter_id: str
    captured_at: datetime
    values: Mapping[Quantity, Decimal] = field(default_factory=dict)


def decode_instantaneous(envelope: Envelope) -> InstantaneousReading | None:
    """The instantaneous reading an envelope carries, None if it has no `instantaneous` frame.

    Values are on the secondary side, as the meter measured them (see `on_primary_side`).
    Raises `MalformedFrame` when a frame does not fit the meter model's map.
    """
    frames = [f for f in envelope.frames if f.kind is FrameKind.INSTANTANEOUS]
    if not frames:
        return None
    if envelope.protocol is Protocol.MODBUS:
        values = _decode_modbus(load_model(envelope.model), frames)
    elif envelope.protocol is Protocol.DLMS:
        values = _decode_dlms(load_dlms_model(envelope.model), frames)
    else:
        raise UnsupportedProtocol(f"instantaneous frames over {envelope.protocol} are not translated")
    captured_at = envelope.collected_at.astimezone(UTC).replace(microsecond=0)
    return InstantaneousReading(envelope.meter, captured_at, values)


def capture_key(moment: datetime) -> str:
    """A capture time as stored and compared: UTC, whole seconds, ISO 8601 (sorts as time)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def on_primary_side(reading: InstantaneousReading, multiplier: Decimal) -> InstantaneousReading:
    """Scale P and Q by the meter's CT x VT ratio (`SCALED_BY_MULTIPLIER`); V, I, PF and frequency
    stay as measured."""
    if multiplier == 1:
        return reading
    values = {q: v * multiplier if q in SCALED_BY_MULTIPLIER else v for q, v in reading.values.items()}
    return InstantaneousReading(reading.meter_id, reading.captured_at, values)


def _quantity(name: str, unit: str | None) -> Quantity | None:
    """The canonical quantity a map entry feeds (None for a name that is not one), its unit checked."""
    try:
        quantity = Quantity(name)
    except ValueError:
        return None
    if (unit or "") != QUANTITY_UNITS[quantity]:
        raise MalformedFrame(
            f"map gives {unit!r} for {quantity}, canonical unit is {QUANTITY_UNITS[quantity]!r}"
        )
    return quantity


def _decode_modbus(model: ModbusMeterModel, frames: Sequence[object]) -> dict[Quantity, Decimal]:
    values: dict[Quantity, Decimal] = {}
    for name, spec, raw in group_registers(model, frames, "instantaneous"):
        quantity = _quantity(name, spec.unit)
        if quantity is not None:
            values[quantity] = scaled(raw, spec.scaler)
    return values


def _decode_dlms(model: DlmsMeterModel, frames: Sequence[object]) -> dict[Quantity, Decimal]:
    by_object = {(spec.obis, spec.class_id): (name, spec) for name, spec in model.instantaneous.items()}
    values: dict[Quantity, Decimal] = {}
    for frame in frames:
        if not isinstance(frame, DlmsFrame):
            raise MalformedFrame("a dlms envelope carries dlms frames only")
        if frame.attribute != _DLMS_VALUE_ATTRIBUTE:
            continue
        try:
            name, spec = by_object[(frame.obis, frame.class_id)]
        except KeyError:
            raise MalformedFrame(
                f"{frame.obis}/{frame.class_id} is not an instantaneous object of model {model.model}"
            ) from None
        quantity = _quantity(name, spec.unit)
        if quantity is None:
            continue
        value = decode(frame.raw())
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MalformedFrame(f"{frame.obis}: value is not a number")
        values[quantity] = scaled(value, spec.scaler or 0)
    return values
