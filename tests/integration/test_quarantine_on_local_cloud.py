"""`hemera quarantine` against the running local cloud: a message for a meter that is not yet
registered is quarantined; once the meter is registered, `replay --all` lands its intervals in the
portal API and empties the tenant's quarantine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from hemera.domain.registry import Meter
from hemera.domain.tenancy import TenantContext
from hemera.wiring import ingest_ports
from hemera_local.quarantine_cli import quarantine_app
from tests.builders import hx300_envelope
from tests.integration.conftest import eventually, get_profile, run
from tests.integration.test_bad_input_and_isolation import TOPIC, broker, publish_all

pytestmark = pytest.mark.integration

DAY = datetime(2026, 7, 31, 14, tzinfo=UTC)  # 2026-08-01 00:00 in Sydney (UTC+10)


def test_a_message_for_an_unregistered_meter_is_replayed_after_registration(local_cloud, api_keys):
    # Given a day for meter cp-m-2099, which Coastal Power has not registered yet
    envelope = hx300_envelope("coastal-power", "rtu-syd-01", "cp-m-2099", DAY, [250] * 96, seq=9900)
    creds = broker(local_cloud, "coastal-power", "rtu-syd-01")
    assert run(publish_all(creds, "coastal-power:rtu-syd-01", [(TOPIC, envelope.to_json())])) == ["acked"]
    quarantine = ingest_ports(local_cloud.settings).quarantine

    def mine():
        return [r for r in quarantine.list("coastal-power") if r.message_id and b"cp-m-2099" in r.original]

    assert [r.reason for r in eventually(mine, lambda r: len(r) == 1)] == ["unknown_meter"]
    runner = CliRunner()
    state = ["--state-dir", str(local_cloud.state_dir)]
    listed = runner.invoke(quarantine_app, ["list", "--tenant", "coastal-power", *state])
    assert listed.exit_code == 0 and "unknown_meter" in listed.output

    # When the meter is registered and the quarantine replayed
    local_cloud_registry = ingest_ports(local_cloud.settings).registry
    local_cloud_registry.put_meter(
        TenantContext("coastal-power"),
        Meter("coastal-power", "cp-m-2099", "hx300", "modbus", "rtu-syd-01", "harbour-offices"),
    )
    replayed = runner.invoke(quarantine_app, ["replay", "--tenant", "coastal-power", "--all", *state])

    # Then its day is in the API and nothing of it is left in quarantine
    assert replayed.exit_code == 0, replayed.output
    body = get_profile(local_cloud, api_keys["coastal-power"], "cp-m-2099", "2026-08-01").json()
    assert body["summary"]["intervals"] == 96 and body["summary"]["total"] == 24
    assert mine() == []
