"""The local IoT data plane survives a broker restart: the rules bridge reconnects and subscribes
again, so devices publishing after the restart still reach the store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.builders import hx300_envelope
from tests.integration.conftest import eventually, get_profile, run
from tests.integration.test_bad_input_and_isolation import TOPIC, broker, publish_all

pytestmark = pytest.mark.integration

DAY = datetime(2026, 9, 1, 14, tzinfo=UTC)  # 2026-09-02 00:00 in Sydney (UTC+10)


def test_data_published_after_a_broker_restart_still_lands(local_cloud, api_keys):
    # Given the broker restarted under the running bridge
    local_cloud.broker.stop()
    local_cloud.broker.start()
    before = local_cloud.bridge.stats.resubscriptions
    assert (
        eventually(lambda: local_cloud.bridge.stats.resubscriptions, lambda n: n > before, timeout_s=20)
        > before
    )

    # When a device publishes a day
    envelope = hx300_envelope("coastal-power", "rtu-syd-01", "cp-m-2001", DAY, [700] * 96, seq=9100)
    outcomes = run(
        publish_all(
            broker(local_cloud, "coastal-power", "rtu-syd-01"),
            "coastal-power:rtu-syd-01",
            [(TOPIC, envelope.to_json())],
        )
    )

    # Then it is acknowledged and the API shows it
    assert outcomes == ["acked"]
    response = eventually(
        lambda: get_profile(local_cloud, api_keys["coastal-power"], "cp-m-2001", "2026-09-02"),
        lambda r: r.json()["summary"]["intervals"] == 96,
    )
    assert response.json()["summary"]["total"] == 67.2  # 96 x 0.700 kWh
