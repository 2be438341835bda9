"""The hx300 register map decodes hand-made register blocks to the right canonical values."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hemera.domain.errors import MalformedFrame, UnknownMeterModel
from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera.domain.readings import Channel, Unit


def test_a_hand_made_record_decodes_to_kwh_and_kvarh():
    start = int(datetime(2026, 11, 20, 3, 15, tzinfo=UTC).timestamp())
    words = [start >> 16, start & 0xFFFF, 0, 12345, 0, 0, 0x0001, 0x0000, 0, 7, 0x0001]
    readings = decode_load_profile_window(load_model("hx300"), "m-1", words)
    by_channel = {r.channel: r for r in readings}
    assert by_channel[Channel.ACTIVE_IMPORT].value == Decimal("12.345")
    assert by_channel[Channel.ACTIVE_IMPORT].unit is Unit.KWH
    assert by_channel[Channel.REACTIVE_IMPORT].value == Decimal("65.536")  # 0x00010000 varh
    assert by_channel[Channel.REACTIVE_EXPORT].value == Decimal("0.007")
    assert by_channel[Channel.ACTIVE_IMPORT].start == datetime(2026, 11, 20, 3, 15, tzinfo=UTC)
    assert by_channel[Channel.ACTIVE_IMPORT].meter_flags == 1


def test_empty_slots_are_skipped_not_zero():
    assert decode_load_profile_window(load_model("hx300"), "m-1", [0] * 11) == []


def test_a_block_of_partial_records_is_malformed():
    with pytest.raises(MalformedFrame):
        decode_load_profile_window(load_model("hx300"), "m-1", [0] * 12)


def test_an_unaligned_timestamp_is_malformed():
    start = int(datetime(2026, 11, 20, 3, 7, tzinfo=UTC).timestamp())
    with pytest.raises(MalformedFrame):
        decode_load_profile_window(load_model("hx300"), "m-1", [start >> 16, start & 0xFFFF] + [0] * 9)


@pytest.mark.parametrize("name", ["nope", "../hx300", "hx300.yaml"])
def test_unknown_models_are_a_typed_error(name):
    with pytest.raises(UnknownMeterModel):
        load_model(name)


def test_register_groups_read_as_few_contiguous_runs_as_the_map_allows():
    # mx40: voltages at 256-258, a gap at 259, current..frequency at 260-271, energy at 512-525
    mx40 = load_model("mx40")
    assert mx40.register_blocks("instantaneous") == [(256, 3), (260, 12)]
    assert mx40.register_blocks("energy") == [(512, 14)]
    assert load_model("hx300").register_blocks("energy") == [(100, 8)]
    assert load_model("hx300").register_blocks("instantaneous") == []


def test_a_run_longer_than_one_modbus_read_is_split_at_125_registers():
    hx300 = load_model("hx300")
    counters = {
        f"c{i}": {"address": 1000 + 4 * i, "type": "u64", "group": "energy"}
        for i in range(40)  # 160 contiguous registers
    }
    model = hx300.model_validate({**hx300.model_dump(), "registers": counters})
    assert model.register_blocks("energy") == [(1000, 124), (1124, 36)]
