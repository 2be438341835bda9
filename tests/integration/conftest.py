"""The local cloud as a fixture: moto server, mosquitto (mTLS), rules bridge, `chalice local`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest
import requests

from hemera import aws
from hemera.definitions import ALARM_CHANGED, ALARMS_SOURCE
from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.notifications import tenant_topic_name
from hemera.tenants import TenantDefinition, load_tenant_file
from hemera_agent.agent import Agent
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import Mqtt5Publisher
from hemera_agent.simulators.dlms_meter import DlmsMeterSimulator, dlms_meter
from hemera_local.broker import BRIDGE_IDENTITY, Mosquitto, acl_text, free_port
from hemera_local.cloud import LocalCloud, LocalCloudConfig
from hemera_local.pki import LocalPki
from tests.builders import LOAD_PROFILE_ONLY
from tests.conftest import TENANTS_DIR


@pytest.fixture(scope="package")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    state = tmp_path_factory.mktemp("hemera-state")
    with LocalCloud(LocalCloudConfig(state_dir=state, tenants_dir=TENANTS_DIR, api_port=0)) as cloud:
        yield cloud


@pytest.fixture(scope="package")
def api_keys(local_cloud: LocalCloud) -> dict[str, str]:
    return {tenant: local_cloud.issue_api_key(tenant, "integration tests") for tenant in local_cloud.tenants}


def local_yesterday(tenant: TenantDefinition) -> datetime:
    """Midnight at the start of yesterday in the tenant's zone."""
    today = datetime.now(tenant.zone).date()
    return datetime.combine(today - timedelta(days=1), clock_time(0), tzinfo=tenant.zone)


def agent_config(
    cloud: LocalCloud, tenant: TenantDefinition, rtu: str, meter_port: int, state: Path
) -> AgentConfig:
    creds = cloud.device_credentials(tenant.id, rtu)
    return AgentConfig.model_validate(
        {
            "tenant": tenant.id,
            "device": rtu,
            "broker": {
                "host": "127.0.0.1",
                "port": cloud.mqtt_port,
                "cert": str(creds.cert),
                "key": str(creds.key),
                "ca": str(creds.ca),
                "flow_control": "none",
            },
            "state_dir": str(state),
            "backfill_hours": 48,
            "meters": [
                {"id": m.id, "model": m.model, "unit_id": m.unit_id, "host": "127.0.0.1", "port": meter_port}
                for m in tenant.meters_of(rtu)
                if m.protocol == "modbus"  # the DLMS meters have their own endpoints
            ],
        }
    )


def eventually(probe: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float = 30.0) -> Any:
    """Poll `probe` until `done(result)`; return the last result (the assertion follows)."""
    deadline = time.monotonic() + timeout_s
    result = probe()
    while not done(result) and time.monotonic() < deadline:
        time.sleep(0.3)
        result = probe()
    return result


def get_profile(cloud: LocalCloud, key: str, meter: str, start: str) -> requests.Response:
    return requests.get(
        f"{cloud.api_url}/v1/meters/{meter}/load-profile",
        params={"from": start},
        headers={"x-api-key": key},
        timeout=10,
    )


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def poll_dlms_meter_once(
    cloud: LocalCloud,
    tenant: TenantDefinition,
    rtu: str,
    meter_id: str,
    faults: Sequence[object],
    history_start: datetime,
    state: Path,
    password: str = "hd500-lls",
) -> Any:
    """A tenant's DLMS meter simulated with `faults` since `history_start`, read once by an agent
    that publishes everything it read to the local cloud; returns the agent's poll report."""
    definition = next(m for m in tenant.meters if m.id == meter_id)
    meter = replace(dlms_meter(tenant, definition, password.encode()), faults=tuple(faults))
    clock = SimClock(start=datetime.now(UTC), speed=1)
    with DlmsMeterSimulator(meter, clock=clock, history_start=history_start) as sim:
        base = agent_config(cloud, tenant, rtu, sim.port, state)
        reads = {
            "id": meter_id,
            "model": definition.model,
            "protocol": "dlms",
            "port": sim.port,
            "password": password,
        }
        config = AgentConfig.model_validate({**base.model_dump(mode="json"), "meters": [reads]})

        async def publish_once() -> Any:
            async with Mqtt5Publisher(config.broker, config.client_id) as publisher:
                return await Agent(config, publisher).poll_once()

        return run(publish_once())


DEVICE_CN = "sul-energia:rtu-poa-01"


@dataclass
class Broker:
    """A throw-away mosquitto of the local cloud (mTLS, ACL from Sul Energia's tenant file), the
    certificate of its RTU rtu-poa-01 and one with the rules bridge's identity (reads `up`)."""

    mosquitto: Mosquitto
    ca: Path
    device: tuple[Path, Path]
    bridge: tuple[Path, Path]

    @property
    def port(self) -> int:
        return self.mosquitto.port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    pki = LocalPki(tmp_path / "pki")
    tenant = load_tenant_file(TENANTS_DIR / "sul-energia.yaml")
    mosquitto = Mosquitto(tmp_path / "broker", pki, free_port(), acl_text([tenant]))
    mosquitto.start()
    try:
        device, bridge = pki.client(DEVICE_CN), pki.client(BRIDGE_IDENTITY)
        yield Broker(mosquitto, pki.ca_cert, (device.cert, device.key), (bridge.cert, bridge.key))
    finally:
        mosquitto.stop()


def agent_document(broker: Broker, meters: list[dict[str, Any]], state: Path, **extra: Any) -> dict[str, Any]:
    """An agent config for rtu-poa-01 on the throw-away broker: fast polls and reconnects, load
    profiles only (unless `extra` says otherwise)."""
    return {
        "tenant": "sul-energia",
        "device": "rtu-poa-01",
        "broker": {
            "host": "localhost",
            "port": broker.port,
            "cert": str(broker.device[0]),
            "key": str(broker.device[1]),
            "ca": str(broker.ca),
            "flow_control": "none",
            "ack_timeout_seconds": 3,
            "connect_timeout_seconds": 3,
        },
        "state_dir": str(state),
        "poll_seconds": 0.1,
        "backfill_hours": 48,
        "reconnect": {"base_seconds": 0.1, "cap_seconds": 0.5},
        "meters": meters,
        **LOAD_PROFILE_ONLY,
        **extra,
    }


def alarm_transition(
    tenant_id: str,
    number: int,
    alarm_type: str = "power_down",
    subject: tuple[str, str] = ("rtu", "rtu-1"),
) -> AlarmTransition:
    """An alarm's opening (`<tenant>-tr-<number>` of alarm `<tenant>-al-<number>`), now."""
    at = datetime.now(UTC).replace(microsecond=0)
    return AlarmTransition(
        transition_id=f"{tenant_id}-tr-{number}",
        tenant_id=tenant_id,
        alarm_id=f"{tenant_id}-al-{number}",
        alarm_type=alarm_type,
        severity="critical",
        subject=subject[0],
        subject_id=subject[1],
        state="open",
        previous_state=None,
        at=at,
        first_seen=at - timedelta(minutes=1),
        last_seen=at,
        count=1,
    )


def put_alarm_changed(cloud: LocalCloud, transition: AlarmTransition) -> None:
    """Put `AlarmChanged` on the local cloud's platform bus, as the alarms function does."""
    assert cloud.settings is not None
    answer = aws.client(cloud.target, "events").put_events(
        Entries=[
            {
                "EventBusName": cloud.settings.event_bus,
                "Source": ALARMS_SOURCE,
                "DetailType": ALARM_CHANGED,
                "Detail": json.dumps(transition.detail()),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def topic_inbox(cloud: LocalCloud, tenant_id: str) -> str:
    """An SQS queue subscribed to the tenant's notification topic (as its e-mail subscribers are)."""
    sqs, sns = aws.client(cloud.target, "sqs"), aws.client(cloud.target, "sns")
    inbox = sqs.create_queue(QueueName=f"{tenant_id}-topic-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = next(
        t["TopicArn"]
        for t in sns.list_topics()["Topics"]
        if t["TopicArn"].endswith(f":{tenant_topic_name(tenant_id)}")
    )
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return str(inbox)
