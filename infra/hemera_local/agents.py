"""Agent configuration files for the RTUs the local cloud simulates (demo and fleet)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from hemera.tenants import MeterDef
from hemera_local.pki import CertPaths


def modbus_meter_entries(
    meters: Iterable[MeterDef], port: int, host: str = "127.0.0.1"
) -> list[dict[str, Any]]:
    """Modbus meters behind one TCP gateway: one port, a unit id each."""
    return [
        {"id": m.id, "model": m.model, "unit_id": m.unit_id, "host": host, "port": port}
        for m in meters
        if m.protocol == "modbus"
    ]


def dlms_meter_entry(meter: MeterDef, port: int, password: str, host: str = "127.0.0.1") -> dict[str, Any]:
    """A DLMS/COSEM meter: its own TCP endpoint (wrapper) and LLS password."""
    return {
        "id": meter.id,
        "model": meter.model,
        "protocol": "dlms",
        "host": host,
        "port": port,
        "password": password,
    }


def write_agent_config(
    folder: Path,
    *,
    tenant_id: str,
    rtu_id: str,
    credentials: CertPaths,
    broker_host: str,
    broker_port: int,
    meters: list[dict[str, Any]],
    poll_seconds: float,
) -> Path:
    """Write `folder/agent.yaml` for one RTU (local broker: no IoT Core flow control)."""
    folder.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "tenant": tenant_id,
        "device": rtu_id,
        "broker": {
            "host": broker_host,
            "port": broker_port,
            "cert": str(credentials.cert),
            "key": str(credentials.key),
            "ca": str(credentials.ca),
            "flow_control": "none",
        },
        "poll_seconds": poll_seconds,
        "state_dir": str(folder / "state"),
        "backfill_hours": 48,
        "meters": meters,
    }
    path = folder / "agent.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
