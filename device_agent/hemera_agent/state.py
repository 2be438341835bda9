"""The agent's former durable state (`agent-state.json`): next seq and each meter's cursor.

Superseded by the outbox (`hemera_agent.buffer`), which keeps both in the same SQLite
transaction as the envelopes. The agent still reads this file once, to adopt an upgraded RTU's
seq and cursors (`EnvelopeBuffer.adopt_legacy_state`); it no longer writes it.

One small JSON file per device, replaced atomically (write a temporary file in the same folder,
fsync, rename over the old one, fsync the folder), so a power cut leaves either the old or the
new state, never a torn file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from hemera.domain.errors import HemeraError

STATE_SCHEMA = "hemera.agent-state/1"
STATE_FILE = "agent-state.json"


class CorruptState(HemeraError):
    reason = "corrupt_agent_state"


@dataclass
class AgentState:
    next_seq: int = 0
    last_interval: dict[str, datetime] = field(default_factory=dict)


class StateStore:
    """Loads and saves the state of one device under `state_dir`."""

    def __init__(self, state_dir: Path, tenant: str, device: str) -> None:
        self.path = state_dir / STATE_FILE
        self.tenant = tenant
        self.device = device

    def load(self) -> AgentState:
        if not self.path.exists():
            return AgentState()
        try:
            document = json.loads(self.path.read_text())
            if document.get("schema") != STATE_SCHEMA:
                raise CorruptState(f"{self.path}: unknown schema {document.get('schema')!r}")
            if (document["tenant"], document["device"]) != (self.tenant, self.device):
                # Refuse rather than send another device's sequence numbers.
                raise CorruptState(
                    f"{self.path} belongs to {document['tenant']}/{document['device']}, "
                    f"not {self.tenant}/{self.device}"
                )
            return AgentState(
                next_seq=int(document["next_seq"]),
                last_interval={
                    meter: datetime.fromisoformat(value) for meter, value in document["last_interval"].items()
                },
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptState(f"{self.path}: {exc}") from exc

    def save(self, state: AgentState) -> None:
        document = {
            "schema": STATE_SCHEMA,
            "tenant": self.tenant,
            "device": self.device,
            "next_seq": state.next_seq,
            "last_interval": {
                meter: start.isoformat().replace("+00:00", "Z")
                for meter, start in sorted(state.last_interval.items())
            },
        }
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".agent-state-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
