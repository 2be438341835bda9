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
  max_inflight: 10           # QoS 1 publishes awaiting a PUBACK at once
  session_expiry_seconds: 3600  # broker queues commands for an offline agent this long
poll_seconds: 60
state_dir: state/rtu-poa-01
max_intervals_per_envelope: 96
backfill_hours: 24
registers_every_seconds: 86400    # energy registers (daily); 0 = never on a schedule
instantaneous_every_seconds: 300  # voltage, current, power, PF, frequency; 0 = never
events_every_seconds: 900         # DLMS event logs, entries since the last read; 0 = never
meters:
  - {id: sul-m-1001, model: hx300, unit_id: 1, host: 127.0.0.1, port: 5020}
# Optional sections (defaults shown):
buffer:                      # store-and-forward outbox, <state_dir>/outbox.sqlite3
  max_envelopes: 10000       # telemetry envelopes waiting for a PUBACK
  max_bytes: 67108864        # and their bytes (>= one envelope, 128 KiB)
  overflow: stop_reading     # stop_reading (meters keep the data) | drop_oldest (newest wins)
reconnect:                   # full-jitter exponential backoff for MQTT reconnects and retries
  base_seconds: 1
  cap_seconds: 120
  factor: 2
health:
  interval_seconds: 300      # RTU health document on up/health
  signal_dbm: -67            # reported signal level (the modem is not queried yet)
  temperature_path: /sys/class/thermal/thermal_zone0/temp
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from hemera.domain.envelope import MAX_ENVELOPE_BYTES
from hemera.domain.errors import HemeraError
from hemera.domain.tenancy import TenantContext, thing_name, validate_id
from hemera_agent.buffer import OverflowPolicy

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
    # QoS 1 publishes awaiting their PUBACK at once (IoT Core allows 100 per connection). One
    # round trip per message would cap the outbox replay at 1/RTT.
    max_inflight: int = Field(default=10, ge=1, le=100)
    # The broker keeps the agent's session (its command subscription, and commands sent while
    # it is offline) this long after a disconnect; 0 = a clean session on every connection.
    session_expiry_seconds: int = Field(default=3600, ge=0, le=7 * 24 * 3600)


class MeterProtocol(StrEnum):
    MODBUS = "modbus"
    DLMS = "dlms"


class MeterConfig(BaseModel):
    """One meter behind the RTU: Modbus TCP (a unit id on a gateway port) or DLMS/COSEM over the
    TCP wrapper (its own endpoint, low-level security with `password`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    model: str = Field(min_length=1)
    protocol: MeterProtocol = MeterProtocol.MODBUS
    unit_id: int = Field(default=1, ge=0, le=247)
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    timeout_seconds: float = Field(default=3.0, gt=0)
    password: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _dlms_needs_password(self) -> MeterConfig:
        if self.protocol is MeterProtocol.DLMS and self.password is None:
            raise ValueError(f"DLMS meter {self.id} needs its LLS password")
        return self


class BufferConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_envelopes: int = Field(default=10_000, ge=1)
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=MAX_ENVELOPE_BYTES)
    overflow: OverflowPolicy = OverflowPolicy.STOP_READING


class ReconnectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_seconds: float = Field(default=1.0, gt=0)
    cap_seconds: float = Field(default=120.0, gt=0)
    factor: float = Field(default=2.0, ge=1)

    @model_validator(mode="after")
    def _cap_above_base(self) -> ReconnectConfig:
        if self.cap_seconds < self.base_seconds:
            raise ValueError("cap_seconds must be at least base_seconds")
        return self


class HealthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_seconds: float = Field(default=300.0, gt=0)
    signal_dbm: int = Field(default=-67, ge=-140, le=0)
    temperature_path: Path = Path("/sys/class/thermal/thermal_zone0/temp")


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
    # Readings besides the load profile, per meter, each due this long after its last read
    # (the read times live in the outbox database, so a restart does not re-read at once).
    # 0 disables a kind. Events: DLMS event logs only (Modbus maps have no event log).
    registers_every_seconds: float = Field(default=86_400.0, ge=0)
    instantaneous_every_seconds: float = Field(default=300.0, ge=0)
    events_every_seconds: float = Field(default=900.0, ge=0)
    log_level: str = "INFO"
    buffer: BufferConfig = BufferConfig()
    reconnect: ReconnectConfig = ReconnectConfig()
    health: HealthConfig = HealthConfig()

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

    def _topic(self, suffix: str) -> str:
        return TenantContext(self.tenant).device_topic_root(self.device) + suffix

    @property
    def command_topic(self) -> str:
        return self._topic("down/cmd")

    @property
    def ack_topic(self) -> str:
        return self._topic("up/cmd-ack")

    @property
    def health_topic(self) -> str:
        return self._topic("up/health")

    @property
    def events_topic(self) -> str:
        return self._topic("up/events")

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
