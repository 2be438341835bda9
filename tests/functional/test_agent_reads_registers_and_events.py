"""Besides the load profile the agent reads energy registers (daily and on demand), instantaneous
values (every few minutes) and DLMS event logs (entries since its last read), each reading one
envelope of raw frames. Simulators on 127.0.0.1, an in-memory broker; values are decoded with the
cloud's own decoders and compared with what the simulated meter holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hemera.domain.dlms.axdr import decode, decode_datetime
from hemera.domain.envelope import DlmsFrame, Envelope, FrameKind, ModbusFrame, parse_envelope
from hemera.domain.modbus.model import ModbusMeterModel, load_model
from hemera.domain.modbus.registers import decode_value, scaled
from hemera.domain.readings import Channel
from hemera_agent.agent import Agent
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import InMemoryPublisher
from hemera_agent.simulators.dlms_meter import DlmsMeter, DlmsMeterSimulator
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, SimulatedMeter
from hemera_agent.simulators.profile import meter_seed, nominal_supply

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
HISTORY = datetime(2026, 11, 16, 3, tzinfo=UTC)
TENANT, DEVICE = "sul-energia", "rtu-poa-01"
HX, MX, DL = "sul-m-1001", "sul-m-1002", "sul-m-1003"


class Frozen:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def modbus_meter(meter_id: str, unit_id: int, model: str) -> SimulatedMeter:
    return SimulatedMeter(
        meter_id=meter_id,
        unit_id=unit_id,
        load_class="industry",
        peak_kw=400.0,
        timezone="America/Sao_Paulo",
        seed=meter_seed(TENANT, meter_id),
        model=model,
        country="BR",
    )


@pytest.fixture
def modbus() -> Iterator[ModbusMeterSimulator]:
    """An hx300 (unit 1) and an mx40 (unit 2) behind one gateway, a day of history, frozen time."""
    meters = [modbus_meter(HX, 1, "hx300"), modbus_meter(MX, 2, "mx40")]
    now = DAY + timedelta(days=1, seconds=30)
    with ModbusMeterSimulator(
        meters, clock=SimClock(now, speed=1, wall=lambda: now), history_start=DAY
    ) as sim:
        yield sim


def agent_config(state: Path, meters: list[dict[str, Any]], **overrides: Any) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "tenant": TENANT,
            "device": DEVICE,
            "broker": {"host": "localhost", "cert": "c", "key": "k"},
            "state_dir": state,
            "meters": meters,
            **overrides,
        }
    )


def modbus_agent(
    sim: ModbusMeterSimulator, state: Path, publisher: InMemoryPublisher, clock: Frozen
) -> Agent:
    meters = [
        {"id": HX, "model": "hx300", "unit_id": 1, "port": sim.port},
        {"id": MX, "model": "mx40", "unit_id": 2, "port": sim.port},
    ]
    return Agent(agent_config(state, meters), publisher, clock=clock)


def envelopes(publisher: InMemoryPublisher, kind: FrameKind, meter: str | None = None) -> list[Envelope]:
    """Published telemetry envelopes whose frames are all of `kind`."""
    found = []
    for topic, payload in publisher.messages:
        if topic.endswith("/up/telemetry"):
            envelope = parse_envelope(payload)
            if all(f.kind is kind for f in envelope.frames) and meter in (None, envelope.meter):
                found.append(envelope)
    return found


def modbus_values(model: ModbusMeterModel, envelope: Envelope) -> dict[str, float]:
    """Register name → scaled value, decoded from the envelope's raw blocks with the model's map."""
    values: dict[str, float] = {}
    for frame in envelope.frames:
        assert isinstance(frame, ModbusFrame)
        registers = frame.registers()
        for name, spec in model.registers.items():
            if frame.address <= spec.address and spec.address + spec.width <= frame.address + frame.count:
                raw = decode_value(registers, spec.address - frame.address, spec.type, model.word_order)
                values[name] = float(scaled(raw, spec.scaler))
    return values


def test_an_hx300_meters_energy_registers_arrive_as_the_meter_totals(modbus, tmp_path):
    # Given an hx300 that has recorded a day
    clock = Frozen(DAY + timedelta(days=1, seconds=30))
    publisher = InMemoryPublisher()
    agent = modbus_agent(modbus, tmp_path / "state", publisher, clock)
    # When the agent polls once
    try:
        report = asyncio.run(agent.poll_once())
    finally:
        agent.close()
    # Then one registers envelope of the hx300 decodes to the meter's totals (kWh, 0.01 resolution)
    [envelope] = envelopes(publisher, FrameKind.REGISTERS, HX)
    totals = modbus.memory(1).totals_wh
    values = modbus_values(load_model("hx300"), envelope)
    assert values == {
        "active_import": pytest.approx(totals[Channel.ACTIVE_IMPORT] // 10 / 100),
        "active_export": pytest.approx(totals[Channel.ACTIVE_EXPORT] // 10 / 100),
        "reactive_import": pytest.approx(totals[Channel.REACTIVE_IMPORT] // 10 / 100),
        "reactive_export": pytest.approx(totals[Channel.REACTIVE_EXPORT] // 10 / 100),
    }
    assert values["active_import"] > 1000  # a day of a 400 kW industry
    # The hx300 has no instantaneous registers; the load profile still arrives beside them
    assert envelopes(publisher, FrameKind.INSTANTANEOUS, HX) == []
    assert report.intervals == 2 * 96 and report.failed_meters == []


def test_an_mx40_meters_instantaneous_values_are_around_the_nominal_voltage(modbus, tmp_path):
    clock = Frozen(DAY + timedelta(days=1, seconds=30))
    publisher = InMemoryPublisher()
    agent = modbus_agent(modbus, tmp_path / "state", publisher, clock)
    try:
        asyncio.run(agent.poll_once())
    finally:
        agent.close()
    # Then the mx40's instantaneous envelope holds two register runs (256-258, 260-271) whose
    # phase voltages sit within 10 % of Brazil's 220 V and frequency at 60 Hz
    [envelope] = envelopes(publisher, FrameKind.INSTANTANEOUS, MX)
    assert [(f.address, f.count) for f in envelope.frames if isinstance(f, ModbusFrame)] == [
        (256, 3),
        (260, 12),
    ]
    values = modbus_values(load_model("mx40"), envelope)
    volts, hertz = nominal_supply("BR")
    for phase in ("voltage_l1", "voltage_l2", "voltage_l3"):
        assert values[phase] == pytest.approx(volts, rel=0.1)
    assert values["frequency"] == pytest.approx(hertz, abs=0.5)
    assert 0 < values["power_factor"] <= 1
    # and its energy registers are the 64-bit Wh counters of the meter
    [registers] = envelopes(publisher, FrameKind.REGISTERS, MX)
    totals = modbus.memory(2).totals_wh
    assert modbus_values(load_model("mx40"), registers)["active_import"] == pytest.approx(
        totals[Channel.ACTIVE_IMPORT] / 1000
    )


def test_the_register_schedule_survives_a_restart(modbus, tmp_path):
    # Given an agent that read the registers and stopped
    clock = Frozen(DAY + timedelta(days=1, seconds=30))
    first = InMemoryPublisher()
    agent = modbus_agent(modbus, tmp_path / "state", first, clock)
    try:
        asyncio.run(agent.poll_once())
    finally:
        agent.close()
    assert len(envelopes(first, FrameKind.REGISTERS)) == 2
    # When a new agent starts on the same state folder an hour later, and again a day later
    clock.at += timedelta(hours=1)
    after_an_hour, after_a_day = InMemoryPublisher(), InMemoryPublisher()
    agent = modbus_agent(modbus, tmp_path / "state", after_an_hour, clock)
    try:
        asyncio.run(agent.poll_once())
        clock.at += timedelta(days=1)
        agent.publisher = after_a_day
        asyncio.run(agent.poll_once())
    finally:
        agent.close()
    # Then the registers are not read again within the day; the instantaneous values are (5 min)
    assert envelopes(after_an_hour, FrameKind.REGISTERS) == []
    assert [e.meter for e in envelopes(after_an_hour, FrameKind.INSTANTANEOUS)] == [MX]
    assert sorted(e.meter for e in envelopes(after_a_day, FrameKind.REGISTERS)) == [HX, MX]


def test_a_read_registers_command_reads_energy_and_instantaneous_values_now(modbus, tmp_path):
    # Given an agent that has just read everything on its schedule
    clock = Frozen(DAY + timedelta(days=1, seconds=30))
    publisher = InMemoryPublisher()
    agent = modbus_agent(modbus, tmp_path / "state", publisher, clock)
    try:
        asyncio.run(agent.poll_once())
        publisher.messages.clear()
        # When the cloud asks for the mx40's registers now
        cmd = {"id": "c-46", "type": "read_registers", "meter": MX}
        ack = asyncio.run(agent.handle_command(json.dumps(cmd).encode()))
        asyncio.run(agent.flush())
        # and the next poll follows
        asyncio.run(agent.poll_once())
    finally:
        agent.close()
    # Then the ack names two envelopes of three frames, and exactly those were published
    assert ack is not None and ack.status == "ok"
    assert ack.result["envelopes"] == 2 and ack.result["frames"] == 3
    published = envelopes(publisher, FrameKind.REGISTERS) + envelopes(publisher, FrameKind.INSTANTANEOUS)
    assert sorted(e.seq for e in published) == [ack.result["first_seq"], ack.result["last_seq"]]
    assert {e.meter for e in published} == {MX}


# --- DLMS -------------------------------------------------------------------------------------------
DLMS_METER = DlmsMeter(
    meter_id=DL,
    load_class="commerce",
    peak_kw=300.0,
    timezone="America/Sao_Paulo",
    seed=meter_seed(TENANT, DL),
    password=b"lls-secret",
)


def event_entries(envelope: Envelope) -> dict[str, list[tuple[datetime, int]]]:
    logs = {}
    for frame in envelope.frames:
        assert isinstance(frame, DlmsFrame)
        logs[frame.obis] = [(decode_datetime(at), code) for at, code in decode(frame.raw())]
    return logs


def test_a_dlms_meters_registers_instantaneous_values_and_new_events(tmp_path):
    # Given a DLMS meter with a day of history (cover opened at +6 h, power down at +12 h)
    clock = Frozen(HISTORY + timedelta(days=1, minutes=1))
    meter_clock = SimClock(start=clock.at, speed=1.0, wall=clock.now)
    with DlmsMeterSimulator(DLMS_METER, clock=meter_clock, history_start=HISTORY) as sim:
        meters = [
            {"id": DL, "model": "hd500", "protocol": "dlms", "port": sim.port, "password": "lls-secret"}
        ]
        publisher = InMemoryPublisher()
        agent = Agent(agent_config(tmp_path / "state", meters, backfill_hours=48), publisher, clock=clock)
        try:
            # When the agent polls, polls again a minute later, the cloud opens the relay, and
            # the agent polls a quarter of an hour later
            asyncio.run(agent.poll_once())
            first = len(publisher.messages)
            clock.at += timedelta(minutes=1)
            asyncio.run(agent.poll_once())
            second = publisher.messages[first:]
            clock.at += timedelta(minutes=1)
            opened_at = clock.at
            disconnect = {"id": "c-47", "type": "disconnect", "meter": DL}
            asyncio.run(agent.handle_command(json.dumps(disconnect).encode()))
            clock.at += timedelta(minutes=15)
            asyncio.run(agent.poll_once())
        finally:
            agent.close()
    registers = envelopes(publisher, FrameKind.REGISTERS)
    instantaneous = envelopes(publisher, FrameKind.INSTANTANEOUS)
    events = envelopes(publisher, FrameKind.EVENTS)
    # Then the registers were read once (daily), instantaneous values at the first and the last poll
    assert len(registers) == 1 and {f.obis for f in registers[0].frames} >= {"1.0.1.8.0.255", "1.0.2.8.0.255"}
    assert len(instantaneous) == 2 and "1.0.32.7.0.255" in {f.obis for f in instantaneous[0].frames}
    # the poll a minute later published nothing but load profile (none was due)
    assert all(
        parse_envelope(p).frames[0].kind is FrameKind.LOAD_PROFILE for t, p in second if "telemetry" in t
    )
    # the first event read holds the day's entries, the second only the relay opening since then
    assert len(events) == 2
    day = event_entries(events[0])
    assert day["0.0.99.98.1.255"] == [
        (HISTORY + timedelta(hours=6), 40),
        (HISTORY + timedelta(hours=6, minutes=5), 41),
    ]
    assert [code for _, code in day["1.0.99.97.0.255"]] == [1, 2]
    assert event_entries(events[1]) == {"0.0.99.98.0.255": [(opened_at, 59)]}
