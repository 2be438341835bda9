"""Two Modbus meter models and the scenario faults, over TCP, read by the agent's own reader.

The simulator runs in-process on 127.0.0.1 (port 0); the RTU side is `hemera_agent.reader`
over a real pymodbus client; every window is decoded with the cloud's `decode_load_profile_window`
and compared with the load model (`interval_energy`) computed independently here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from hemera.domain.modbus.model import ModbusMeterModel, decode_load_profile_window, load_model
from hemera.domain.modbus.registers import RegisterType, WordOrder, decode_value, encode_value, scaled
from hemera.domain.readings import METER_FLAG_POWER_OUTAGE, Channel, IntervalReading
from hemera_agent.clock import SimClock
from hemera_agent.reader import LoadProfileReader, MeterReadError
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, SimulatedMeter
from hemera_agent.simulators.profile import instantaneous, interval_energy
from hemera_agent.simulators.scenario import (
    CommLoss,
    EventKind,
    MeterOff,
    Outage,
    PhaseLoss,
    ReverseEnergy,
    Spike,
    Tamper,
)

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, no holiday in Brazil
Q = timedelta(minutes=15)
SP = "America/Sao_Paulo"
HX300, MX40 = load_model("hx300"), load_model("mx40")


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def meter(meter_id: str, unit: int, model: str, load_class: str, *faults: object) -> SimulatedMeter:
    return SimulatedMeter(
        meter_id,
        unit,
        load_class,
        600,
        SP,
        f"sul-energia/{meter_id}",
        model=model,
        country="BR",
        faults=faults,  # type: ignore[arg-type]
    )


HX = meter("m-hx", 1, "hx300", "industry")
MX = meter("m-mx", 2, "mx40", "commerce")
FAULTY = meter(
    "m-faulty",
    3,
    "mx40",
    "industry",
    MeterOff(start=at(10), end=at(12)),
    Spike(at=at(14) + timedelta(minutes=7), factor=8),
    ReverseEnergy(start=at(16), end=at(17)),
    ReverseEnergy(start=at(24)),  # and again from midnight on: live power flows out
)
SILENT = meter("m-silent", 4, "hx300", "office", CommLoss(start=at(20), mode="gateway_exception"))
PHASES = meter(
    "m-phases",
    5,
    "mx40",
    "industry",
    Outage(start=at(2) + timedelta(minutes=5), end=at(2.5)),
    PhaseLoss(start=at(22), phase=2),
    Tamper(type="cover_open", at=at(23)),
)
NOW = DAY + timedelta(days=1, seconds=30)


class ManualWall:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def wall() -> ManualWall:
    return ManualWall()


@pytest.fixture
def simulator(wall: ManualWall) -> Iterator[ModbusMeterSimulator]:
    # Given one RTU port with five meters of two models holding DAY, 30 s after it ended; 60x clock
    clock = SimClock(start=NOW, speed=60, wall=wall)
    with ModbusMeterSimulator([HX, MX, FAULTY, SILENT, PHASES], clock=clock, history_start=DAY) as sim:
        yield sim


def talk(port: int, work: Callable[[AsyncModbusTcpClient], Awaitable[Any]], timeout: float = 3) -> Any:
    async def session() -> Any:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=timeout, retries=0)
        assert await client.connect()
        try:
            return await work(client)
        finally:
            client.close()

    return asyncio.run(session())


def read_day(port: int, m: SimulatedMeter) -> tuple[list[IntervalReading], list[int]]:
    """Every record of DAY through the agent's reader: decoded readings and the frames' sizes."""
    model = load_model(m.model)

    async def work(client: AsyncModbusTcpClient) -> tuple[list[IntervalReading], list[int]]:
        reader = LoadProfileReader(client, m.meter_id, m.unit_id, model)
        readings: list[IntervalReading] = []
        sizes = []
        async for window in reader.windows_after(DAY - Q, timedelta(days=1)):
            assert window.frame.address == model.load_profile.window_address
            sizes.append(window.frame.count)
            readings.extend(decode_load_profile_window(model, m.meter_id, window.frame.registers()))
        return readings, sizes

    result: tuple[list[IntervalReading], list[int]] = talk(port, work)
    return result


def by_interval(readings: list[IntervalReading]) -> dict[datetime, dict[Channel, int]]:
    out: dict[datetime, dict[Channel, int]] = {}
    for r in readings:
        assert r.raw_value is not None
        out.setdefault(r.start, {})[r.channel] = r.raw_value
    return out


def expected(m: SimulatedMeter, start: datetime) -> dict[Channel, int]:
    e = interval_energy(m.seed, m.load_class, m.peak_kw, m.timezone, start, country="BR")
    return {
        Channel.ACTIVE_IMPORT: e.active_import_wh,
        Channel.ACTIVE_EXPORT: e.active_export_wh,
        Channel.REACTIVE_IMPORT: e.reactive_import_varh,
        Channel.REACTIVE_EXPORT: e.reactive_export_varh,
    }


def read_register(port: int, model: ModbusMeterModel, unit: int, name: str) -> int | float:
    spec = model.registers[name]

    async def work(client: AsyncModbusTcpClient) -> list[int]:
        response = await client.read_holding_registers(spec.address, count=spec.width, device_id=unit)
        assert not response.isError(), response
        return list(response.registers)

    return decode_value(talk(port, work), 0, spec.type, model.word_order)


@pytest.mark.parametrize(("m", "window_registers"), [(HX, 121), (MX, 120)])
def test_both_models_round_trip_through_the_agent_reader(
    simulator: ModbusMeterSimulator, m: SimulatedMeter, window_registers: int
) -> None:
    readings, sizes = read_day(simulator.port, m)

    got = by_interval(readings)
    assert sorted(got) == [DAY + i * Q for i in range(96)]
    assert all(got[start] == expected(m, start) for start in got)
    assert set(sizes) == {window_registers}


def test_the_mx40_map_cdab_words_64_bit_totals_and_signed_values(simulator: ModbusMeterSimulator) -> None:
    # Given the raw words of the CDAB map: the low word comes first
    assert MX40.word_order is WordOrder.LITTLE
    assert encode_value(0x0001_0002, RegisterType.U32, WordOrder.LITTLE) == [0x0002, 0x0001]
    port = simulator.port
    day = [expected(FAULTY, DAY + i * Q) for i in range(96) if not 10 <= i / 4 < 12]
    spike = 14 * 4
    imported = (
        sum(e[Channel.ACTIVE_IMPORT] for e in day)
        + 7 * expected(FAULTY, DAY + spike * Q)[Channel.ACTIVE_IMPORT]
    )
    reversed_wh = sum(expected(FAULTY, DAY + i * Q)[Channel.ACTIVE_IMPORT] for i in range(64, 68))

    # Then the u64 Wh counters and the signed net register add up to the recorded profile
    assert read_register(port, MX40, 3, "active_import") == imported - reversed_wh
    assert read_register(port, MX40, 3, "active_export") == reversed_wh
    net = read_register(port, MX40, 3, "net_active")
    assert net == (imported - 2 * reversed_wh) // 100  # 0.1 kWh
    assert scaled(net, MX40.registers["net_active"].scaler) < scaled(imported, -3)


def test_instantaneous_registers_follow_the_load_model(simulator: ModbusMeterSimulator) -> None:
    values = instantaneous(MX.seed, MX.load_class, MX.peak_kw, SP, NOW, country="BR")
    volts = [read_register(simulator.port, MX40, 2, f"voltage_l{p}") for p in (1, 2, 3)]
    assert [v / 10 for v in volts] == pytest.approx(list(values.voltage_v), abs=0.051)
    assert all(210 < v / 10 < 230 for v in volts)  # Brazil's south: 220 V phase to neutral
    assert read_register(simulator.port, MX40, 2, "active_power") == values.active_power_w
    assert read_register(simulator.port, MX40, 2, "frequency") / 100 == pytest.approx(values.frequency_hz)
    # And a meter in reverse flow shows negative active power (i32) and a negative power factor
    assert read_register(simulator.port, MX40, 3, "active_power") < 0
    assert read_register(simulator.port, MX40, 3, "power_factor") < 0


def test_a_meter_off_window_stays_a_gap_a_spike_is_visible_and_reverse_energy_is_export(
    simulator: ModbusMeterSimulator,
) -> None:
    readings, _ = read_day(simulator.port, FAULTY)
    got = by_interval(readings)
    flags = {r.start: r.meter_flags for r in readings}

    # The two hours off are missing, not zero, and the first record after them flags the outage
    assert [s for s in (DAY + i * Q for i in range(96)) if s not in got] == [at(10) + i * Q for i in range(8)]
    assert flags[at(12)] == METER_FLAG_POWER_OUTAGE and flags[at(9.75)] == 0
    # The spike is eight times the interval's energy
    assert got[at(14)][Channel.ACTIVE_IMPORT] == 8 * expected(FAULTY, at(14))[Channel.ACTIVE_IMPORT]
    # Reverse energy: the hour's energy appears on active_export, nothing on active_import
    for start in (at(16) + i * Q for i in range(4)):
        assert got[start][Channel.ACTIVE_EXPORT] == expected(FAULTY, start)[Channel.ACTIVE_IMPORT] > 0
        assert got[start][Channel.ACTIVE_IMPORT] == 0
    assert got[at(17)][Channel.ACTIVE_EXPORT] == 0


def test_an_outage_leaves_partial_records_and_an_event_log(simulator: ModbusMeterSimulator) -> None:
    readings, _ = read_day(simulator.port, PHASES)
    got = by_interval(readings)
    flags = {r.start: r.meter_flags for r in readings}
    assert at(2.25) not in got  # wholly dark
    assert flags[at(2)] == METER_FLAG_POWER_OUTAGE  # 5 powered minutes
    assert got[at(2)][Channel.ACTIVE_IMPORT] == round(expected(PHASES, at(2))[Channel.ACTIVE_IMPORT] / 3)

    events = [(e.kind, e.at, e.detail) for e in simulator.events(5)]
    assert events == [
        (EventKind.POWER_DOWN, at(2) + timedelta(minutes=5), "last gasp"),
        (EventKind.POWER_UP, at(2.5), ""),
        (EventKind.PHASE_LOSS, at(22), "L2"),
        (EventKind.COVER_OPEN, at(23), ""),
    ]
    # And phase 2 reads 0 V while the others are live
    volts = [read_register(simulator.port, MX40, 5, f"voltage_l{p}") for p in (1, 2, 3)]
    assert volts[1] == 0 and volts[0] > 2000 and volts[2] > 2000


def test_a_meter_in_communication_loss_fails_alone(simulator: ModbusMeterSimulator) -> None:
    async def work(client: AsyncModbusTcpClient) -> tuple[bool, datetime | None]:
        silent = LoadProfileReader(client, SILENT.meter_id, 4, HX300)
        try:
            await silent.newest_interval()
        except MeterReadError:
            failed = True
        else:
            failed = False
        healthy = LoadProfileReader(client, HX.meter_id, 1, HX300)
        return failed, await healthy.newest_interval()

    failed, newest = talk(simulator.port, work)

    assert failed
    assert newest == at(23.75)
    assert simulator.stats(4).unanswered >= 1
    # And the silent meter kept recording: when the line comes back the day is complete
    assert simulator.memory(4).newest_epoch == int(at(23.75).timestamp())


def test_a_silent_meter_times_the_client_out(wall: ManualWall) -> None:
    mute = meter("m-mute", 9, "hx300", "office", CommLoss(start=DAY, mode="silent", silence_seconds=1))
    clock = SimClock(start=NOW, speed=1, wall=wall)
    with ModbusMeterSimulator([mute], clock=clock, history_start=DAY) as sim:

        async def work(client: AsyncModbusTcpClient) -> None:
            await LoadProfileReader(client, mute.meter_id, 9, HX300).newest_interval()

        with pytest.raises(MeterReadError):
            talk(sim.port, work, timeout=0.3)


def test_opening_the_relay_stops_consumption_until_it_closes(
    simulator: ModbusMeterSimulator, wall: ManualWall
) -> None:
    relay = MX40.registers["relay"].address

    async def write(client: AsyncModbusTcpClient, value: int) -> None:
        response = await client.write_registers(relay, [value], device_id=2)
        assert not response.isError()

    # When the relay is opened and 30 simulated minutes pass (30 wall seconds at 60x)
    talk(simulator.port, lambda c: write(c, 0))
    assert read_register(simulator.port, MX40, 2, "relay") == 0
    assert read_register(simulator.port, MX40, 2, "active_power") == 0
    wall.now += timedelta(seconds=30)
    talk(simulator.port, lambda c: write(c, 1))
    wall.now += timedelta(seconds=30)

    assert read_register(simulator.port, MX40, 2, "relay") == 1

    # Then the interval wholly inside the open time recorded nothing, and the meter logged it
    midnight = DAY + timedelta(days=1)
    readings = decode_load_profile_window(
        MX40, MX.meter_id, simulator.memory(2).window(int(midnight.timestamp()))
    )
    got = by_interval(readings)
    assert got[DAY + timedelta(days=1, minutes=15)][Channel.ACTIVE_IMPORT] == 0
    assert got[DAY + timedelta(days=1, minutes=30)][Channel.ACTIVE_IMPORT] > 0
    kinds = [e.kind for e in simulator.events(2)]
    assert kinds == [EventKind.RELAY_DISCONNECTED, EventKind.RELAY_CONNECTED]


def test_writing_the_clock_register_synchronises_the_meter(simulator: ModbusMeterSimulator) -> None:
    spec = MX40.registers["clock"]
    target = int((NOW + timedelta(hours=1)).timestamp())

    async def work(client: AsyncModbusTcpClient) -> None:
        await client.write_registers(
            spec.address, encode_value(target, spec.type, MX40.word_order), device_id=2
        )

    talk(simulator.port, work)
    assert abs(read_register(simulator.port, MX40, 2, "clock") - target) <= 1
    assert [e.kind for e in simulator.events(2)] == [EventKind.CLOCK_ADJUSTED]
