"""The agent reads a DLMS/COSEM meter (simulator over a real socket) into envelopes that decode to
exactly what the meter recorded, without gaps or repeats at the capture-time boundary."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from hemera.domain.dlms.model import decode_load_profile_buffer, load_dlms_model
from hemera.domain.envelope import DlmsFrame, parse_envelope
from hemera_agent.agent import Agent
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import InMemoryPublisher
from hemera_agent.simulators.dlms_meter import DlmsMeter, DlmsMeterSimulator
from hemera_agent.simulators.profile import interval_energy, meter_seed
from tests.builders import LOAD_PROFILE_ONLY

MODEL = load_dlms_model("hd500")
ZONE = "America/Sao_Paulo"
HISTORY = datetime(2026, 11, 16, 3, tzinfo=UTC)
METER = DlmsMeter(
    meter_id="sul-m-1003",
    load_class="commerce",
    peak_kw=300.0,
    timezone=ZONE,
    seed=meter_seed("sul-energia", "sul-m-1003"),
    password=b"lls-secret",
)


class Frozen:
    """A clock the test moves by hand (meter and agent share it)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def config(tmp_path, port: int) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "tenant": "sul-energia",
            "device": "rtu-poa-01",
            "broker": {"host": "127.0.0.1", "cert": str(tmp_path / "c"), "key": str(tmp_path / "k")},
            "state_dir": str(tmp_path / "state"),
            "backfill_hours": 48,
            **LOAD_PROFILE_ONLY,
            "meters": [
                {
                    "id": "sul-m-1003",
                    "model": "hd500",
                    "protocol": "dlms",
                    "port": port,
                    "password": "lls-secret",
                }
            ],
        }
    )


def published_intervals(publisher: InMemoryPublisher) -> list[tuple[datetime, int]]:
    got = []
    for topic, payload in publisher.messages:
        if not topic.endswith("/up/telemetry"):
            continue
        envelope = parse_envelope(payload)
        assert envelope.protocol == "dlms" and envelope.model == "hd500"
        for frame in envelope.frames:
            assert isinstance(frame, DlmsFrame)
            got += [
                (r.start, int(r.value * 1000))  # canonical kWh back to the meter's Wh
                for r in decode_load_profile_buffer(MODEL, envelope.meter, frame.raw())
                if r.channel == "active_import"
            ]
    return got


def test_the_agent_reads_a_dlms_meter_once_and_completely(tmp_path):
    # Given a DLMS meter that has recorded one day and the agent's clock just after it
    clock = Frozen(HISTORY + timedelta(days=1, minutes=1))
    meter_clock = SimClock(start=clock.at, speed=1.0, wall=clock.now)
    with DlmsMeterSimulator(METER, clock=meter_clock, history_start=HISTORY) as simulator:
        publisher = InMemoryPublisher()
        agent = Agent(config(tmp_path, simulator.port), publisher, clock=clock)
        try:
            # When it polls, then the meter records two more quarter hours and it polls again
            first = asyncio.run(agent.poll_once())
            clock.at += timedelta(minutes=30)
            second = asyncio.run(agent.poll_once())
            third = asyncio.run(agent.poll_once())
        finally:
            agent.close()
    # Then the day arrives whole, the next two intervals follow, nothing repeats, nothing is missing
    got = published_intervals(publisher)
    starts = [s for s, _ in got]
    assert (first.intervals, second.intervals, third.intervals) == (96, 2, 0)
    assert starts == [HISTORY + timedelta(minutes=15 * i) for i in range(98)]
    expected = [interval_energy(METER.seed, "commerce", 300.0, ZONE, s).active_import_wh for s in starts]
    assert [wh for _, wh in got] == expected


def test_a_wrong_password_is_a_failed_meter_and_an_rtu_event(tmp_path):
    clock = Frozen(HISTORY + timedelta(hours=2))
    with DlmsMeterSimulator(
        METER, clock=SimClock(start=clock.at, speed=1.0, wall=clock.now), history_start=HISTORY
    ) as sim:
        document = config(tmp_path, sim.port).model_dump(mode="json")
        document["meters"][0]["password"] = "wrong"
        publisher = InMemoryPublisher()
        agent = Agent(AgentConfig.model_validate(document), publisher, clock=clock)
        try:
            report = asyncio.run(agent.poll_once())
        finally:
            agent.close()
    assert report.failed_meters == ["sul-m-1003"]
    events = [json.loads(p) for t, p in publisher.messages if t.endswith("/up/events")]
    assert [e["meter"] for e in events] == ["sul-m-1003"]


def test_a_dlms_meter_needs_a_password():
    with pytest.raises(ValueError, match="LLS password"):
        AgentConfig.model_validate(
            {
                "tenant": "t",
                "device": "d",
                "broker": {"host": "h", "cert": "c", "key": "k"},
                "state_dir": "s",
                "meters": [{"id": "m", "model": "hd500", "protocol": "dlms"}],
            }
        )


def test_a_day_that_does_not_decode_is_shipped_and_skipped_not_read_forever(tmp_path, monkeypatch):
    # Given a meter whose first day holds an undecodable row and whose second day is fine
    from hemera.domain.envelope import DlmsRange, FrameKind
    from hemera_agent import agent as agent_module
    from tests.dlms_builders import LOAD_PROFILE_OBIS, hd500_buffer

    day1, day2 = HISTORY, HISTORY + timedelta(days=1)
    bad = hd500_buffer(day1 + timedelta(minutes=15), [(100, 0, 0, 0)] * 4)[:-3]  # cut inside a row
    good = hd500_buffer(day2 + timedelta(minutes=15), [(200, 0, 0, 0)] * 4)
    frames = [
        DlmsFrame(
            kind=FrameKind.LOAD_PROFILE,
            obis=LOAD_PROFILE_OBIS,
            class_id=7,
            attribute=2,
            data=data.hex(),
            selector=DlmsRange(from_=start, to=start + timedelta(days=1) - timedelta(seconds=1)),
        )
        for data, start in ((bad, day1), (good, day2))
    ]
    asked: list[datetime] = []

    last_capture = {frames[0].data: day1 + timedelta(hours=1), frames[1].data: day2 + timedelta(hours=1)}

    async def meter_answers(host, port, password, since, until, **kwargs):
        asked.append(since)
        return [f for f in frames if last_capture[f.data] >= since]  # rows captured at/after since

    monkeypatch.setattr(agent_module, "read_load_profile", meter_answers)
    clock = Frozen(day2 + timedelta(hours=2))
    publisher = InMemoryPublisher()
    agent = Agent(config(tmp_path, 4059), publisher, clock=clock)
    try:
        # When it polls twice
        first = asyncio.run(agent.poll_once())
        second = asyncio.run(agent.poll_once())
    finally:
        agent.close()
    # Then both days were shipped (the cloud quarantines the bad one with its bytes), the good
    # day's four intervals with them, the meter was reported once, and the next poll moved on
    telemetry = [parse_envelope(p) for t, p in publisher.messages if t.endswith("/up/telemetry")]
    assert [e.frames[0].data for e in telemetry] == [bad.hex(), good.hex()]
    assert first.failed_meters == ["sul-m-1003"] and second.failed_meters == []
    assert asked[1] > day2 + timedelta(hours=1)  # after the good day's last capture, not day 1 again
    events = [json.loads(p) for t, p in publisher.messages if t.endswith("/up/events")]
    assert [e["type"] for e in events][:1] == ["meter_garbage"]


def test_the_next_event_read_starts_after_the_newest_entry_on_the_meters_clock():
    from hemera.domain.dlms.axdr import Tag, array, encode, encode_datetime, structure
    from hemera.domain.envelope import FrameKind
    from hemera_agent.agent import _newest_capture

    def log(*times: datetime) -> DlmsFrame:
        rows = [
            structure([encode(Tag.OCTET_STRING, encode_datetime(t)), encode(Tag.UNSIGNED, 1)]) for t in times
        ]
        return DlmsFrame(
            kind=FrameKind.EVENTS, obis="0.0.99.98.0.255", class_id=7, attribute=2, data=array(rows).hex()
        )

    # A meter 10 minutes behind the RTU logged a power-down at its 10:05 and a tamper at its 10:07
    standard = log(HISTORY + timedelta(hours=10, minutes=5))
    fraud = log(HISTORY + timedelta(hours=10, minutes=7))
    assert _newest_capture([standard, fraud]) == HISTORY + timedelta(hours=10, minutes=7)
    assert _newest_capture([log()]) is None
