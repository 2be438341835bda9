"""Meter commands: the states a command goes through, from the request to the RTU's ack."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hemera.domain.commands import (
    AckDeviceMismatch,
    CommandKind,
    CommandStatus,
    InvalidCommandRequest,
    InvalidTransition,
    MalformedAck,
    MeterCommand,
    apply_ack,
    expire,
    mark_sent,
    new_command_id,
    parse_ack,
    validate_params,
)

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def command(status: CommandStatus = CommandStatus.REQUESTED) -> MeterCommand:
    return MeterCommand(
        "sul-energia", "c0000000001-aa", "sul-m-1001", "rtu-poa-01", CommandKind.DISCONNECT, {},
        "user:otto", "operator", AT, status, sent_at=AT if status is not CommandStatus.REQUESTED else None,
    )  # fmt: skip


def ack(status: str, result: dict | None = None, id_: str = "c0000000001-aa"):
    return parse_ack(
        json.dumps(
            {"schema": "hemera.cmd-ack/1", "id": id_, "status": status, "result": result or {},
             "started_at": "2026-11-22T12:00:01Z", "finished_at": "2026-11-22T12:00:02Z"}
        ).encode()
    )  # fmt: skip


def test_a_sent_command_acked_ok_is_acknowledged_with_the_rtu_result():
    closed = apply_ack(mark_sent(command(), AT), ack("ok", {"relay": "open"}), "rtu-poa-01")
    assert closed.status is CommandStatus.ACKNOWLEDGED
    assert closed.ack_result == {"relay": "open"}
    assert closed.closed_at == datetime(2026, 11, 22, 12, 0, 2, tzinfo=UTC)


def test_an_error_ack_fails_the_command_with_the_agents_reason():
    closed = apply_ack(
        command(CommandStatus.SENT), ack("error", {"reason": "no_link", "detail": "timeout"}), "rtu-poa-01"
    )
    assert (closed.status, closed.detail) == (CommandStatus.FAILED, "no_link: timeout")


def test_a_duplicate_ack_closes_as_the_first_run_ended_and_a_repeated_ack_changes_nothing():
    sent = command(CommandStatus.SENT)
    assert (
        apply_ack(sent, ack("duplicate", {"original_status": "ok"}), "rtu-poa-01").status
        is CommandStatus.ACKNOWLEDGED
    )
    assert apply_ack(sent, ack("duplicate"), "rtu-poa-01") == sent
    closed = apply_ack(sent, ack("ok"), "rtu-poa-01")
    assert apply_ack(closed, ack("error"), "rtu-poa-01") == closed


def test_an_ack_from_another_rtu_is_refused():
    with pytest.raises(AckDeviceMismatch):
        apply_ack(command(CommandStatus.SENT), ack("ok"), "rtu-other")


def test_a_late_ack_still_closes_an_expired_command():
    expired = expire(command(CommandStatus.SENT), AT + timedelta(hours=2))
    assert expired.status is CommandStatus.EXPIRED
    assert apply_ack(expired, ack("ok"), "rtu-poa-01").status is CommandStatus.ACKNOWLEDGED


def test_only_requested_commands_are_sent_and_only_overdue_ones_expire():
    with pytest.raises(InvalidTransition):
        mark_sent(command(CommandStatus.SENT), AT)
    with pytest.raises(InvalidTransition):
        expire(command(CommandStatus.SENT), AT + timedelta(minutes=5))


def test_the_payload_is_the_agents_command_schema_on_its_down_topic():
    sent = mark_sent(command(), AT)
    assert sent.topic == "hemera/sul-energia/rtu-poa-01/down/cmd"
    assert sent.agent_payload() == {
        "id": "c0000000001-aa",
        "type": "disconnect",
        "meter": "sul-m-1001",
        "params": {},
    }


def test_ids_sort_in_time_order():
    assert new_command_id(AT, "00000000") < new_command_id(AT + timedelta(milliseconds=1), "00000000")


def test_params_are_checked_per_kind():
    assert validate_params(CommandKind.READ_RANGE, {"from": "2026-11-20T00:00:00-03:00", "to": "2026-11-20T06:00:00-03:00"}) == {
        "from": "2026-11-20T03:00:00Z", "to": "2026-11-20T09:00:00Z"
    }  # fmt: skip
    assert validate_params(CommandKind.CLOCK_SYNC, None) == {}
    for kind, params in (
        (CommandKind.CONNECT, {"x": 1}),
        (CommandKind.CLOCK_SYNC, {"epoch": -1}),
        (CommandKind.READ_RANGE, {"from": "2026-11-20", "to": "2026-11-21T00:00:00Z"}),
        (CommandKind.READ_RANGE, {"from": "2026-11-20T00:00:00Z", "to": "2027-11-21T00:00:00Z"}),
    ):
        with pytest.raises(InvalidCommandRequest):
            validate_params(kind, params)


def test_a_document_that_is_not_an_ack_is_malformed():
    with pytest.raises(MalformedAck):
        parse_ack(b'{"id": "x"}')


def test_the_service_on_the_memory_fakes_sends_refuses_and_closes():
    from hemera.adapters.commands_memory import MemoryCommandStore, MemoryPublisher
    from hemera.adapters.memory import MemoryRegistry
    from hemera.domain.commands import CommandForbidden
    from hemera.domain.registry import Meter
    from hemera.domain.tenancy import TenantContext
    from hemera.services.access import Caller, Role
    from hemera.services.commands import CommandPorts, record_ack, request_command

    registry, store, publisher = MemoryRegistry(), MemoryCommandStore(), MemoryPublisher()
    ctx = TenantContext("sul-energia")
    registry.put_meter(ctx, Meter("sul-energia", "sul-m-1001", "hx300", "modbus", "rtu-poa-01", "acme"))
    ports = CommandPorts(registry, store, publisher)
    with pytest.raises(CommandForbidden):
        request_command(
            ports, Caller(ctx, None, Role.MACHINE), "key:x", "sul-m-1001", {"kind": "connect"}, AT
        )
    sent = request_command(
        ports, Caller(ctx, None, Role.OPERATOR), "user:otto", "sul-m-1001", {"kind": "connect"}, AT
    )
    assert sent.status is CommandStatus.SENT and publisher.published[0][0] == sent.topic
    closed = record_ack(store, "sul-energia", "rtu-poa-01", json.dumps(
        {"schema": "hemera.cmd-ack/1", "id": sent.id, "status": "ok", "result": {"relay": "connected"},
         "started_at": "2026-11-22T12:00:01Z", "finished_at": "2026-11-22T12:00:02Z"}).encode())  # fmt: skip
    assert closed is not None and store.get(ctx, "sul-m-1001", sent.id) == closed
    assert closed.status is CommandStatus.ACKNOWLEDGED
    publisher.fail_with = ConnectionError("broker down")
    failed = request_command(
        ports, Caller(ctx, None, Role.ADMIN), "user:ana", "sul-m-1001", {"kind": "connect"}, AT
    )
    assert failed.status is CommandStatus.FAILED
