"""A command through the whole local cloud: an operator asks the running API, the RTU receives it
on its command topic from the local broker (the stand-in for IoT Core's data endpoint), answers on
its ack topic, and the command's status follows — through the rules bridge and the command_ack
function."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
import requests

from hemera import aws
from hemera_agent.publisher import Mqtt5Publisher
from hemera_local import identity
from tests.integration.conftest import eventually
from tests.integration.test_bad_input_and_isolation import broker

pytestmark = pytest.mark.integration

PASSWORD = "Portal-Commands-2026!"
OPERATOR = "cmd.operator"
TENANT, DEVICE, METER = "sul-energia", "rtu-poa-01", "sul-m-1001"


def test_a_command_reaches_the_rtu_and_its_ack_closes_it(local_cloud):
    local_cloud.add_portal_user(OPERATOR, PASSWORD, "operator", TENANT)
    token = identity.login(
        aws.client(local_cloud.target, "cognito-idp"), local_cloud.user_pool, OPERATOR, PASSWORD
    )["IdToken"]
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{local_cloud.api_url}/v1/meters/{METER}/commands"

    async def scenario() -> tuple[dict, list[tuple[str, bytes]]]:
        received: list[tuple[str, bytes]] = []
        async with Mqtt5Publisher(broker(local_cloud, TENANT, DEVICE), f"{TENANT}:{DEVICE}") as rtu:
            rtu.on_message(f"hemera/{TENANT}/{DEVICE}/down/#", lambda t, p: received.append((t, p)))
            await asyncio.sleep(0.5)  # the subscription is in place
            # When an operator asks for a clock sync
            response = await asyncio.to_thread(
                requests.post, url, json={"kind": "clock_sync"}, headers=headers, timeout=20
            )
            assert response.status_code == 201, response.text
            command = response.json()
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.1)
            # and the RTU answers that it ran it
            now = datetime.now(UTC).isoformat()
            ack = {
                "schema": "hemera.cmd-ack/1",
                "id": command["id"],
                "status": "ok",
                "started_at": now,
                "finished_at": now,
            }
            await rtu.publish(f"hemera/{TENANT}/{DEVICE}/up/cmd-ack", json.dumps(ack).encode())
        return command, received

    command, received = asyncio.run(scenario())
    # Then the RTU got exactly the agent's command document on its own command topic
    assert command["status"] == "sent"
    assert [(t, json.loads(p)) for t, p in received] == [
        (
            f"hemera/{TENANT}/{DEVICE}/down/cmd",
            {"id": command["id"], "type": "clock_sync", "meter": METER, "params": {}},
        )
    ]
    # and the command is acknowledged, with its audit trail
    final = eventually(
        lambda: requests.get(f"{url}/{command['id']}", headers=headers, timeout=10).json(),
        lambda doc: doc.get("status") == "acknowledged",
        timeout_s=30,
    )
    assert final["status"] == "acknowledged"
