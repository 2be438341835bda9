"""The agent's configuration: one YAML file per RTU, validated by pydantic once at start-up.

tenant: sul-energia
device: rtu-poa-01
broker:
  host: localhost            # the IoT Core ATS endpoint in AWS
  port: 8883
  cert: certs/rtu-poa-01.crt # relative paths are relative to this file
  key: certs/rtu-poa-01.key
  ca: certs/ca.crt           # omit to use the system trust store (AWS)
  flow_control: none         # iot_core (default) | none (local mosquitto)
poll_seconds: 60
state_dir: state/rtu-poa-01
max_intervals_per_envelope: 96
backfill_hours: 24
meters:
  - {id: sul-m-1001, model: hx300, unit_id: 1, host: 127.0.0.1, port: 5020}
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from hemera.domain.errors import HemeraError
from hemera.domain.tenancy import TenantContext, thing_name, validate_id

Id = Annotated[str, AfterValidator(validate_id)]


class InvalidAgentConfig(HemeraError):
    reason = "invalid_agent_config"


class FlowControl(StrEnum):
    """Client-side flow control of the MQTT5 client.

    `iot_core` applies AWS IoT Core's default limits in the client (e.g. at most 100 publishes/s
    per connection, 128 KB payloads), so the client throttles instead of the broker dropping.
    `none` is for the local mosquitto, which has no such limits.
    """

    IOT_CORE = "iot_core"
    NONE = "none"


class BrokerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=8883, ge=1, le=65535)
    cert: Path
    key: Path
    ca: Path | None = None
    flow_control: FlowControl = FlowControl.IOT_CORE
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    ack_timeout_seconds: float = Field(default=30.0, gt=0)


class MeterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    model: str = Field(min_length=1)
    unit_id: int = Field(default=1, ge=0, le=247)
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    timeout_seconds: float = Field(default=3.0, gt=0)


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: Id
    device: Id
    broker: BrokerConfig
    meters: tuple[MeterConfig, ...] = Field(min_length=1)
    state_dir: Path
    poll_seconds: float = Field(default=60.0, gt=0)
    # 96 = one day of 15-minute data: about 6 KB of JSON, far below IoT Core's 128 KB limit.
    max_intervals_per_envelope: int = Field(default=96, ge=1, le=1000)
    # How far back the first run reads a meter that has no captured interval yet.
    backfill_hours: float = Field(default=24.0, gt=0)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _unique_meters(self) -> AgentConfig:
        ids = [m.id for m in self.meters]
        if len(set(ids)) != len(ids):
            raise ValueError("meter ids must be unique")
        units = [(m.host, m.port, m.unit_id) for m in self.meters]
        if len(set(units)) != len(units):
            raise ValueError("two meters share host, port and unit id")
        return self

    @property
    def client_id(self) -> str:
        """MQTT client id = IoT thing name = certificate CN."""
        return thing_name(self.tenant, self.device)

    @property
    def telemetry_topic(self) -> str:
        return TenantContext(self.tenant).device_topic_root(self.device) + "up/telemetry"

    @property
    def backfill(self) -> timedelta:
        return timedelta(hours=self.backfill_hours)


def _resolve(document: dict[str, Any], base: Path) -> dict[str, Any]:
    """Paths in the file are relative to the file, not to the working directory."""

    def rel(value: Any) -> Any:
        return str(base / value) if isinstance(value, str) and not Path(value).is_absolute() else value

    broker = dict(document.get("broker") or {})
    for key in ("cert", "key", "ca"):
        if key in broker and broker[key] is not None:
            broker[key] = rel(broker[key])
    resolved = {**document, "broker": broker}
    if "state_dir" in document:
        resolved["state_dir"] = rel(document["state_dir"])
    return resolved


def load_config(path: Path) -> AgentConfig:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidAgentConfig(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise InvalidAgentConfig(f"{path}: not YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidAgentConfig(f"{path}: expected a mapping at the top level")
    try:
        return AgentConfig.model_validate(_resolve(document, path.parent))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidAgentConfig(f"{path}: {problems}") from exc
