"""The Modbus meter simulator, read with a plain pymodbus client as a field engineer would."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera.domain.modbus.registers import decode_value, encode_value, scaled
from hemera.domain.readings import Channel
from hemera_agent.clock import SimClock
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, SimulatedMeter
from hemera_agent.simulators.profile import interval_energy

DAY = datetime(2026, 3, 4, tzinfo=UTC)
MODEL = load_model("hx300")
LP = MODEL.load_profile
OFFICE = SimulatedMeter("cp-m-2001", 1, "office", 300, "Australia/Sydney", "coastal-power/cp-m-2001")
COLD_STORE = SimulatedMeter(
    "cp-m-2002",
    7,
    "industry",
    520,
    "Australia/Sydney",
    "coastal-power/cp-m-2002",
    off_windows=((DAY + timedelta(hours=3), DAY + timedelta(hours=4)),),
)


@pytest.fixture
def simulator() -> Iterator[ModbusMeterSimulator]:
    # Given one RTU port serving two meters (unit ids 1 and 7) that have recorded DAY 00:00-12:00
    clock = SimClock(
        start=DAY + timedelta(hours=12, seconds=5), speed=1, wall=lambda: datetime(2030, 1, 1, tzinfo=UTC)
    )
    with ModbusMeterSimulator([OFFICE, COLD_STORE], clock=clock, history_start=DAY) as sim:
        yield sim


def talk(port: int, work: Callable[[AsyncModbusTcpClient], Awaitable[Any]]) -> Any:
    async def session() -> Any:
        client = AsyncModbusTcpClient("127.0.0.1", port=port)
        assert await client.connect()
        try:
            return await work(client)
        finally:
            client.close()

    return asyncio.run(session())


def u32(registers: list[int]) -> int:
    return int(decode_value(registers, 0, MODEL.registers["clock"].type, MODEL.word_order))


def test_the_simulator_binds_a_free_port_on_loopback(simulator: ModbusMeterSimulator) -> None:
    assert simulator.host == "127.0.0.1"
    assert simulator.port > 0


def test_clock_period_and_newest_interval(simulator: ModbusMeterSimulator) -> None:
    async def read(client: AsyncModbusTcpClient) -> tuple[list[int], list[int]]:
        head = await client.read_holding_registers(0, count=3, device_id=1)
        newest = await client.read_holding_registers(LP.newest_address, count=2, device_id=1)
        return head.registers, newest.registers

    head, newest = talk(simulator.port, read)

    assert datetime.fromtimestamp(u32(head[:2]), UTC) == DAY + timedelta(hours=12, seconds=5)
    assert head[2] == 15
    assert datetime.fromtimestamp(u32(newest), UTC) == DAY + timedelta(hours=11, minutes=45)


def test_energy_registers_are_the_sum_of_the_recorded_intervals(simulator: ModbusMeterSimulator) -> None:
    # When the total registers of the cold store are read
    def total(channel_field: str) -> int:
        wh = 0
        for i in range(48):
            start = DAY + i * timedelta(minutes=15)
            if not 3 <= start.hour < 4:  # the outage recorded nothing
                energy = interval_energy(COLD_STORE.seed, "industry", 520, "Australia/Sydney", start)
                wh += getattr(energy, channel_field)
        return wh

    async def read(client: AsyncModbusTcpClient) -> list[int]:
        return (await client.read_holding_registers(100, count=8, device_id=7)).registers

    registers = talk(simulator.port, read)

    # Then each equals the profile's sum in 0.01 kWh (truncated), as the map's scaler -2 says
    for index, (name, channel_field) in enumerate(
        [
            ("active_import", "active_import_wh"),
            ("active_export", "active_export_wh"),
            ("reactive_import", "reactive_import_varh"),
            ("reactive_export", "reactive_export_varh"),
        ]
    ):
        spec = MODEL.registers[name]
        raw = decode_value(registers, index * 2, spec.type, MODEL.word_order)
        assert scaled(raw, spec.scaler) == Decimal(total(channel_field) // 10) / 100


def test_the_cursor_fills_the_window_with_records_at_or_after_it(simulator: ModbusMeterSimulator) -> None:
    cursor = DAY + timedelta(hours=2, minutes=20)  # between intervals: the first is 02:30

    async def read(client: AsyncModbusTcpClient) -> list[int]:
        await client.write_registers(
            LP.cursor_address,
            encode_value(int(cursor.timestamp()), LP.timestamp.type, MODEL.word_order),
            device_id=7,
        )
        return (
            await client.read_holding_registers(LP.window_address, count=LP.window_registers, device_id=7)
        ).registers

    readings = decode_load_profile_window(MODEL, "cp-m-2002", talk(simulator.port, read))

    starts = sorted({r.start for r in readings})
    # 02:30, 02:45, then the outage 03:00-04:00 is skipped, then 04:00 ... 06:15 (11 records)
    assert starts[:3] == [
        DAY + timedelta(hours=2, minutes=30),
        DAY + timedelta(hours=2, minutes=45),
        DAY + timedelta(hours=4),
    ]
    assert len(starts) == 11
    office_energy = interval_energy(COLD_STORE.seed, "industry", 520, "Australia/Sydney", starts[0])
    by_key = {(r.start, r.channel): r.raw_value for r in readings}
    assert by_key[(starts[0], Channel.ACTIVE_IMPORT)] == office_energy.active_import_wh


def test_a_cursor_past_the_newest_interval_gives_an_empty_window(simulator: ModbusMeterSimulator) -> None:
    async def read(client: AsyncModbusTcpClient) -> list[int]:
        await client.write_registers(
            LP.cursor_address,
            encode_value(int((DAY + timedelta(hours=12)).timestamp()), LP.timestamp.type, MODEL.word_order),
            device_id=1,
        )
        return (
            await client.read_holding_registers(LP.window_address, count=LP.window_registers, device_id=1)
        ).registers

    assert talk(simulator.port, read) == [0] * LP.window_registers


def test_the_relay_can_be_opened_and_read_only_registers_refuse_writes(
    simulator: ModbusMeterSimulator,
) -> None:
    relay = MODEL.registers["relay"].address

    async def work(client: AsyncModbusTcpClient) -> tuple[int, int, bool, bool]:
        before = (await client.read_holding_registers(relay, count=1, device_id=1)).registers[0]
        await client.write_registers(relay, [0], device_id=1)
        after = (await client.read_holding_registers(relay, count=1, device_id=1)).registers[0]
        energy_write = await client.write_registers(100, [0, 0], device_id=1)
        unmapped_read = await client.read_holding_registers(50, count=1, device_id=1)
        return before, after, energy_write.isError(), unmapped_read.isError()

    before, after, energy_refused, unmapped_refused = talk(simulator.port, work)

    assert (before, after) == (1, 0)
    assert energy_refused and unmapped_refused


def test_two_meters_on_one_unit_id_are_refused() -> None:
    clock = SimClock(start=DAY, speed=1)
    with pytest.raises(ValueError, match="unit id 1"):
        ModbusMeterSimulator([OFFICE, OFFICE], clock=clock, history_start=DAY)
