"""DLMS round trip over a real socket: the agent's reader against the DLMS meter simulator.

Every object the HD-500 serves is read through the wrapper with LLS and checked against the load
model (`profile.interval_energy`) it is generated from. Values are decoded by the cloud's A-XDR
decoder and, for the load profile, cross-checked with gurux's own parser (an independent reader).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from gurux_dlms import GXByteBuffer, GXDLMSSettings
from gurux_dlms.enums import DataType
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.internal._GXDataInfo import _GXDataInfo

from hemera.domain.dlms.axdr import decode, decode_datetime
from hemera.domain.dlms.model import decode_load_profile_buffer, load_dlms_model
from hemera.domain.envelope import FrameKind, Protocol, build_envelope, parse_envelope
from hemera.domain.readings import Channel
from hemera_agent.clock import SimClock
from hemera_agent.dlms import DlmsAssociationRefused, DlmsEndpoint, DlmsSession, read_load_profile
from hemera_agent.simulators.dlms_meter import DlmsMeter, DlmsMeterSimulator
from hemera_agent.simulators.profile import interval_energy, meter_seed

pytestmark = pytest.mark.integration

MODEL = load_dlms_model("hd500")
ZONE = "America/Sao_Paulo"
HISTORY_START = datetime(2026, 11, 16, 3, tzinfo=UTC)  # Monday 00:00 in São Paulo
NOW = HISTORY_START + timedelta(days=2, minutes=7)  # 192 intervals recorded
PASSWORD = "hd500-lls"
METER = DlmsMeter(
    meter_id="dl-m-1",
    load_class="industry",
    peak_kw=640.0,
    timezone=ZONE,
    seed=meter_seed("dlms-demo", "dl-m-1"),
    password=PASSWORD.encode(),
)
UNIT_W, UNIT_WH, UNIT_VARH, UNIT_A, UNIT_V, UNIT_HZ = 27, 30, 32, 33, 35, 44


def expected_intervals() -> list[tuple[datetime, object]]:
    starts = [HISTORY_START + timedelta(minutes=15 * i) for i in range(192)]
    return [(s, interval_energy(METER.seed, "industry", 640.0, ZONE, s)) for s in starts]


def frozen_clock(at: datetime) -> SimClock:
    return SimClock(start=at, speed=1.0, wall=lambda: at)


@pytest.fixture(scope="module")
def meter() -> Iterator[DlmsMeterSimulator]:
    with DlmsMeterSimulator(METER, clock=frozen_clock(NOW), history_start=HISTORY_START) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def endpoint(meter: DlmsMeterSimulator) -> DlmsEndpoint:
    return DlmsEndpoint("127.0.0.1", meter.port, PASSWORD)


@pytest.fixture(scope="module")
def values(endpoint: DlmsEndpoint) -> dict[tuple[str, int], object]:
    """Every register/instantaneous attribute the model lists, read once, decoded by OBIS/attr."""
    with DlmsSession(endpoint) as session:
        frames = session.read_registers(MODEL) + session.read_instantaneous(MODEL)
    assert {f.kind for f in frames} == {FrameKind.REGISTERS, FrameKind.INSTANTANEOUS}
    return {(f.obis, f.attribute): decode(f.raw()) for f in frames}


def test_the_load_profile_read_by_range_equals_the_load_model(endpoint):
    # Given a meter with two days of 15-minute history
    # When the reader asks for every capture since the history start
    with DlmsSession(endpoint) as session:
        frames = session.read_load_profile(MODEL, HISTORY_START, NOW)
    readings = [r for f in frames for r in decode_load_profile_buffer(MODEL, "dl-m-1", f.raw())]
    # Then there are 192 intervals of 4 channels, starting at the history start (clock = end)
    expected = expected_intervals()
    active = [r for r in readings if r.channel is Channel.ACTIVE_IMPORT]
    assert len(readings) == 4 * 192
    assert [r.start for r in active] == [s for s, _ in expected]
    # And every value is the load model's energy, in kWh/kvarh
    for channel, name in (
        (Channel.ACTIVE_IMPORT, "active_import_wh"),
        (Channel.ACTIVE_EXPORT, "active_export_wh"),
        (Channel.REACTIVE_IMPORT, "reactive_import_varh"),
        (Channel.REACTIVE_EXPORT, "reactive_export_varh"),
    ):
        got = [r.value for r in readings if r.channel is channel]
        assert got == [Decimal(getattr(e, name)) / 1000 for _, e in expected], channel
    # And each frame records its range; one frame per day
    assert len(frames) == 3 and all(f.selector is not None for f in frames)


def test_a_range_read_returns_only_the_captures_inside_it_and_gurux_agrees(endpoint):
    # Given the captures of one local morning hour, 09:00-10:00 (12:00-13:00 UTC), inclusive
    low, high = HISTORY_START + timedelta(hours=12), HISTORY_START + timedelta(hours=13)
    with DlmsSession(endpoint) as session:
        frame = session.read_profile_range(FrameKind.LOAD_PROFILE, MODEL.load_profile.obis, low, high)
    # When gurux's own parser reads the same bytes (an independent reader)
    rows = _GXCommon.getData(GXDLMSSettings(False, None), GXByteBuffer(frame.raw()), _GXDataInfo())
    settings = GXDLMSSettings(False, None)
    clocks = [_GXCommon.changeType(settings, bytearray(r[0]), DataType.DATETIME).value for r in rows]
    # Then it sees the 5 captures 12:00, 12:15, ... 13:00 with the model's active energy
    assert [c.astimezone(UTC) for c in clocks] == [low + timedelta(minutes=15 * i) for i in range(5)]
    expected = {s + timedelta(minutes=15): e for s, e in expected_intervals()}
    assert [r[1] for r in rows] == [expected[c.astimezone(UTC)].active_import_wh for c in clocks]


def test_energy_registers_equal_the_load_profile_sums_with_their_scaler_and_unit(values):
    expected = [e for _, e in expected_intervals()]
    for obis, name, unit in (
        ("1.0.1.8.0.255", "active_import_wh", UNIT_WH),
        ("1.0.2.8.0.255", "active_export_wh", UNIT_WH),
        ("1.0.3.8.0.255", "reactive_import_varh", UNIT_VARH),
        ("1.0.4.8.0.255", "reactive_export_varh", UNIT_VARH),
    ):
        assert values[(obis, 2)] == sum(getattr(e, name) for e in expected), obis
        assert values[(obis, 3)] == (0, unit), obis
    # Industry: capacitive at night, inductive by day - both reactive registers move
    assert values[("1.0.3.8.0.255", 2)] > 0 and values[("1.0.4.8.0.255", 2)] > 0


def test_tariff_registers_split_the_total_at_the_weekday_peak_hours(values):
    zone = ZoneInfo(ZONE)
    peak = sum(
        e.active_import_wh
        for s, e in expected_intervals()
        if s.astimezone(zone).weekday() < 5 and 18 <= s.astimezone(zone).hour < 21
    )
    assert values[("1.0.1.8.1.255", 2)] == peak > 0
    assert values[("1.0.1.8.1.255", 2)] + values[("1.0.1.8.2.255", 2)] == values[("1.0.1.8.0.255", 2)]
    assert values[("1.0.1.8.1.255", 3)] == values[("1.0.1.8.2.255", 3)] == (0, UNIT_WH)


def test_maximum_demand_is_the_highest_interval_demand_with_its_capture_time(values):
    demand = [(e.active_import_wh * 4, s + timedelta(minutes=15)) for s, e in expected_intervals()]
    best_w, _ = max(demand, key=lambda d: d[0])
    assert values[("1.0.1.6.0.255", 2)] == best_w
    assert values[("1.0.1.6.0.255", 3)] == (0, UNIT_W)
    assert values[("1.0.1.6.0.255", 4)] == 0
    assert decode_datetime(values[("1.0.1.6.0.255", 5)]) == min(at for w, at in demand if w == best_w)
    assert best_w <= 640_000


def test_instantaneous_values_are_plausible_and_match_the_newest_interval(values):
    volts = [values[(o, 2)] / 10 for o in ("1.0.32.7.0.255", "1.0.52.7.0.255", "1.0.72.7.0.255")]
    amps = [values[(o, 2)] / 100 for o in ("1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255")]
    pf = values[("1.0.13.7.0.255", 2)] / 1000
    assert all(217.8 <= v <= 222.2 for v in volts)  # 220 V +-1 %
    assert 0.8 <= pf <= 1.0
    assert values[("1.0.14.7.0.255", 2)] == 6000  # 60.00 Hz (Brazil)
    assert [
        values[(o, 3)] for o in ("1.0.32.7.0.255", "1.0.31.7.0.255", "1.0.13.7.0.255", "1.0.14.7.0.255")
    ] == [
        (-1, UNIT_V),
        (-2, UNIT_A),
        (-3, 255),
        (-2, UNIT_HZ),
    ]
    # P = sum(V * I * PF) equals the newest interval's average demand (within rounding)
    newest = expected_intervals()[-1][1]
    power_w = sum(v * a * pf for v, a in zip(volts, amps, strict=True))
    assert power_w == pytest.approx(newest.active_import_wh * 4, rel=0.01)


def test_event_logs_and_clock(endpoint):
    with DlmsSession(endpoint) as session:
        logs = {f.obis: decode(f.raw()) for f in session.read_events(MODEL)}
        since_six = {
            f.obis: decode(f.raw()) for f in session.read_events(MODEL, HISTORY_START + timedelta(hours=7))
        }
        clock = decode(session.read_clock())

    def entries(rows):
        return [(decode_datetime(at), code) for at, code in rows]

    assert entries(logs["0.0.99.98.0.255"]) == [(HISTORY_START, 255)]
    assert entries(logs["0.0.99.98.1.255"]) == [
        (HISTORY_START + timedelta(hours=6), 40),
        (HISTORY_START + timedelta(hours=6, minutes=5), 41),
    ]
    assert entries(logs["1.0.99.97.0.255"]) == [
        (HISTORY_START + timedelta(hours=12), 1),
        (HISTORY_START + timedelta(hours=12, minutes=5), 2),
    ]
    # A range read of the logs returns only the newer entries
    assert since_six["0.0.99.98.1.255"] == [] and len(since_six["1.0.99.97.0.255"]) == 2
    assert decode_datetime(clock) == NOW.replace(microsecond=0)


def test_disconnect_control_opens_the_relay_and_logs_it():
    at = NOW
    simulator = DlmsMeterSimulator(METER, clock=frozen_clock(at), history_start=HISTORY_START)
    with simulator, DlmsSession(DlmsEndpoint("127.0.0.1", simulator.port, PASSWORD)) as session:
        before = [decode(session.get("0.0.96.3.10.255", 70, a)) for a in (2, 3, 4)]
        session.operate_disconnect_control(MODEL, connect=False)
        after = [decode(session.get("0.0.96.3.10.255", 70, a)) for a in (2, 3)]
        log = decode(session.read_events(MODEL)[0].raw())
    assert before == [True, 1, 1]  # output connected, control state connected, mode 1
    assert after == [False, 0]
    assert (decode_datetime(log[-1][0]), log[-1][1]) == (at.replace(microsecond=0), 59)


@pytest.mark.parametrize("password", ["wrong", ""])
def test_a_wrong_password_is_refused(meter, password):
    with pytest.raises(DlmsAssociationRefused):
        DlmsSession(DlmsEndpoint("127.0.0.1", meter.port, password)).open()


def test_the_async_reader_feeds_an_envelope_the_cloud_accepts(endpoint):
    # When the agent-facing coroutine reads the last 2 hours
    since = NOW - timedelta(hours=2)
    frames = asyncio.run(read_load_profile(endpoint.host, endpoint.port, PASSWORD, since, NOW))
    envelope = build_envelope(
        tenant="dlms-demo",
        device="rtu-dl-01",
        meter="dl-m-1",
        model="hd500",
        protocol=Protocol.DLMS,
        seq=1,
        collected_at=NOW,
        frames=frames,
    )
    # Then the envelope survives JSON and decodes to the 8 intervals that ended in that window
    parsed = parse_envelope(envelope.to_json())
    readings = [r for f in parsed.frames for r in decode_load_profile_buffer(MODEL, "dl-m-1", f.raw())]
    assert len({r.start for r in readings}) == 8


def test_the_simulator_runs_as_a_process_from_a_tenant_file(tmp_path):
    # Given a tenant file with a DLMS meter and a simulator process with 6 h of history
    tenant_file = tmp_path / "dlms-demo.yaml"
    tenant_file.write_text(
        "id: dlms-demo\nname: DLMS demo\ncountry: BR\ntimezone: America/Sao_Paulo\n"
        "customers: [{id: fabrica, name: Fabrica, load_class: industry}]\n"
        "rtus: [{id: rtu-dl-01}]\n"
        "meters: [{id: dl-m-1, model: hd500, protocol: dlms, rtu: rtu-dl-01, customer: fabrica, peak_kw: 640}]\n"
    )
    start = (datetime.now(UTC) - timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hemera_agent.simulators.dlms_meter",
            "--port",
            "0",
            "--tenant-file",
            str(tenant_file),
            "--meter",
            "dl-m-1",
            "--password",
            PASSWORD,
            "--speed",
            "1",  # the history is recorded at start
            "--history-start",
            start.isoformat(),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        # When the reader reads its first two hours of profile
        with DlmsSession(DlmsEndpoint("127.0.0.1", port, PASSWORD)) as session:
            (frame,) = session.read_load_profile(MODEL, start, start + timedelta(hours=2))
        readings = decode_load_profile_buffer(MODEL, "dl-m-1", frame.raw())
        # Then the 8 intervals are the load model's for the tenant-qualified meter seed
        active = [r for r in readings if r.channel is Channel.ACTIVE_IMPORT]
        assert [r.start for r in active] == [start + timedelta(minutes=15 * i) for i in range(8)]
        assert [r.raw_value for r in active] == [
            interval_energy(METER.seed, "industry", 640.0, ZONE, r.start).active_import_wh for r in active
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
