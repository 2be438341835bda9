"""The open-command list (the expiry sweep's work list): the fake and the DynamoDB adapter pass
the same cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hemera.adapters.commands_memory import MemoryCommandStore
from hemera.domain.commands import CommandKind, CommandStatus, MeterCommand, mark_sent
from hemera.domain.tenancy import TenantContext
from hemera.wiring import command_ports

ACME, CORP = TenantContext("acme"), TenantContext("acme-corp")
T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


@pytest.fixture(params=["memory", "aws"])
def store(request, moto_cloud):
    return MemoryCommandStore() if request.param == "memory" else command_ports(moto_cloud).commands


def command(ctx: TenantContext, n: int) -> MeterCommand:
    at = T0 + timedelta(minutes=n)
    return MeterCommand(
        ctx.tenant_id, f"c{n:012x}-00000000", "m-1", "rtu-1", CommandKind.CLOCK_SYNC, {}, "u", "operator", at
    )


def test_open_commands_are_the_unanswered_ones_of_the_tenant_oldest_first(store):
    # Given three commands of acme (one answered) and one of acme-corp
    for ctx, n in ((ACME, 3), (ACME, 1), (ACME, 2), (CORP, 4)):
        store.create(ctx, command(ctx, n))
    sent = mark_sent(command(ACME, 2), T0)
    store.update(ACME, sent, CommandStatus.REQUESTED)
    answered = mark_sent(command(ACME, 3), T0)
    store.update(ACME, answered, CommandStatus.REQUESTED)
    store.update(ACME, replace(answered, status=CommandStatus.ACKNOWLEDGED, closed_at=T0), CommandStatus.SENT)
    # When the open list is read
    found = store.open_commands(ACME, 10)
    # Then it holds acme's requested and sent commands, oldest first, nothing of acme-corp
    assert [(c.id[:13], c.status) for c in found] == [
        ("c000000000001", CommandStatus.REQUESTED),
        ("c000000000002", CommandStatus.SENT),
    ]
    assert len(store.open_commands(ACME, 1)) == 1
