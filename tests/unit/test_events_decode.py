"""Decoding of event-log frames, register frames and RTU event messages into canonical events and
register readings (bytes built by hand in `tests/event_builders.py`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.domain.envelope import DlmsFrame, FrameKind, ModbusFrame, Protocol, build_envelope
from hemera.domain.errors import MalformedEnvelope, MalformedFrame, TopicMismatch
from hemera.domain.events_decode import (
    decode_meter_events,
    decode_registers,
    events_translated,
    parse_rtu_event,
    registers_on_primary_side,
    rtu_meter_event,
)
from hemera.domain.meter_events import EventType, Subject
from hemera.domain.readings import Channel
from tests.dlms_builders import hd500_frames_envelope
from tests.event_builders import (
    FRAUD_LOG,
    POWER_FAILURE_LOG,
    STANDARD_LOG,
    event_log_buffer,
    hd500_events_envelope,
    hd500_registers_envelope,
    mx40_registers_envelope,
    rtu_event_payload,
)

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
COLLECTED = datetime(2026, 11, 20, 15, 0, 30, 250000, tzinfo=UTC)


def test_dlms_event_logs_become_canonical_meter_events_in_time_order():
    # Given the power-failure log with a power down/up and the fraud log with a cover opened
    envelope = hd500_events_envelope(
        "acme",
        "rtu-1",
        "m-1",
        {
            POWER_FAILURE_LOG: event_log_buffer([(T0, 1), (T0 + timedelta(minutes=45), 2)]),
            FRAUD_LOG: event_log_buffer([(T0 + timedelta(minutes=10), 40)]),
        },
        COLLECTED,
    )
    # When the envelope is decoded
    events = decode_meter_events(envelope)
    # Then each entry is an event of the meter, reported by its RTU, at the meter's time stamp
    assert [(e.type, e.at, e.code) for e in events] == [
        (EventType.POWER_DOWN, T0, 1),
        (EventType.COVER_OPEN, T0 + timedelta(minutes=10), 40),
        (EventType.POWER_UP, T0 + timedelta(minutes=45), 2),
    ]
    assert {(e.subject, e.subject_id, e.device_id) for e in events} == {(Subject.METER, "m-1", "rtu-1")}
    assert events[1].detail == {"log": "fraud", "cover": "terminal"}


def test_an_entry_with_an_unmapped_code_is_skipped_and_a_reported_duration_is_kept():
    envelope = hd500_events_envelope(
        "acme",
        "rtu-1",
        "m-1",
        {
            STANDARD_LOG: event_log_buffer([(T0, 255)]),  # "event log cleared": no canonical type
            POWER_FAILURE_LOG: event_log_buffer([(T0, 2, 1800)]),  # power up after 30 minutes
        },
        COLLECTED,
    )
    (event,) = decode_meter_events(envelope)
    assert event.type is EventType.POWER_UP
    assert event.detail == {"log": "power_failure", "duration_s": 1800}


@pytest.mark.parametrize(
    ("obis", "data", "words"),
    [
        ("0.0.99.98.7.255", event_log_buffer([(T0, 1)]), "not an event log"),
        (FRAUD_LOG, bytes([0x02, 0x00]), "not an A-XDR array"),
        (FRAUD_LOG, bytes([0x01, 0x01, 0x02, 0x02, 0x11, 0x01, 0x11, 0x28]), "clock is not a date-time"),
        (FRAUD_LOG, event_log_buffer([(T0, 40)])[:-1], ""),  # truncated
    ],
)
def test_a_malformed_event_log_frame_is_a_malformed_frame(obis, data, words):
    envelope = hd500_events_envelope("acme", "rtu-1", "m-1", {obis: data}, COLLECTED)
    with pytest.raises(MalformedFrame, match=words or None):
        decode_meter_events(envelope)


def test_a_modbus_event_frame_outside_the_models_event_window_is_malformed():
    """mx40's event log is a window at 4610 (tests/unit/test_modbus_event_log.py decodes it): a
    frame at another address is not a log the model has, so the envelope is quarantined."""
    frame = ModbusFrame(kind=FrameKind.EVENTS, unit_id=1, function=3, address=900, count=1, data="0001")
    envelope = build_envelope(
        tenant="acme",
        device="rtu-1",
        meter="m-1",
        model="mx40",
        protocol=Protocol.MODBUS,
        seq=1,
        collected_at=COLLECTED,
        frames=[frame],
    )
    assert events_translated(envelope)
    with pytest.raises(MalformedFrame, match="event-log window"):
        decode_meter_events(envelope)


def test_hd500_energy_registers_are_decoded_in_kwh_at_the_collection_second():
    readings = decode_registers(hd500_registers_envelope("acme", "rtu-1", "m-1", COLLECTED))
    assert {r.channel: r.value for r in readings} == {
        Channel.ACTIVE_IMPORT: Decimal("5000"),
        Channel.ACTIVE_EXPORT: Decimal("1"),
        Channel.REACTIVE_IMPORT: Decimal("100"),
    }
    assert {r.at for r in readings} == {COLLECTED.replace(microsecond=0)}
    assert {r.meter_id for r in readings} == {"m-1"}


def test_mx40_energy_registers_follow_the_cdab_map_and_scale_to_the_primary_side():
    # Given an mx40 behind CTs of 400/5 (multiplier 80)
    readings = decode_registers(mx40_registers_envelope("acme", "rtu-1", "m-2", COLLECTED))
    primary = registers_on_primary_side(readings, Decimal(80))
    # Then the secondary values are the map's and the primary ones 80 times them
    assert {r.channel: r.value for r in readings} == {
        Channel.ACTIVE_IMPORT: Decimal("123456.789"),
        Channel.ACTIVE_EXPORT: Decimal("1.000"),
        Channel.REACTIVE_IMPORT: Decimal("5432.1"),
        Channel.REACTIVE_EXPORT: Decimal("0.7"),
    }
    assert {r.channel: r.value for r in primary}[Channel.ACTIVE_IMPORT] == Decimal("9876543.120")


def test_a_register_frame_of_an_object_the_model_lacks_is_malformed():
    frame = DlmsFrame(kind=FrameKind.REGISTERS, obis="1.0.9.8.0.255", class_id=3, attribute=2, data="1100")
    envelope = hd500_frames_envelope("acme", "rtu-1", "m-1", COLLECTED, [frame], 1)
    with pytest.raises(MalformedFrame, match="not a register of model hd500"):
        decode_registers(envelope)


def test_rtu_events_map_to_the_rtu_or_to_the_meter_they_concern():
    overflow = parse_rtu_event(
        rtu_event_payload("acme", "rtu-1", T0, "buffer_overflow", dropped=3), "acme", "rtu-1"
    )
    failed = parse_rtu_event(
        rtu_event_payload("acme", "rtu-1", T0, "meter_read_failed", "m-1", reason="timeout"), "acme", "rtu-1"
    )
    recovered = parse_rtu_event(
        rtu_event_payload("acme", "rtu-1", T0, "meter_recovered", "m-1"), "acme", "rtu-1"
    )
    first, second = rtu_meter_event(overflow), rtu_meter_event(failed)
    assert first is not None and second is not None
    assert (first.subject, first.subject_id, first.type, first.detail) == (
        Subject.RTU,
        "rtu-1",
        EventType.RTU_BUFFER_OVERFLOW,
        {"dropped": 3},
    )
    assert (second.subject, second.subject_id, second.device_id, second.type) == (
        Subject.METER,
        "m-1",
        "rtu-1",
        EventType.METER_READ_FAILED,
    )
    assert rtu_meter_event(recovered) is None  # the end of an episode is not an event type


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"not json", MalformedEnvelope),
        (rtu_event_payload("acme", "rtu-1", T0, "meter_exploded"), MalformedEnvelope),
        (rtu_event_payload("acme", "rtu-2", T0, "low_signal"), TopicMismatch),
        (rtu_event_payload("other", "rtu-1", T0, "low_signal"), TopicMismatch),
        (b'{"schema": "hemera.rtu-event/1"}', MalformedEnvelope),
    ],
)
def test_an_rtu_event_that_is_not_valid_or_not_the_publishers_is_rejected(payload, error):
    with pytest.raises(error):
        parse_rtu_event(payload, "acme", "rtu-1")
