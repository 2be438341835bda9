"""The command sweeps function on moto: the re-read job sends a read for exactly a meter's gap to
its RTU (and no more once the gap is closed); the expiry job marks unanswered commands expired."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hemera.definitions import COMMAND_SWEEPS_FUNCTION, EXPIRE_COMMANDS_JOB, REREADS_JOB
from hemera.domain.commands import CommandKind, CommandStatus
from hemera.domain.readings import Channel, IntervalReading, Unit
from hemera.domain.tenancy import TenantContext
from hemera.services.commands import issue_command
from hemera.wiring import command_ports, ingest_ports
from hemera_local.bridge import LambdaContext, load_handler

TENANT, METER, RTU = "coastal-power", "cp-m-2001", "rtu-syd-01"
CTX = TenantContext(TENANT)


@pytest.fixture
def cloud(moto_cloud, monkeypatch):
    # moto answers iot-data only on the generic data endpoint (see test_portal_commands).
    monkeypatch.setattr(
        "hemera.adapters.commands_iot.IotDataPublisher.endpoint",
        lambda self: "https://data-ats.iot.us-east-1.amazonaws.com",
    )
    return moto_cloud


def published() -> list[tuple[str, dict]]:
    from moto.backends import get_backend

    backend = get_backend("iot-data")["123456789012"]["us-east-1"]
    return [(topic, json.loads(payload)) for topic, payload in backend.published_payloads]


def run(job: str) -> dict:
    handler = load_handler(COMMAND_SWEEPS_FUNCTION)
    # The schedule's payload is the event (the rule target's input), in AWS and locally.
    return handler({"job": job}, LambdaContext("command_sweeps"))


def store_quarter_hours(settings, first: datetime, count: int, skip: range) -> None:
    readings = [
        IntervalReading(
            METER, Channel.ACTIVE_IMPORT, first + i * timedelta(minutes=15), 15, Decimal("1.5"), Unit.KWH
        )
        for i in range(count)
        if i not in skip
    ]
    ingest_ports(settings).store.merge_intervals(CTX, readings)


def test_the_reread_job_asks_the_rtu_for_exactly_the_missing_range_once(cloud):
    # Given cp-m-2001 delivered yesterday's quarter hours except 10:00-10:45 UTC
    day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    store_quarter_hours(cloud, day, 96, skip=range(40, 43))
    # When the re-read job runs
    result = run(REREADS_JOB)
    # Then one read_range for [10:00, 10:45) went to the meter's RTU
    assert result["tenants"][TENANT]["sent"] == 1
    ((topic, document),) = published()
    assert topic == f"hemera/{TENANT}/{RTU}/down/cmd"
    assert (document["type"], document["meter"]) == ("read_range", METER)
    assert document["params"] == {
        "from": (day + timedelta(hours=10)).isoformat().replace("+00:00", "Z"),
        "to": (day + timedelta(hours=10, minutes=45)).isoformat().replace("+00:00", "Z"),
    }
    # and its audit trail names the sweep
    (command,) = command_ports(cloud).commands.open_commands(CTX, 10)
    assert (command.requested_by, command.requester_role, command.status) == (
        "hemera:reread-sweep",
        "system",
        CommandStatus.SENT,
    )
    # When the sweep runs again before its retry interval: nothing more is sent
    assert run(REREADS_JOB)["tenants"][TENANT]["sent"] == 0
    # When the re-read data arrives and the sweep runs: the gap is closed and forgotten
    store_quarter_hours(cloud, day + timedelta(hours=10), 3, skip=range(0))
    again = run(REREADS_JOB)["tenants"][TENANT]
    assert (again["gaps"], again["sent"]) == (0, 0)
    assert len(published()) == 1


def test_the_expiry_job_marks_commands_unanswered_past_the_deadline_expired(cloud):
    ports = command_ports(cloud)
    meter = ports.registry.get_meter(CTX, METER)
    now = datetime.now(UTC)
    # Given a command sent 2 hours ago and one sent a minute ago, neither acknowledged
    old = issue_command(
        ports, CTX, meter, CommandKind.CLOCK_SYNC, {}, "user:otto", "operator", now - timedelta(hours=2)
    )
    new = issue_command(
        ports, CTX, meter, CommandKind.CLOCK_SYNC, {}, "user:otto", "operator", now - timedelta(minutes=1)
    )
    # When the expiry job runs
    result = run(EXPIRE_COMMANDS_JOB)
    # Then only the old one is expired, and it leaves the open list
    assert result["expired"][TENANT] == 1
    assert ports.commands.get(CTX, METER, old.id).status is CommandStatus.EXPIRED
    assert ports.commands.get(CTX, METER, new.id).status is CommandStatus.SENT
    assert [c.id for c in ports.commands.open_commands(CTX, 10)] == [new.id]
