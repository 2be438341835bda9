"""Device events and energy registers from what an RTU shipped: the `events` and `registers`
frames of a telemetry envelope, and the RTU's own `hemera.rtu-event/1` messages.

DLMS event logs (ProfileGeneric, class 7, attribute 2 = buffer) capture the clock and an event
code (0.0.96.11.x.255) per entry, as IDIS (the DLMS UA companion spec most C&I meters follow)
lays them out; a power-failure log may capture a third value, the failure's duration in seconds.
Codes are translated with the model's table (`event_codes`): `IDIS_EVENT_CODES` overlaid by the
model file's own `event_codes:` (manufacturer codes, e.g. the HD-500's reverse energy). An entry
with a code the table does not know, or knows as no canonical type (e.g. 255 "event log cleared"),
is a valid entry and is skipped, not an error.

Modbus event logs: a model with an `event_log:` map (hx300, mx40) exposes its log through a cursor
and a window of fixed-size records (meter-clock time stamp, event code, detail), read like the
load profile; `decode_event_window` in `hemera.domain.modbus.model` decodes a window with the
model's own `event_codes:` table. A Modbus `events` frame of a model without an event log stays in
the raw archive only (`events_translated` says which envelopes' event frames are decoded).

Registers: Modbus maps name their energy totals after the canonical channels (`group: energy`),
DLMS models list them under `registers:` (class 3 attribute 2 is the value; the model's scaler is
applied, as for the load profile). Register frames carry no capture time: a reading is dated by
the envelope's `collected_at`, to the second, like instantaneous values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from hemera.domain.dlms.axdr import decode, decode_datetime
from hemera.domain.dlms.model import DlmsMeterModel, EventCode, load_dlms_model
from hemera.domain.envelope import DlmsFrame, Envelope, FrameKind, ModbusFrame, Protocol
from hemera.domain.errors import MalformedEnvelope, MalformedFrame, TopicMismatch, UnknownMeterModel
from hemera.domain.meter_events import EventType, MeterEvent, Subject
from hemera.domain.modbus.model import ModbusMeterModel, decode_event_window, load_model
from hemera.domain.modbus.registers import scaled
from hemera.domain.modbus_readout import group_registers
from hemera.domain.readings import CHANNEL_UNITS, Channel, Unit
from hemera.domain.registers import RegisterReading
from hemera.domain.tenancy import validate_id

# IDIS event codes (DLMS UA 1000-1 event log objects as profiled by IDIS), the default of every
# DLMS model: standard event log 1/2 power down/up, 5 clock adjusted (entry stamped with the new
# time), 6 clock invalid (the clock lost its time: a reset); fraud detection log 40/41 terminal
# cover, 44/45 meter cover, 42/43 strong DC (magnetic) field; disconnector control log 59/60
# remote disconnect/reconnect; power quality log 82/83/84 missing voltage L1/L2/L3 (a phase
# lost) and 85/86/87 voltage L1/L2/L3 normal (restored). Known codes of no canonical type:
# 76-78 / 79-81 under / over voltage L1-L3 (the under/over-voltage alarms judge measured
# voltages against the tenant's band, a meter's own threshold crossing is not that), 88 phase
# sequence reversal, 89 missing neutral, 255 event log cleared. IDIS has no reverse-energy
# code: a model file states its maker's (`event_codes:`).
IDIS_EVENT_CODES: Mapping[int, EventCode] = {
    1: EventCode(type=EventType.POWER_DOWN),
    2: EventCode(type=EventType.POWER_UP),
    5: EventCode(type=EventType.CLOCK_ADJUSTED),
    6: EventCode(type=EventType.CLOCK_RESET),
    40: EventCode(type=EventType.COVER_OPEN, cover="terminal"),
    41: EventCode(type=EventType.COVER_CLOSED, cover="terminal"),
    42: EventCode(type=EventType.MAGNETIC_TAMPER),
    43: EventCode(type=EventType.MAGNETIC_TAMPER_CLEARED),
    44: EventCode(type=EventType.COVER_OPEN, cover="meter"),
    45: EventCode(type=EventType.COVER_CLOSED, cover="meter"),
    59: EventCode(type=EventType.RELAY_OPEN),
    60: EventCode(type=EventType.RELAY_CLOSED),
    **dict.fromkeys(range(76, 82), EventCode(type=None)),  # under/over voltage L1-L3
    82: EventCode(type=EventType.PHASE_LOSS, phase=1),
    83: EventCode(type=EventType.PHASE_LOSS, phase=2),
    84: EventCode(type=EventType.PHASE_LOSS, phase=3),
    85: EventCode(type=EventType.PHASE_RESTORED, phase=1),
    86: EventCode(type=EventType.PHASE_RESTORED, phase=2),
    87: EventCode(type=EventType.PHASE_RESTORED, phase=3),
    88: EventCode(type=None),
    89: EventCode(type=None),
    255: EventCode(type=None),
}


def event_codes(model: DlmsMeterModel) -> Mapping[int, EventCode]:
    """The code table of a DLMS model: the IDIS defaults, the model's own codes winning."""
    return {**IDIS_EVENT_CODES, **model.event_codes}


# Energy units a register may be stated in, and the power of ten to the canonical kWh / kvarh.
_ENERGY_UNITS: Mapping[str, tuple[Unit, int]] = {
    "Wh": (Unit.KWH, -3),
    "kWh": (Unit.KWH, 0),
    "varh": (Unit.KVARH, -3),
    "kvarh": (Unit.KVARH, 0),
}
_DLMS_VALUE_ATTRIBUTE = 2


def events_translated(envelope: Envelope) -> bool:
    """Whether the envelope's `events` frames are decoded (DLMS, Modbus models with an event log)
    or kept raw only (Modbus models without one)."""
    if envelope.protocol is Protocol.MODBUS:
        try:
            return load_model(envelope.model).event_log is not None
        except UnknownMeterModel:
            return False  # the envelope is rejected for its model, not for its events
    return envelope.protocol is Protocol.DLMS


def _modbus_events(envelope: Envelope, frames: Sequence[object]) -> list[MeterEvent]:
    """The entries of Modbus event-log windows, each frame a window read at the model's window
    address (whole records); an entry read twice (windows overlap at their newest second) once."""
    model = load_model(envelope.model)
    log = model.event_log
    assert log is not None  # events_translated
    events: dict[str, MeterEvent] = {}
    for frame in frames:
        if not isinstance(frame, ModbusFrame):
            raise MalformedFrame("a modbus envelope carries modbus frames only")
        if frame.address != log.window_address or frame.count > log.window_registers:
            raise MalformedFrame(
                f"events frame {frame.address}+{frame.count} is not the event-log window of {model.model}"
            )
        try:
            registers = frame.registers()
        except ValueError as exc:
            raise MalformedFrame(str(exc)) from exc
        for event in decode_event_window(model, envelope.meter, envelope.device, registers):
            events.setdefault(event.event_id, event)
    return sorted(events.values(), key=lambda e: (e.at, e.type.value))


def decode_meter_events(envelope: Envelope) -> list[MeterEvent]:
    """The meter events of an envelope's `events` frames (DLMS event logs, Modbus event-log
    windows: `_modbus_events`), oldest first.

    Each entry is `MeterEvent(subject meter, the envelope's meter, reported by its device)`, dated
    by the meter's own capture time. Raises `MalformedFrame` for a log the model does not have, a
    buffer that is not an array of (clock, code[, duration]) structures, or a bad clock.
    """
    frames = [f for f in envelope.frames if f.kind is FrameKind.EVENTS]
    if not frames or not events_translated(envelope):
        return []
    if envelope.protocol is Protocol.MODBUS:
        return _modbus_events(envelope, frames)
    model = load_dlms_model(envelope.model)
    logs = {(spec.obis, spec.class_id): name for name, spec in model.events.items()}
    codes = event_codes(model)
    events: list[MeterEvent] = []
    for frame in frames:
        if not isinstance(frame, DlmsFrame):
            raise MalformedFrame("a dlms envelope carries dlms frames only")
        log = logs.get((frame.obis, frame.class_id))
        if log is None or frame.attribute != 2:
            raise MalformedFrame(
                f"{frame.obis}/{frame.class_id}/{frame.attribute} is not an event log buffer of model {model.model}"
            )
        events += _log_entries(envelope, log, frame.raw(), codes)
    return sorted(events, key=lambda e: (e.at, e.type.value))


def _log_entries(
    envelope: Envelope, log: str, data: bytes, codes: Mapping[int, EventCode]
) -> list[MeterEvent]:
    rows = decode(data)
    if not isinstance(rows, list):
        raise MalformedFrame(f"event log {log}: the buffer is not an A-XDR array")
    events: list[MeterEvent] = []
    for index, row in enumerate(rows):
        if not isinstance(row, tuple) or len(row) not in (2, 3):
            raise MalformedFrame(f"event log {log}, entry {index}: not a (clock, code[, duration]) structure")
        if not isinstance(row[0], bytes):
            raise MalformedFrame(f"event log {log}, entry {index}: the clock is not a date-time")
        at = decode_datetime(row[0]).astimezone(UTC)
        code = row[1]
        if isinstance(code, bool) or not isinstance(code, int):
            raise MalformedFrame(f"event log {log}, entry {index}: the event code is not an integer")
        meaning = codes.get(code)
        if meaning is None or meaning.type is None:
            continue
        kind = meaning.type
        detail: dict[str, Any] = {"log": log, **meaning.detail()}
        if len(row) == 3:
            duration = row[2]
            if isinstance(duration, bool) or not isinstance(duration, int) or duration < 0:
                raise MalformedFrame(
                    f"event log {log}, entry {index}: the duration is not a count of seconds"
                )
            detail["duration_s"] = duration
        events.append(
            MeterEvent(Subject.METER, envelope.meter, envelope.device, kind, at, code=code, detail=detail)
        )
    return events


# --- registers -------------------------------------------------------------------------------------
def decode_registers(envelope: Envelope) -> list[RegisterReading]:
    """The energy registers of an envelope's `registers` frames, on the secondary side (as the
    meter counted them; see `registers_on_primary_side`), in canonical kWh / kvarh."""
    frames = [f for f in envelope.frames if f.kind is FrameKind.REGISTERS]
    if not frames:
        return []
    at = envelope.collected_at.astimezone(UTC).replace(microsecond=0)
    if envelope.protocol is Protocol.MODBUS:
        values = _modbus_registers(load_model(envelope.model), frames)
    elif envelope.protocol is Protocol.DLMS:
        values = _dlms_registers(load_dlms_model(envelope.model), frames)
    else:
        raise MalformedFrame(f"register frames over {envelope.protocol} are not translated")
    return [RegisterReading(envelope.meter, channel, at, value) for channel, value in values.items()]


def registers_on_primary_side(
    readings: Sequence[RegisterReading], multiplier: Decimal
) -> list[RegisterReading]:
    """Scale by the meter's CT x VT ratio, like interval values (energy is V x I x t)."""
    if multiplier == 1:
        return list(readings)
    return [replace(r, value=r.value * multiplier) for r in readings]


def _channel(name: str, unit: str | None) -> tuple[Channel, int] | None:
    """The canonical channel a map entry feeds and the power of ten to its unit; None when the
    entry is not a channel's total (tariff registers, maximum demand, net energy)."""
    try:
        channel = Channel(name)
    except ValueError:
        return None
    canonical = _ENERGY_UNITS.get(unit or "")
    if canonical is None or canonical[0] is not CHANNEL_UNITS[channel]:
        raise MalformedFrame(f"map gives {unit!r} for register {name}, which counts {CHANNEL_UNITS[channel]}")
    return channel, canonical[1]


def _modbus_registers(model: ModbusMeterModel, frames: Sequence[object]) -> dict[Channel, Decimal]:
    values: dict[Channel, Decimal] = {}
    for name, spec, raw in group_registers(model, frames, "energy"):
        target = _channel(name, spec.unit)
        if target is not None:
            values[target[0]] = scaled(raw, spec.scaler + target[1])
    return values


def _dlms_registers(model: DlmsMeterModel, frames: Sequence[object]) -> dict[Channel, Decimal]:
    by_object = {(spec.obis, spec.class_id): (name, spec) for name, spec in model.registers.items()}
    values: dict[Channel, Decimal] = {}
    for frame in frames:
        if not isinstance(frame, DlmsFrame):
            raise MalformedFrame("a dlms envelope carries dlms frames only")
        if frame.attribute != _DLMS_VALUE_ATTRIBUTE:
            continue  # scaler_unit, status, capture time: the model's scaler is the contract
        try:
            name, spec = by_object[(frame.obis, frame.class_id)]
        except KeyError:
            raise MalformedFrame(
                f"{frame.obis}/{frame.class_id} is not a register of model {model.model}"
            ) from None
        target = _channel(name, spec.unit)
        if target is None:
            continue
        value = decode(frame.raw())
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedFrame(f"{frame.obis}: register value is not an integer")
        values[target[0]] = scaled(value, (spec.scaler or 0) + target[1])
    return values


# --- RTU events (`hemera/<tenant>/<device>/up/events`) ----------------------------------------------
RTU_EVENT_SCHEMA = "hemera.rtu-event/1"
RTU_EVENTS_TOPIC_SUFFIX = "up/events"

# The agent's event types and what they are canonically; None: an acknowledged end of an episode
# (its start was the event), stored nowhere. `low_signal` / `high_temperature` are the RTU's own
# alarms from its modem and sensor.
_RTU_TYPES: Mapping[str, EventType | None] = {
    "buffer_overflow": EventType.RTU_BUFFER_OVERFLOW,
    "low_signal": EventType.RTU_LOW_SIGNAL,
    "high_temperature": EventType.RTU_HIGH_TEMPERATURE,
    "meter_read_failed": EventType.METER_READ_FAILED,
    "meter_garbage": EventType.METER_READ_FAILED,  # an answer the model does not allow: a failed read
    "buffer_recovered": None,
    "meter_recovered": None,
}
# An RTU event is a small document; its detail beyond this is not an event's business.
MAX_RTU_EVENT_BYTES = 8 * 1024


class RtuEventDocument(BaseModel):
    """`hemera.rtu-event/1` as the agent publishes it (`hemera_agent.rtu_messages.RtuEvent`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["hemera.rtu-event/1"] = Field(alias="schema")
    tenant: str
    device: str
    at: AwareDatetime
    type: str
    meter: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


def is_rtu_events_topic(topic: str) -> bool:
    return topic.endswith("/" + RTU_EVENTS_TOPIC_SUFFIX)


def parse_rtu_event(payload: bytes, tenant_id: str, device_id: str) -> RtuEventDocument:
    """Validate an RTU event published on `hemera/<tenant_id>/<device_id>/up/events`.

    Raises `MalformedEnvelope` (not JSON, not the schema, an unknown type, too large) or
    `TopicMismatch` (the document names another tenant or device than the topic)."""
    if len(payload) > MAX_RTU_EVENT_BYTES:
        raise MalformedEnvelope(f"an RTU event is at most {MAX_RTU_EVENT_BYTES} bytes, got {len(payload)}")
    try:
        document = RtuEventDocument.model_validate(json.loads(payload))
        if document.meter is not None:
            validate_id(document.meter, "meter")
    except (ValueError, ValidationError) as exc:
        raise MalformedEnvelope(f"not a {RTU_EVENT_SCHEMA} document: {exc}") from exc
    if document.type not in _RTU_TYPES:
        raise MalformedEnvelope(f"unknown RTU event type {document.type!r}")
    if (document.tenant, document.device) != (tenant_id, device_id):
        raise TopicMismatch(
            f"event says {document.tenant}/{document.device}, published on {tenant_id}/{device_id}"
        )
    return document


def rtu_meter_event(document: RtuEventDocument) -> MeterEvent | None:
    """The canonical event of an RTU event (None for the end of an episode). A meter read failure
    is about the meter (subject meter); the RTU's own conditions are about the RTU."""
    kind = _RTU_TYPES[document.type]
    if kind is None:
        return None
    about_meter = kind is EventType.METER_READ_FAILED and document.meter is not None
    detail = dict(document.detail)
    if document.type == "meter_garbage":
        detail.setdefault("answer", "garbage")
    return MeterEvent(
        subject=Subject.METER if about_meter else Subject.RTU,
        subject_id=document.meter if about_meter and document.meter else document.device,
        device_id=document.device,
        type=kind,
        at=document.at.astimezone(UTC),
        detail=detail,
    )


def reported_duration(event: MeterEvent) -> timedelta | None:
    """The outage duration a power-up entry reports (IDIS power-failure log), if any."""
    seconds = event.detail.get("duration_s")
    return timedelta(seconds=seconds) if isinstance(seconds, int) else None
