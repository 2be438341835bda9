"""The Modbus event log of the hx300 and mx40 maps: the `event_log:` / `event_codes:` sections are
validated, and hand-made windows (words written out by hand, not with our encoder) decode to the
canonical meter events the DLMS logs give, with a malformed window rejected as `MalformedFrame`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hemera.domain.envelope import FrameKind, ModbusFrame, Protocol, build_envelope
from hemera.domain.errors import MalformedFrame
from hemera.domain.events_decode import decode_meter_events, events_translated
from hemera.domain.meter_events import EventType, Subject
from hemera.domain.modbus.model import ModbusMeterModel, decode_event_window, load_model
from hemera.domain.modbus.registers import encode_value

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
EPOCH = int(T0.timestamp())  # 1795183200 = 0x6B00_5260
HX300, MX40 = load_model("hx300"), load_model("mx40")
METER_EVENT_TYPES = {
    EventType.POWER_DOWN,
    EventType.POWER_UP,
    EventType.COVER_OPEN,
    EventType.COVER_CLOSED,
    EventType.MAGNETIC_TAMPER,
    EventType.MAGNETIC_TAMPER_CLEARED,
    EventType.PHASE_LOSS,
    EventType.PHASE_RESTORED,
    EventType.REVERSE_ENERGY,
    EventType.REVERSE_ENERGY_CLEARED,
    EventType.CLOCK_RESET,
    EventType.CLOCK_ADJUSTED,
    EventType.RELAY_OPEN,
    EventType.RELAY_CLOSED,
}


def hx300_record(epoch: int, code: int, detail: int = 0) -> list[int]:
    """hx300: u32 time stamp, u16 code, u32 detail, most significant word first ("ABCD")."""
    return [epoch >> 16, epoch & 0xFFFF, code, detail >> 16, detail & 0xFFFF]


def mx40_record(epoch: int, code: int, detail: int = 0) -> list[int]:
    """mx40: u16 code, then u32 time stamp and u32 detail least significant word first ("CDAB")."""
    return [code, epoch & 0xFFFF, epoch >> 16, detail & 0xFFFF, detail >> 16, 0]


def hx300_envelope(*frames: tuple[int, list[int]], model: str = "hx300") -> Any:
    return build_envelope(
        tenant="acme",
        device="rtu-1",
        meter="m-1",
        model=model,
        protocol=Protocol.MODBUS,
        seq=7,
        collected_at=T0 + timedelta(hours=1),
        frames=[
            ModbusFrame(
                kind=FrameKind.EVENTS,
                unit_id=1,
                function=3,
                address=address,
                count=len(words),
                data="".join(f"{w:04x}" for w in words),
            )
            for address, words in frames
        ],
    )


# --- the maps ------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [HX300, MX40], ids=["hx300", "mx40"])
def test_both_maps_code_every_meter_event_type_and_read_a_window_in_one_request(model):
    assert model.event_log is not None
    assert model.event_log.window_registers <= 125
    assert {spec.type for spec in model.event_codes.values()} - {None} == METER_EVENT_TYPES
    # the detail meanings the cloud relies on
    details = {spec.type: spec.detail for spec in model.event_codes.values()}
    assert details[EventType.POWER_UP] == "duration_s"
    assert details[EventType.PHASE_LOSS] == details[EventType.PHASE_RESTORED] == "phase"


def test_the_window_registers_of_the_hx300_sit_after_its_load_profile():
    log = HX300.event_log
    assert log is not None
    assert (log.cursor_address, log.window_address, log.window_registers) == (400, 410, 120)
    assert MX40.event_log is not None and MX40.event_log.window_address == 4610


def _hx300_document(**changes: Any) -> dict[str, Any]:
    document = HX300.model_dump(mode="json")
    for path, value in changes.items():
        target = document
        *parents, leaf = path.split("__")
        for key in parents:
            target = target[key]
        if value is None:
            del target[leaf]
        else:
            target[leaf] = value
    return document


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"event_log__records_per_window": 26}, "one Modbus read"),
        ({"event_log__window_address": 250}, "overlaps another register"),  # the LP window
        ({"event_log__cursor_address": 120}, "overlaps another register"),
        ({"event_log__code": {"offset": 1, "type": "u16"}}, "overlap"),
        ({"event_log__detail": {"offset": 3, "type": "i32"}}, "unsigned"),
        ({"event_log__timestamp": {"offset": 0, "type": "u16"}}, "u32 epoch"),
        ({"event_codes": {}}, "come together"),
        ({"event_codes__10": {"type": "cover_open", "detail": "duration_s"}}, "does not belong"),
        ({"event_codes__20": {"type": "power_down", "cover": "meter"}}, "only cover events"),
        ({"event_codes__40": {"type": "rtu_low_signal"}}, "RTU's event"),
        ({"event_codes__70000": {"type": "power_down"}}, "fit the log's u16"),
    ],
)
def test_an_inconsistent_event_log_map_is_refused(changes, words):
    with pytest.raises(ValidationError, match=words):
        ModbusMeterModel.model_validate(_hx300_document(**changes))


def test_a_map_without_an_event_log_is_still_valid():
    model = ModbusMeterModel.model_validate(_hx300_document(event_log=None, event_codes=None))
    assert model.event_log is None and model.event_codes == {}
    with pytest.raises(MalformedFrame, match="no event log"):
        decode_event_window(model, "m-1", "rtu-1", hx300_record(EPOCH, 1))


# --- decoding ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code, detail, expected_type, expected_detail",
    [
        (1, 0, EventType.POWER_DOWN, {}),
        (2, 2700, EventType.POWER_UP, {"duration_s": 2700}),
        (2, 90_000, EventType.POWER_UP, {"duration_s": 90_000}),  # 25 h: needs the u32
        (3, 946_684_800, EventType.CLOCK_RESET, {"clock_after": "2000-01-01T00:00:00+00:00"}),
        (4, EPOCH - 40, EventType.CLOCK_ADJUSTED, {"clock_before": "2026-11-20T13:59:20+00:00"}),
        (4, 0, EventType.CLOCK_ADJUSTED, {}),  # the meter did not know its old time
        (10, 0, EventType.COVER_OPEN, {"cover": "terminal"}),
        (11, 0, EventType.COVER_CLOSED, {"cover": "terminal"}),
        (12, 0, EventType.COVER_OPEN, {"cover": "meter"}),
        (13, 0, EventType.COVER_CLOSED, {"cover": "meter"}),
        (14, 0, EventType.MAGNETIC_TAMPER, {}),
        (15, 0, EventType.MAGNETIC_TAMPER_CLEARED, {}),
        (20, 2, EventType.PHASE_LOSS, {"phase": 2}),
        (21, 3, EventType.PHASE_RESTORED, {"phase": 3}),
        (22, 0, EventType.REVERSE_ENERGY, {}),
        (23, 0, EventType.REVERSE_ENERGY_CLEARED, {}),
        (30, 0, EventType.RELAY_OPEN, {}),
        (31, 0, EventType.RELAY_CLOSED, {}),
    ],
)
def test_each_hx300_code_decodes_to_its_canonical_event(code, detail, expected_type, expected_detail):
    (event,) = decode_event_window(HX300, "m-1", "rtu-1", hx300_record(EPOCH, code, detail))
    assert (event.type, event.at, event.code, event.detail) == (expected_type, T0, code, expected_detail)
    assert (event.subject, event.subject_id, event.device_id) == (Subject.METER, "m-1", "rtu-1")


@pytest.mark.parametrize(
    "code, detail, expected_type, expected_detail",
    [
        (0x0101, 0, EventType.POWER_DOWN, {}),
        (0x0102, 0x0001_0000, EventType.POWER_UP, {"duration_s": 65536}),
        (0x0201, 0, EventType.COVER_OPEN, {"cover": "terminal"}),
        (0x0301, 1, EventType.PHASE_LOSS, {"phase": 1}),
        (0x0303, 0, EventType.REVERSE_ENERGY, {}),
        (0x0401, 946_684_800, EventType.CLOCK_RESET, {"clock_after": "2000-01-01T00:00:00+00:00"}),
        (0x0501, 0, EventType.RELAY_OPEN, {}),
    ],
)
def test_mx40_records_are_code_first_and_cdab(code, detail, expected_type, expected_detail):
    (event,) = decode_event_window(MX40, "m-2", "rtu-1", mx40_record(EPOCH, code, detail))
    assert (event.type, event.at, event.code, event.detail) == (expected_type, T0, code, expected_detail)


def test_empty_slots_end_the_window_and_a_log_cleared_entry_is_skipped():
    words = hx300_record(EPOCH, 255) + hx300_record(EPOCH + 60, 1) + [0] * 5 * 22
    events = decode_event_window(HX300, "m-1", "rtu-1", words)
    assert [(e.type, e.at) for e in events] == [(EventType.POWER_DOWN, T0 + timedelta(minutes=1))]
    assert decode_event_window(HX300, "m-1", "rtu-1", [0] * 120) == []


@pytest.mark.parametrize(
    "words, message",
    [
        (hx300_record(EPOCH, 1)[:4], "not whole 5-register records"),
        ([0] * 5 + hx300_record(EPOCH, 1), "follows an empty slot"),
        (hx300_record(EPOCH, 99), "code 99 is not in model hx300"),
        (hx300_record(EPOCH, 20, 4), "phase 4 is not 1, 2 or 3"),
        (hx300_record(EPOCH, 21, 0), "phase 0"),
    ],
)
def test_a_malformed_window_is_a_malformed_frame(words, message):
    with pytest.raises(MalformedFrame, match=message):
        decode_event_window(HX300, "m-1", "rtu-1", words)


# --- envelopes -----------------------------------------------------------------------------------
def test_modbus_envelopes_of_models_with_an_event_log_are_translated():
    envelope = hx300_envelope((410, hx300_record(EPOCH, 1)))
    assert events_translated(envelope)
    assert events_translated(hx300_envelope((4610, mx40_record(EPOCH, 0x0101)), model="mx40"))
    # an unknown model is rejected for its model, not here
    assert not events_translated(hx300_envelope((410, hx300_record(EPOCH, 1)), model="zz900"))


def test_an_envelope_of_windows_decodes_to_its_events_once_each_oldest_first():
    # Given two windows that overlap at their newest second (the agent continued from it)
    down, up = T0, T0 + timedelta(minutes=45)
    first = hx300_record(EPOCH, 1) + hx300_record(EPOCH + 2700, 2, 2700)
    second = hx300_record(EPOCH + 2700, 2, 2700) + hx300_record(EPOCH + 3000, 10) + [0] * 5
    envelope = hx300_envelope((410, first), (410, second))
    # When the envelope is decoded
    events = decode_meter_events(envelope)
    # Then each entry is one event of the meter, the power up with the outage's duration
    assert [(e.type, e.at) for e in events] == [
        (EventType.POWER_DOWN, down),
        (EventType.POWER_UP, up),
        (EventType.COVER_OPEN, T0 + timedelta(minutes=50)),
    ]
    assert events[1].detail == {"duration_s": 2700}
    assert {e.device_id for e in events} == {"rtu-1"}


@pytest.mark.parametrize(
    "address, words",
    [
        (210, hx300_record(EPOCH, 1)),  # the load-profile window, not the event log's
        (410, [0] * 125),  # more than the window holds
        (410, hx300_record(EPOCH, 7)),  # a code the table does not list
    ],
)
def test_a_window_that_is_not_the_models_event_log_is_a_malformed_frame(address, words):
    with pytest.raises(MalformedFrame):
        decode_meter_events(hx300_envelope((address, words)))


@st.composite
def logged_entries(draw: st.DrawFn, model: ModbusMeterModel) -> list[tuple[int, int, int]]:
    """Up to a window of entries the model's table allows: (time stamp, code, detail)."""
    assert model.event_log is not None
    codes = sorted(model.event_codes)
    entries = []
    for _ in range(draw(st.integers(0, model.event_log.records_per_window))):
        code = draw(st.sampled_from(codes))
        kind = model.event_codes[code].detail
        detail = draw(st.integers(1, 3)) if kind == "phase" else draw(st.integers(0, 2**32 - 1))
        entries.append((draw(st.integers(1, 2**32 - 1)), code, detail))
    return entries


@pytest.mark.parametrize("model", [HX300, MX40], ids=["hx300", "mx40"])
@given(data=st.data())
def test_any_window_the_map_allows_decodes_to_its_entries_in_order(model, data):
    # Given entries laid into a window by the map (the simulator's way), empty slots after them
    entries = data.draw(logged_entries(model))
    log = model.event_log
    assert log is not None
    words: list[int] = []
    for stamp, code, detail in entries:
        record = [0] * log.record_size
        for spec, value in ((log.timestamp, stamp), (log.code, code), (log.detail, detail)):
            record[spec.offset : spec.offset + spec.width] = encode_value(value, spec.type, model.word_order)
        words += record
    words += [0] * (log.window_registers - len(words))
    # When it is decoded
    events = decode_event_window(model, "m-1", "rtu-1", words)
    # Then every entry of a canonical type is an event at its time stamp, in logging order
    typed = [(s, c) for s, c, _ in entries if model.event_codes[c].type is not None]
    assert [(int(e.at.timestamp()), e.code) for e in events] == typed
    assert [e.type for e in events] == [model.event_codes[c].type for _, c in typed]
