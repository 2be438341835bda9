"""The agent reads an HD-500 (the DLMS simulator over a real socket, gurux on both ends) whose
phase L2 is lost for an hour and whose energy then flows backwards for an hour: the power quality
log (0.0.99.98.4) and the fraud log reach the envelopes, and the cloud's decoders turn them into
phase-loss / phase-restored events naming phase 2 and reverse-energy events; the instantaneous
values read during the loss show L2 dead."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hemera.domain.envelope import Envelope, FrameKind, parse_envelope
from hemera.domain.events_decode import decode_meter_events
from hemera.domain.instantaneous import Quantity, decode_instantaneous
from hemera.domain.meter_events import EventType
from hemera_agent.agent import Agent
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import InMemoryPublisher
from hemera_agent.simulators.dlms_meter import DlmsMeter, DlmsMeterSimulator
from hemera_agent.simulators.profile import meter_seed
from hemera_agent.simulators.scenario import PhaseLoss, ReverseEnergy

HISTORY = datetime(2026, 11, 16, 3, tzinfo=UTC)  # Monday 00:00 in São Paulo
TENANT, DEVICE, METER = "sul-energia", "rtu-poa-01", "sul-m-1003"
LOST, BACK = HISTORY + timedelta(hours=14), HISTORY + timedelta(hours=15)
REVERSED, FORWARD = HISTORY + timedelta(hours=16), HISTORY + timedelta(hours=17)
STANDARD_LOG, FRAUD_LOG, POWER_QUALITY_LOG = "0.0.99.98.0.255", "0.0.99.98.1.255", "0.0.99.98.4.255"


class Frozen:
    """A clock the test moves by hand (meter and agent share it)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def config(state: Path, port: int) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "tenant": TENANT,
            "device": DEVICE,
            "broker": {"host": "localhost", "cert": "c", "key": "k"},
            "state_dir": state,
            "backfill_hours": 48,
            "meters": [{"id": METER, "model": "hd500", "protocol": "dlms", "port": port, "password": "lls"}],
        }
    )


def envelopes(publisher: InMemoryPublisher, kind: FrameKind) -> list[Envelope]:
    found = []
    for topic, payload in publisher.messages:
        if topic.endswith("/up/telemetry"):
            envelope = parse_envelope(payload)
            if envelope.frames and envelope.frames[0].kind is kind:
                found.append(envelope)
    return found


def test_phase_loss_and_reverse_energy_travel_from_the_meter_logs_to_canonical_events(tmp_path):
    # Given an HD-500 with L2 lost 14:00-15:00 and reverse energy 16:00-17:00 after its history start
    meter = DlmsMeter(
        meter_id=METER,
        load_class="industry",
        peak_kw=300.0,
        timezone="America/Sao_Paulo",
        seed=meter_seed(TENANT, METER),
        password=b"lls",
        faults=(PhaseLoss(phase=2, start=LOST, end=BACK), ReverseEnergy(start=REVERSED, end=FORWARD)),
    )
    clock = Frozen(LOST + timedelta(minutes=30))
    with DlmsMeterSimulator(
        meter, clock=SimClock(start=clock.at, speed=1.0, wall=clock.now), history_start=HISTORY
    ) as sim:
        publisher = InMemoryPublisher()
        agent = Agent(config(tmp_path / "state", sim.port), publisher, clock=clock)
        try:
            # When the agent polls during the phase loss, and again after both faults
            during = asyncio.run(agent.poll_once())
            clock.at = FORWARD + timedelta(minutes=30)
            after = asyncio.run(agent.poll_once())
        finally:
            agent.close()
    assert during.failed_meters == [] and after.failed_meters == []
    # Then the first event read carries the loss from the power quality log, phase 2 (and the
    # standard log's "log cleared" at the history start, which is no canonical event)
    early, late = envelopes(publisher, FrameKind.EVENTS)
    assert {f.obis for f in early.frames} == {STANDARD_LOG, POWER_QUALITY_LOG}
    assert [(e.type, e.at, e.detail) for e in decode_meter_events(early)] == [
        (EventType.PHASE_LOSS, LOST, {"log": "power_quality", "phase": 2})
    ]
    # and the second the return of the phase and the reverse-energy window (fraud log, HD-500 codes)
    assert {f.obis for f in late.frames} == {POWER_QUALITY_LOG, FRAUD_LOG}
    assert [(e.type, e.at, e.code, e.detail.get("phase")) for e in decode_meter_events(late)] == [
        (EventType.PHASE_RESTORED, BACK, 86, 2),
        (EventType.REVERSE_ENERGY, REVERSED, 231, None),
        (EventType.REVERSE_ENERGY_CLEARED, FORWARD, 232, None),
    ]
    # and the instantaneous values read during the loss show L2 without voltage or current
    (dead, healthy) = [decode_instantaneous(e) for e in envelopes(publisher, FrameKind.INSTANTANEOUS)]
    assert dead is not None and healthy is not None
    assert dead.values[Quantity.VOLTAGE_L2] == 0 and dead.values[Quantity.CURRENT_L2] == 0
    assert dead.values[Quantity.VOLTAGE_L1] > Decimal(200) and dead.values[Quantity.CURRENT_L1] > 0
    assert healthy.values[Quantity.VOLTAGE_L2] > Decimal(200) and healthy.values[Quantity.POWER_FACTOR] > 0
