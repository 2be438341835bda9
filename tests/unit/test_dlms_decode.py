"""The cloud's DLMS decoding: A-XDR on hand-made bytes, the hd500 load profile, fuzzing."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hemera.domain.dlms.axdr import BitString, decode, decode_datetime
from hemera.domain.dlms.model import decode_load_profile_buffer, load_dlms_model
from hemera.domain.errors import MalformedFrame, UnknownMeterModel
from hemera.domain.modbus.model import load_model
from hemera.domain.readings import Channel, Unit
from tests.dlms_builders import hd500_buffer

MODEL = load_dlms_model("hd500")
# 2026-11-20 00:15:00 UTC as a COSEM date-time: year 07EA, Nov, 20th, Friday(5), 00:15:00.00,
# deviation 0, status 0.
CAPTURE_0015 = bytes.fromhex("07ea0b1405000f0000000000")
ROW = (
    "0205"  # structure of 5
    "090c" + CAPTURE_0015.hex() + "06000004d2"  # octet-string(12) clock; uint32 1234 Wh A+
    "0600000000"  # A- 0
    "06000001c8"  # R+ 456 varh
    "0600000000"  # R- 0
)


def test_hand_made_scalars_decode_to_their_values():
    # Given bytes written from the Blue Book's Data CHOICE tags
    cases = {
        "00": None,
        "0301": True,
        "0f85": -123,
        "1000ff": 255,
        "11ff": 255,
        "12ffff": 65535,
        "05fffffffe": -2,
        "06000004d2": 1234,
        "15000000174876e800": 100_000_000_000,
        "1601": 1,
        "0903010203": b"\x01\x02\x03",
        "0a026869": "hi",
        "170000803f"[0:2] + "3f800000": 1.0,
        "040a" + "ffc0": BitString(10, b"\xff\xc0"),
        "02020f00161e": (0, 30),  # scaler_unit: 10^0 Wh
    }
    for hexdata, expected in cases.items():
        # When decoded / Then the value is the one written
        assert decode(bytes.fromhex(hexdata)) == expected, hexdata


def test_long_form_lengths_are_read():
    # Given an octet-string of 200 bytes, whose length needs the 0x81 long form
    data = bytes.fromhex("0981c8") + bytes(200)
    # Then it decodes whole
    assert decode(data) == bytes(200)


def test_a_cosem_date_time_is_utc_plus_its_deviation():
    # Given 00:15 local with deviation -180 (UTC = local + deviation, Blue Book convention)
    raw = bytes.fromhex("07ea0b1405000f0000ff4c00")
    # Then the UTC moment is 21:15 the day before
    assert decode_datetime(raw) == datetime(2026, 11, 19, 21, 15, tzinfo=UTC)
    assert decode_datetime(CAPTURE_0015) == datetime(2026, 11, 20, 0, 15, tzinfo=UTC)
    # And "deviation not specified" (0x8000) is taken as UTC
    assert decode_datetime(bytes.fromhex("07ea0b1405000f00008000" + "00")) == datetime(
        2026, 11, 20, 0, 15, tzinfo=UTC
    )


def test_a_hand_made_load_profile_row_gives_four_channels_at_the_interval_start():
    # Given one row of the hd500 profile captured at 00:15 (clock = end of the interval)
    buffer = bytes.fromhex("0101" + ROW)
    # When decoded with the model
    readings = decode_load_profile_buffer(MODEL, "m-1", buffer)
    # Then the interval starts at 00:00 and values are kWh/kvarh after the scaler
    by_channel = {r.channel: r for r in readings}
    assert len(readings) == 4
    assert all(r.start == datetime(2026, 11, 20, 0, 0, tzinfo=UTC) for r in readings)
    assert by_channel[Channel.ACTIVE_IMPORT].value == Decimal("1.234")
    assert by_channel[Channel.ACTIVE_IMPORT].unit is Unit.KWH
    assert by_channel[Channel.ACTIVE_IMPORT].raw_value == 1234
    assert by_channel[Channel.REACTIVE_IMPORT].value == Decimal("0.456")
    assert by_channel[Channel.REACTIVE_IMPORT].unit is Unit.KVARH


def test_a_day_of_rows_gives_96_intervals_in_order():
    first = datetime(2026, 11, 20, 3, 15, tzinfo=UTC)
    buffer = hd500_buffer(first, [(1000 + i, 0, 10, 0) for i in range(96)])
    readings = [
        r for r in decode_load_profile_buffer(MODEL, "m-1", buffer) if r.channel is Channel.ACTIVE_IMPORT
    ]
    assert [r.raw_value for r in readings] == [1000 + i for i in range(96)]
    assert readings[0].start == datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    assert readings[-1].start == datetime(2026, 11, 21, 2, 45, tzinfo=UTC)


def test_an_empty_profile_gives_no_readings():
    assert decode_load_profile_buffer(MODEL, "m-1", bytes.fromhex("0100")) == []


@pytest.mark.parametrize(
    ("hexdata", "why"),
    [
        ("", "truncated"),
        ("0101", "items in"),  # an array of one item and no item
        ("0203" + ROW[4:], "after the A-XDR value"),  # a structure of 3 followed by 2 more values
        ("0101" + ROW + "00", "after"),
        ("06000004d2", "array"),
        ("0101" + "0204" + ROW[4:][:-10], "structure of 5"),
        ("0101" + ROW.replace("06000004d2", "0a0131", 1), "not an integer"),
        ("0101" + ROW.replace("090c07ea0b14", "090c07ea0d14", 1), "not a specified time"),
        ("ff", "unknown A-XDR tag"),
        ("0184ffffffff", "items in"),
    ],
)
def test_defective_buffers_raise_malformed_frame(hexdata, why):
    with pytest.raises(MalformedFrame, match=why):
        decode_load_profile_buffer(MODEL, "m-1", bytes.fromhex(hexdata))


def test_deep_nesting_is_refused_not_a_recursion_error():
    with pytest.raises(MalformedFrame, match="nested"):
        decode(bytes.fromhex("0101" * 500 + "00"))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_malformed_frame(data):
    with contextlib.suppress(MalformedFrame):
        decode_load_profile_buffer(MODEL, "m-1", data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=200))
def test_mutated_valid_buffers_raise_only_malformed_frame(noise, at):
    # Given a valid buffer with bytes overwritten somewhere
    valid = bytearray(hd500_buffer(datetime(2026, 11, 20, 0, 15, tzinfo=UTC), [(1, 2, 3, 4)] * 3))
    at = at % len(valid)
    mutated = bytes(valid[:at]) + noise + bytes(valid[at + len(noise) :])
    with contextlib.suppress(MalformedFrame):
        decode_load_profile_buffer(MODEL, "m-1", mutated)


def test_the_dlms_model_is_not_a_modbus_model_and_unknown_models_are_typed():
    assert MODEL.load_profile.obis == "1.0.99.1.0.255"
    assert [c.channel for c in MODEL.load_profile.columns if c.role == "channel"] == list(Channel)
    with pytest.raises(UnknownMeterModel):
        load_model("hd500")  # the Modbus loader does not take a DLMS map
    with pytest.raises(UnknownMeterModel):
        load_dlms_model("hx300")  # nor the DLMS loader a Modbus one
    with pytest.raises(UnknownMeterModel):
        load_dlms_model("../hd500")
