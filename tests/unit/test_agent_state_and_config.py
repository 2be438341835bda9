"""The agent's configuration file, its durable state and its log lines."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hemera.domain.envelope import FrameKind, ModbusFrame
from hemera_agent.agent import split_window
from hemera_agent.config import FlowControl, InvalidAgentConfig, load_config
from hemera_agent.logs import configure_logging
from hemera_agent.reader import ProfileWindow
from hemera_agent.state import AgentState, CorruptState, StateStore

CONFIG = """
tenant: sul-energia
device: rtu-poa-01
broker: {host: localhost, port: 8883, cert: certs/dev.crt, key: certs/dev.key, ca: /etc/ca.crt, flow_control: none}
state_dir: state
meters:
  - {id: sul-m-1001, model: hx300, unit_id: 1, host: 127.0.0.1, port: 5020}
  - {id: sul-m-1002, model: hx300, unit_id: 2, host: 127.0.0.1, port: 5020}
"""


def test_a_config_file_loads_with_defaults_and_paths_relative_to_it(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG)

    config = load_config(path)

    assert config.client_id == "sul-energia:rtu-poa-01"
    assert config.telemetry_topic == "hemera/sul-energia/rtu-poa-01/up/telemetry"
    assert config.broker.cert == tmp_path / "certs" / "dev.crt"
    assert config.broker.ca == Path("/etc/ca.crt")
    assert config.state_dir == tmp_path / "state"
    assert config.broker.flow_control is FlowControl.NONE
    assert (config.poll_seconds, config.max_intervals_per_envelope, config.backfill_hours) == (60, 96, 24)
    # registers daily, instantaneous values every 5 minutes, event logs every 15 minutes
    assert (
        config.registers_every_seconds,
        config.instantaneous_every_seconds,
        config.events_every_seconds,
    ) == (86400, 300, 900)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (("sul-energia", "Sul_Energia"), "tenant"),
        (("unit_id: 2", "unit_id: 1"), "share host, port and unit id"),
        (("id: sul-m-1002", "id: sul-m-1001"), "unique"),
        (("flow_control: none", "flow_control: fast"), "broker.flow_control"),
        (("state_dir: state", "state_dir: state\nmystery: 1"), "mystery"),
        (("state_dir: state", "state_dir: state\nevents_every_seconds: -1"), "events_every_seconds"),
    ],
)
def test_a_bad_config_names_the_problem(tmp_path: Path, change: tuple[str, str], complaint: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG.replace(*change))
    with pytest.raises(InvalidAgentConfig, match=complaint):
        load_config(path)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state", "sul-energia", "rtu-poa-01")
    assert store.load() == AgentState()
    store.save(AgentState(next_seq=7, last_interval={"sul-m-1001": datetime(2026, 3, 2, 23, 45, tzinfo=UTC)}))

    again = StateStore(tmp_path / "state", "sul-energia", "rtu-poa-01").load()

    assert again.next_seq == 7
    assert again.last_interval == {"sul-m-1001": datetime(2026, 3, 2, 23, 45, tzinfo=UTC)}
    assert json.loads(store.path.read_text())["last_interval"] == {"sul-m-1001": "2026-03-02T23:45:00Z"}
    assert [p.name for p in store.path.parent.iterdir()] == ["agent-state.json"]  # no temp files left


def test_state_of_another_device_is_refused(tmp_path: Path) -> None:
    StateStore(tmp_path, "sul-energia", "rtu-poa-01").save(AgentState(next_seq=3))
    with pytest.raises(CorruptState, match="belongs to sul-energia/rtu-poa-01"):
        StateStore(tmp_path, "sul-energia", "rtu-poa-02").load()


def test_a_torn_state_file_is_reported_not_reset(tmp_path: Path) -> None:
    (tmp_path / "agent-state.json").write_text('{"schema": "hemera.agent-state/1", "next_seq": ')
    with pytest.raises(CorruptState):
        StateStore(tmp_path, "sul-energia", "rtu-poa-01").load()


def test_a_window_is_cut_between_records_into_two_raw_frames() -> None:
    # Given a window of three 2-register records and one empty slot
    frame = ModbusFrame(
        kind=FrameKind.LOAD_PROFILE,
        unit_id=3,
        function=3,
        address=210,
        count=8,
        data="0001000200030004000500060000" + "0000",
    )
    starts = tuple(datetime(2026, 3, 2, 0, 15 * i, tzinfo=UTC) for i in range(3))

    head, tail = split_window(ProfileWindow(frame, starts), records=2, record_size=2)

    assert (head.frame.address, head.frame.count, head.frame.registers()) == (210, 4, [1, 2, 3, 4])
    assert (tail.frame.address, tail.frame.count, tail.frame.registers()) == (214, 4, [5, 6, 0, 0])
    assert (head.interval_starts, tail.interval_starts) == (starts[:2], starts[2:])


def test_log_lines_are_json_with_tenant_and_device() -> None:
    stream = io.StringIO()
    configure_logging("sul-energia", "rtu-poa-01", "INFO", stream=stream)
    try:
        logging.getLogger("hemera_agent.test").info(
            "envelope published", extra={"meter": "sul-m-1001", "seq": 4}
        )
    finally:
        logging.getLogger().handlers.clear()

    line = json.loads(stream.getvalue())
    assert line["msg"] == "envelope published"
    assert (line["tenant"], line["device"], line["meter"], line["seq"]) == (
        "sul-energia",
        "rtu-poa-01",
        "sul-m-1001",
        4,
    )
