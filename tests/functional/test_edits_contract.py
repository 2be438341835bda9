"""The in-memory interval edits and the DynamoDB adapter (on moto) pass the same cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hemera import aws
from hemera.adapters.edits_dynamodb import DynamoEdits, edit_model
from hemera.adapters.edits_memory import MemoryEdits
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.domain.vee import IntervalEdit

ACME, ACME_CORP = TenantContext("acme"), TenantContext("acme-corp")
START = datetime(2026, 11, 20, 3, tzinfo=UTC)
MADE = datetime(2026, 11, 21, 9, 30, 15, 250000, tzinfo=UTC)


def edit(n: int, value: str = "1.5", at: datetime = MADE) -> IntervalEdit:
    return IntervalEdit(START + timedelta(minutes=15 * n), Decimal(value), "check meter", "user:otto", at)


@pytest.fixture(params=["memory", "aws"])
def edits(request, moto_cloud):
    if request.param == "memory":
        return MemoryEdits()
    host = aws.endpoint_url(moto_cloud.aws, "dynamodb")
    return DynamoEdits(edit_model(moto_cloud.readings_table, moto_cloud.aws, host))


def test_edits_of_a_range_come_back_in_interval_then_time_order(edits):
    later = MADE + timedelta(hours=2)
    edits.add_edits(ACME, "m-1", Channel.ACTIVE_IMPORT, [edit(4, "9", later), edit(0), edit(4), edit(8)])
    found = edits.edits(ACME, "m-1", Channel.ACTIVE_IMPORT, START, START + timedelta(minutes=15 * 8))
    # [start, end): the edit at the end is left out; both edits of interval 4 are kept, oldest first
    assert found == [edit(0), edit(4), edit(4, "9", later)]


def test_recording_an_edit_again_changes_nothing(edits):
    edits.add_edits(ACME, "m-1", Channel.ACTIVE_IMPORT, [edit(1)])
    edits.add_edits(ACME, "m-1", Channel.ACTIVE_IMPORT, [edit(1)])
    assert edits.edits(ACME, "m-1", Channel.ACTIVE_IMPORT, START, START + timedelta(days=1)) == [edit(1)]


def test_edits_stay_with_their_tenant_meter_and_channel(edits):
    edits.add_edits(ACME, "m-1", Channel.ACTIVE_IMPORT, [edit(1)])
    day = (START, START + timedelta(days=1))
    assert edits.edits(ACME_CORP, "m-1", Channel.ACTIVE_IMPORT, *day) == []
    assert edits.edits(ACME, "m-2", Channel.ACTIVE_IMPORT, *day) == []
    assert edits.edits(ACME, "m-1", Channel.ACTIVE_EXPORT, *day) == []
