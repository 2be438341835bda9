"""The mx40 register map (a second maker: CDAB words, status-first 12-register records)."""

from datetime import UTC, datetime
from decimal import Decimal

from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera.domain.modbus.registers import RegisterType, WordOrder, decode_value
from hemera.domain.readings import Channel

MX40 = load_model("mx40")


def test_a_hand_made_cdab_record_decodes_to_kwh_and_kvarh() -> None:
    start = int(datetime(2026, 11, 20, 3, 15, tzinfo=UTC).timestamp())
    # status, timestamp (low word first), A+ = 0x0001_3039 Wh, A- = 0, R+ = 7 varh, R- = 0, reserved
    words = [0x0002, start & 0xFFFF, start >> 16, 0x3039, 0x0001, 0, 0, 7, 0, 0, 0, 0]

    readings = decode_load_profile_window(MX40, "m-1", words)

    by_channel = {r.channel: r for r in readings}
    assert by_channel[Channel.ACTIVE_IMPORT].value == Decimal("77.881")  # 0x13039 = 77881 Wh
    assert by_channel[Channel.REACTIVE_IMPORT].value == Decimal("0.007")
    assert by_channel[Channel.ACTIVE_EXPORT].value == 0
    assert by_channel[Channel.ACTIVE_IMPORT].start == datetime(2026, 11, 20, 3, 15, tzinfo=UTC)
    assert by_channel[Channel.ACTIVE_IMPORT].meter_flags == 2  # clock adjusted


def test_the_map_differs_from_the_hx300_where_makers_differ() -> None:
    hx300 = load_model("hx300")
    lp = MX40.load_profile
    assert MX40.word_order is WordOrder.LITTLE and hx300.word_order is WordOrder.BIG
    assert (lp.window_address, lp.records_per_window, lp.record_size) == (4100, 10, 12)
    assert lp.window_registers <= 125  # one Modbus read
    assert MX40.registers["active_import"].type is RegisterType.U64
    assert MX40.registers["net_active"].type is RegisterType.I32
    assert MX40.registers["active_power"].type is RegisterType.I32
    assert MX40.registers["relay"].access == "rw"


def test_a_64_bit_counter_and_a_signed_net_register_in_cdab() -> None:
    # 5_000_000_000 Wh does not fit 32 bits; CDAB puts the lowest word first
    words = [0xF200, 0x2A05, 0x0001, 0x0000]
    assert decode_value(words, 0, RegisterType.U64, WordOrder.LITTLE) == 5_000_000_000
    assert decode_value([0xFF85, 0xFFFF], 0, RegisterType.I32, WordOrder.LITTLE) == -123
