"""Instantaneous values decoded from Modbus (mx40) and DLMS (hd500) frames, against hand-computed
wire data; the CT x VT multiplier; the in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.adapters.instantaneous_memory import MemoryInstantaneousStore
from hemera.domain.envelope import FrameKind, ModbusFrame
from hemera.domain.errors import MalformedFrame
from hemera.domain.instantaneous import InstantaneousReading, Quantity, decode_instantaneous, on_primary_side
from hemera.domain.tenancy import TenantContext
from hemera.services.ingest import decode_envelope
from tests.instantaneous_builders import hd500_instantaneous_envelope, mx40_instantaneous_envelope

AT = datetime(2026, 11, 22, 4, 5, 7, 250_000, tzinfo=UTC)
D = Decimal


def test_mx40_registers_decode_with_cdab_words_sign_and_scaler():
    reading = decode_instantaneous(mx40_instantaneous_envelope("acme", "rtu-1", "m-1", AT))
    assert reading is not None
    assert reading.meter_id == "m-1"
    assert reading.captured_at == AT.replace(microsecond=0)
    assert reading.values == {
        Quantity.VOLTAGE_L1: D("230.1"),
        Quantity.VOLTAGE_L2: D("229.8"),
        Quantity.VOLTAGE_L3: D("230.5"),
        Quantity.CURRENT_L1: D("12.345"),
        Quantity.CURRENT_L2: D("70.000"),
        Quantity.CURRENT_L3: D("0.500"),
        Quantity.ACTIVE_POWER: D(-1500),
        Quantity.REACTIVE_POWER: D(800),
        Quantity.POWER_FACTOR: D("-0.985"),
        Quantity.FREQUENCY: D("50.02"),
    }


def test_hd500_objects_decode_with_the_models_scaler_and_skip_scaler_unit():
    reading = decode_instantaneous(hd500_instantaneous_envelope("acme", "rtu-1", "m-3", AT))
    assert reading is not None
    assert reading.values == {
        Quantity.VOLTAGE_L1: D("230.1"),
        Quantity.VOLTAGE_L2: D("229.8"),
        Quantity.VOLTAGE_L3: D("230.5"),
        Quantity.CURRENT_L1: D("12.34"),
        Quantity.CURRENT_L2: D("700.00"),
        Quantity.CURRENT_L3: D("0.50"),
        Quantity.POWER_FACTOR: D("0.950"),
        Quantity.FREQUENCY: D("49.98"),
    }  # the hd500 model has no P/Q objects: absent, not zero


def test_the_multiplier_scales_power_only():
    # Given an mx40 behind 200/5 CTs on LV (multiplier 40)
    reading = decode_instantaneous(mx40_instantaneous_envelope("acme", "rtu-1", "m-1", AT))
    assert reading is not None
    primary = on_primary_side(reading, D(40))
    # Then P and Q are on the primary side, V, I, PF and Hz as measured
    assert primary.values[Quantity.ACTIVE_POWER] == D(-60000)
    assert primary.values[Quantity.REACTIVE_POWER] == D(32000)
    assert primary.values[Quantity.VOLTAGE_L1] == D("230.1")
    assert primary.values[Quantity.CURRENT_L2] == D("70.000")
    assert primary.values[Quantity.POWER_FACTOR] == D("-0.985")
    assert primary.values[Quantity.FREQUENCY] == D("50.02")


def test_instantaneous_frames_yield_no_intervals():
    assert decode_envelope(mx40_instantaneous_envelope("acme", "rtu-1", "m-1", AT)) == []
    assert decode_envelope(hd500_instantaneous_envelope("acme", "rtu-1", "m-3", AT)) == []


def test_a_frame_too_short_for_its_declared_count_is_malformed():
    envelope = mx40_instantaneous_envelope("acme", "rtu-1", "m-1", AT)
    short = ModbusFrame.model_construct(
        kind=FrameKind.INSTANTANEOUS, unit_id=1, function=3, address=256, count=3, data="08fd"
    )
    with pytest.raises(MalformedFrame):
        decode_instantaneous(envelope.model_copy(update={"frames": [short]}))


def test_memory_store_is_idempotent_half_open_and_newest_first():
    store, ctx = MemoryInstantaneousStore(), TenantContext("acme")
    readings = [
        InstantaneousReading("m-1", AT + timedelta(minutes=5 * i), {Quantity.FREQUENCY: D(50)})
        for i in range(4)
    ]
    store.put(ctx, readings)
    store.put(ctx, readings[:1])  # a redelivery
    found = store.newest_first(ctx, "m-1", AT, AT + timedelta(minutes=15), 10)
    assert [r.captured_at for r in found] == [AT + timedelta(minutes=10), AT + timedelta(minutes=5), AT]
    assert store.newest_first(ctx, "m-1", AT, AT + timedelta(hours=1), 2) == [readings[3], readings[2]]
    assert store.newest_first(TenantContext("other"), "m-1", AT, AT + timedelta(hours=1), 10) == []
