"""The RTU's own messages: a periodic health document and events, each a small versioned JSON.

    hemera/<tenant>/<device>/up/health   {"schema": "hemera.rtu-health/1", ...}
    hemera/<tenant>/<device>/up/events   {"schema": "hemera.rtu-event/1", "type": "meter_read_failed", ...}

They are deliberately separate from the telemetry envelope: they describe the RTU, not a meter's
data, and the cloud must not mistake them for readings. The cloud side (a topic rule, storage and
alarms for them) is a later issue; today the topic rules forward only `up/telemetry`, so these
messages reach the broker (and any subscriber, e.g. an operator's tool) but are not stored yet.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

HEALTH_SCHEMA = "hemera.rtu-health/1"
EVENT_SCHEMA = "hemera.rtu-event/1"


class RtuEventType(StrEnum):
    BUFFER_OVERFLOW = "buffer_overflow"  # the outbox hit its bound (see `buffer.OverflowPolicy`)
    BUFFER_RECOVERED = "buffer_recovered"  # below the low-water mark again; what the episode cost
    METER_READ_FAILED = "meter_read_failed"  # no answer / no TCP link
    METER_GARBAGE = "meter_garbage"  # an answer, but not one the model allows (exception, bad shape)
    METER_RECOVERED = "meter_recovered"  # a failing meter answered properly again


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class HealthDocument(_Document):
    schema_: Literal["hemera.rtu-health/1"] = Field(default="hemera.rtu-health/1", alias="schema")
    tenant: str
    device: str
    at: AwareDatetime
    firmware: str = Field(description="hemera-agent package version")
    uptime_seconds: float = Field(ge=0)
    signal_dbm: int = Field(description="from the agent configuration until a modem is queried")
    temperature_c: float
    temperature_source: Literal["sys", "simulated"]
    buffer_depth: int = Field(ge=0, description="messages waiting for a PUBACK")
    buffer_bytes: int = Field(ge=0, description="telemetry bytes waiting")
    meters_failing: list[str] = Field(default_factory=list)


class RtuEvent(_Document):
    schema_: Literal["hemera.rtu-event/1"] = Field(default="hemera.rtu-event/1", alias="schema")
    tenant: str
    device: str
    at: AwareDatetime
    type: RtuEventType
    meter: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


def rtu_event(
    tenant: str, device: str, at: datetime, kind: RtuEventType, meter: str | None = None, **detail: Any
) -> RtuEvent:
    return RtuEvent(tenant=tenant, device=device, at=at, type=kind, meter=meter, detail=detail)
