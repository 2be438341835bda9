"""Register codec and load-profile decoding, checked with bytes alone (no transport)."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hemera.domain.errors import MalformedFrame
from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera.domain.modbus.registers import WIDTH, RegisterType, WordOrder, decode_value, encode_value, scaled
from hemera.domain.readings import Channel, Unit

VALUES: dict[RegisterType, st.SearchStrategy[int | float]] = {
    RegisterType.U16: st.integers(0, 2**16 - 1),
    RegisterType.I16: st.integers(-(2**15), 2**15 - 1),
    RegisterType.U32: st.integers(0, 2**32 - 1),
    RegisterType.I32: st.integers(-(2**31), 2**31 - 1),
    RegisterType.U64: st.integers(0, 2**64 - 1),
    RegisterType.I64: st.integers(-(2**63), 2**63 - 1),
    RegisterType.F32: st.floats(width=32, allow_nan=True, allow_infinity=True),
}


def registers_from_hex(text: str) -> list[int]:
    raw = bytes.fromhex(text.replace(" ", ""))
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


@pytest.mark.parametrize("order", list(WordOrder))
@pytest.mark.parametrize("kind", list(RegisterType))
@given(data=st.data())
def test_every_type_round_trips_in_every_word_order(
    kind: RegisterType, order: WordOrder, data: st.DataObject
) -> None:
    # Given any value the type can hold, and some registers before it in the block
    value = data.draw(VALUES[kind])
    padding = data.draw(st.lists(st.integers(0, 0xFFFF), max_size=3))

    # When it is encoded as a meter would hold it and decoded from the block
    words = encode_value(value, kind, order)
    decoded = decode_value(padding + words + [0xFFFF], len(padding), kind, order)

    # Then it is the same value, in WIDTH 16-bit registers
    assert len(words) == WIDTH[kind]
    assert all(0 <= w <= 0xFFFF for w in words)
    if isinstance(value, float) and math.isnan(value):
        assert isinstance(decoded, float) and math.isnan(decoded)
    else:
        assert decoded == value


@pytest.mark.parametrize("kind", [k for k in RegisterType if WIDTH[k] > 1])
@given(data=st.data())
def test_little_word_order_is_big_word_order_with_the_words_reversed(
    kind: RegisterType, data: st.DataObject
) -> None:
    value = data.draw(VALUES[kind])
    assert encode_value(value, kind, WordOrder.LITTLE) == list(
        reversed(encode_value(value, kind, WordOrder.BIG))
    )


def test_hand_made_words_decode_in_both_orders() -> None:
    # 0x12345678 as ABCD (big) and CDAB (little); -2 as i32; 1.5 as IEEE-754 f32 0x3FC00000
    assert decode_value([0x1234, 0x5678], 0, RegisterType.U32, WordOrder.BIG) == 0x12345678
    assert decode_value([0x5678, 0x1234], 0, RegisterType.U32, WordOrder.LITTLE) == 0x12345678
    assert decode_value([0xFFFF, 0xFFFE], 0, RegisterType.I32, WordOrder.BIG) == -2
    assert decode_value([0x3FC0, 0x0000], 0, RegisterType.F32, WordOrder.BIG) == 1.5
    assert struct.pack(">f", 1.5).hex() == "3fc00000"


# One hx300 load-profile record built by hand, byte by byte (11 registers, big-endian words):
#   timestamp u32  69A5 97E0  = 1772460000 = 2026-03-02T14:00:00Z
#   A+  u32 Wh     0002 D662  = 185954 Wh  = 185.954 kWh
#   A-  u32 Wh     0000 0000
#   R+  u32 varh   0000 B60C  = 46604 varh = 46.604 kvarh
#   R-  u32 varh   0000 0000
#   status u16     0001       = power outage in the interval
RECORD = "69A5 97E0  0002 D662  0000 0000  0000 B60C  0000 0000  0001"


def test_a_hand_made_hx300_record_decodes_to_the_right_kwh() -> None:
    model = load_model("hx300")

    readings = decode_load_profile_window(model, "sul-m-1001", registers_from_hex(RECORD))

    by_channel = {r.channel: r for r in readings}
    assert by_channel[Channel.ACTIVE_IMPORT].value == Decimal("185.954")
    assert by_channel[Channel.ACTIVE_IMPORT].unit is Unit.KWH
    assert by_channel[Channel.ACTIVE_IMPORT].raw_value == 185954
    assert by_channel[Channel.ACTIVE_EXPORT].value == 0
    assert by_channel[Channel.REACTIVE_IMPORT].value == Decimal("46.604")
    assert by_channel[Channel.REACTIVE_IMPORT].unit is Unit.KVARH
    assert {r.start for r in readings} == {datetime(2026, 3, 2, 14, 0, tzinfo=UTC)}
    assert {r.meter_flags for r in readings} == {1}
    assert {r.length_minutes for r in readings} == {15}


def test_empty_slots_of_a_window_are_skipped() -> None:
    model = load_model("hx300")
    window = registers_from_hex(RECORD) + [0] * (model.load_profile.window_registers - 11)

    readings = decode_load_profile_window(model, "sul-m-1001", window)

    assert len(readings) == 4  # one record x four channels; ten empty slots ignored


def test_a_hand_made_energy_register_reads_in_hundredths_of_kwh() -> None:
    model = load_model("hx300")
    spec = model.registers["active_import"]
    raw = decode_value(registers_from_hex("0000 48D2"), 0, spec.type, model.word_order)
    assert scaled(raw, spec.scaler) == Decimal("186.42")


def test_a_truncated_window_is_a_malformed_frame() -> None:
    model = load_model("hx300")
    with pytest.raises(MalformedFrame, match="whole 11-register records"):
        decode_load_profile_window(model, "sul-m-1001", registers_from_hex(RECORD)[:-1])


def test_a_value_cut_off_at_the_end_of_a_block_is_a_malformed_frame() -> None:
    with pytest.raises(MalformedFrame, match="needs 2 registers"):
        decode_value([0x1234], 0, RegisterType.U32, WordOrder.BIG)
    with pytest.raises(MalformedFrame, match="needs 4 registers"):
        decode_value([1, 2, 3, 4, 5], 2, RegisterType.U64, WordOrder.LITTLE)


def test_a_register_wider_than_16_bits_is_a_malformed_frame() -> None:
    with pytest.raises(MalformedFrame, match="16-bit"):
        decode_value([0x1_0000], 0, RegisterType.U16, WordOrder.BIG)


def test_a_value_that_does_not_fit_its_type_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(2**32, RegisterType.U32, WordOrder.BIG)
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(-1, RegisterType.U16, WordOrder.BIG)
