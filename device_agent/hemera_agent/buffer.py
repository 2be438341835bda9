"""Store-and-forward: the agent's durable outbox, one SQLite file (WAL) in the state folder.

Every message the agent must not lose - telemetry envelopes, RTU events, command acks - is
written here *before* it is published and deleted only after the broker's PUBACK. The buffer is
the source of truth for unsent data:

- `enqueue_envelope` assigns the envelope's sequence number, stores its bytes and moves the meter's
  cursor (last captured interval) in **one transaction**: after a crash either all three happened
  or none did, so a sequence number is never reused for different bytes and an interval is never
  both "captured" and missing from the outbox;
- rows are replayed strictly in insertion order (`id`), and envelope seqs increase with `id`;
- the buffer is bounded (`max_envelopes` telemetry rows, `max_bytes` telemetry bytes). When full:
  `stop_reading` (default) refuses new envelopes (`BufferFull`): the agent stops reading meters and
  the meters' own load-profile memory (weeks, on a C&I meter) holds the data until the outbox
  drains, so nothing is lost; `drop_oldest` deletes the oldest envelopes to make room (newest data
  wins, the cloud sees a gap and may re-read it with a `read_range` command). Either way the
  transition into overflow is recorded and the agent raises a `buffer_overflow` RTU event.
- control messages (events, acks) are small, rare (the agent raises events on state changes, not
  every poll) and always admitted; they count towards depth but are never dropped.
- executed command ids are stored here too, so a command redelivered after a restart is answered
  `duplicate`, never executed again.

`synchronous=FULL` with WAL: a commit is on disk when `enqueue_*` returns.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from hemera.domain.errors import HemeraError

BUFFER_FILE = "outbox.sqlite3"
_SCHEMA_VERSION = "1"
LOW_WATER = 0.8


class OverflowPolicy(StrEnum):
    STOP_READING = "stop_reading"
    DROP_OLDEST = "drop_oldest"


class MessageKind(StrEnum):
    TELEMETRY = "telemetry"
    EVENT = "event"
    ACK = "ack"


class BufferFull(HemeraError):
    """The outbox is at its bound and the policy is `stop_reading`: do not read more."""

    reason = "buffer_full"


class BufferForeign(HemeraError):
    """The outbox file belongs to another tenant/device."""

    reason = "buffer_foreign"


@dataclass(frozen=True, slots=True)
class BufferedMessage:
    id: int
    kind: MessageKind
    topic: str
    payload: bytes
    seq: int | None
    meter: str | None


@dataclass(frozen=True, slots=True)
class OverflowState:
    """What the buffer gave up since it last overflowed (for the RTU event)."""

    since: datetime
    refused: int
    dropped: int
    first_dropped_seq: int | None
    last_dropped_seq: int | None


@dataclass(frozen=True, slots=True)
class CommandRecord:
    id: str
    status: str
    ack: dict[str, Any] | None


def _now() -> str:
    return datetime.now(UTC).isoformat()


class EnvelopeBuffer:
    """The outbox of one device. Not thread-safe: one agent (one asyncio loop) owns it."""

    def __init__(
        self,
        path: Path,
        tenant: str,
        device: str,
        *,
        max_envelopes: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        overflow: OverflowPolicy = OverflowPolicy.STOP_READING,
    ) -> None:
        self.path = path
        self.max_envelopes = max_envelopes
        self.max_bytes = max_bytes
        self.overflow = overflow
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, one write transaction at a time.
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                topic TEXT NOT NULL,
                payload BLOB NOT NULL,
                seq INTEGER UNIQUE,
                meter TEXT,
                created_at TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS cursors (meter TEXT PRIMARY KEY, last_interval TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS schedule (key TEXT PRIMARY KEY, at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS commands (
                id TEXT PRIMARY KEY,
                status TEXT NOT NULL,
                received_at TEXT NOT NULL,
                ack TEXT
            );
            """
        )
        with self._transaction():
            owner = self._meta("owner")
            if owner is None:
                self._set_meta("owner", f"{tenant}/{device}")
                self._set_meta("schema", _SCHEMA_VERSION)
                self._set_meta("next_seq", "0")
            elif owner != f"{tenant}/{device}":
                raise BufferForeign(f"{path} belongs to {owner}, not {tenant}/{device}")

    # --- plumbing ------------------------------------------------------------------------------
    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: object, *_: object) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _transaction(self) -> EnvelopeBuffer._Tx:
        return EnvelopeBuffer._Tx(self._db)

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self._db.close()

    # --- sequence and cursors --------------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        return int(self._meta("next_seq") or 0)

    def cursors(self) -> dict[str, datetime]:
        """Each meter's last captured interval (captured = safely in this buffer)."""
        rows = self._db.execute("SELECT meter, last_interval FROM cursors").fetchall()
        return {meter: datetime.fromisoformat(value) for meter, value in rows}

    def adopt_legacy_state(self, next_seq: int, cursors: dict[str, datetime]) -> None:
        """Take over a pre-buffer `agent-state.json` once, so an upgrade neither reuses seqs nor
        re-reads what was acknowledged."""
        with self._transaction():
            if self._meta("legacy_adopted") is not None:
                return
            self._set_meta("next_seq", str(max(next_seq, self.next_seq)))
            for meter, start in cursors.items():
                self._db.execute(
                    "INSERT OR IGNORE INTO cursors (meter, last_interval) VALUES (?, ?)",
                    (meter, start.isoformat()),
                )
            self._set_meta("legacy_adopted", _now())

    def schedule_mark(self, key: str) -> datetime | None:
        """When a scheduled read named `key` (e.g. `registers:<meter>`) last went into the outbox."""
        row = self._db.execute("SELECT at FROM schedule WHERE key = ?", (key,)).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def set_schedule_mark(self, key: str, at: datetime) -> None:
        """Record a scheduled read that stored nothing (the meter had nothing new to give)."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO schedule (key, at) VALUES (?, ?)", (key, at.isoformat()))

    # --- bounds --------------------------------------------------------------------------------
    def depth(self) -> int:
        """Messages waiting for a PUBACK (all kinds)."""
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def telemetry_usage(self) -> tuple[int, int]:
        """(envelopes, bytes) of telemetry waiting (counters kept in step by every write)."""
        return int(self._meta("telemetry_count") or 0), int(self._meta("telemetry_bytes") or 0)

    def _count_telemetry(self, envelopes: int, size: int) -> None:
        count, used = self.telemetry_usage()
        self._set_meta("telemetry_count", str(count + envelopes))
        self._set_meta("telemetry_bytes", str(used + size))

    def has_room(self) -> bool:
        """Below both bounds: worth reading meters at all (under `stop_reading`)."""
        count, used = self.telemetry_usage()
        return count < self.max_envelopes and used < self.max_bytes

    def _fits(self, size: int) -> bool:
        count, used = self.telemetry_usage()
        return count + 1 <= self.max_envelopes and used + size <= self.max_bytes

    def _note_overflow(self, refused: int = 0, dropped_seqs: tuple[int, ...] = ()) -> None:
        if self._meta("overflow_since") is None:
            self._set_meta("overflow_since", _now())
            self._set_meta("overflow_refused", "0")
            self._set_meta("overflow_dropped", "0")
            self._set_meta("overflow_reported", "0")
        self._set_meta("overflow_refused", str(int(self._meta("overflow_refused") or 0) + refused))
        self._set_meta("overflow_dropped", str(int(self._meta("overflow_dropped") or 0) + len(dropped_seqs)))
        if dropped_seqs:
            if self._meta("overflow_first_dropped") is None:
                self._set_meta("overflow_first_dropped", str(min(dropped_seqs)))
            self._set_meta("overflow_last_dropped", str(max(dropped_seqs)))

    def overflow_state(self) -> OverflowState | None:
        since = self._meta("overflow_since")
        if since is None:
            return None
        first, last = self._meta("overflow_first_dropped"), self._meta("overflow_last_dropped")
        return OverflowState(
            since=datetime.fromisoformat(since),
            refused=int(self._meta("overflow_refused") or 0),
            dropped=int(self._meta("overflow_dropped") or 0),
            first_dropped_seq=None if first is None else int(first),
            last_dropped_seq=None if last is None else int(last),
        )

    def overflow_needs_report(self) -> bool:
        """True once per overflow episode, until `mark_overflow_reported`."""
        return self._meta("overflow_since") is not None and self._meta("overflow_reported") == "0"

    def mark_overflow_reported(self) -> None:
        with self._transaction():
            self._set_meta("overflow_reported", "1")

    def end_overflow_if_drained(self) -> OverflowState | None:
        """Close the overflow episode once there is room again; returns what it cost."""
        if self._meta("overflow_since") is None:
            return None
        state = self.overflow_state()
        count, size = self.telemetry_usage()
        # Hysteresis: end the episode well below the bound, so a buffer hovering at its limit
        # raises one event, not one per envelope.
        if state is None or count > self.max_envelopes * LOW_WATER or size > self.max_bytes * LOW_WATER:
            return None
        with self._transaction():
            for key in (
                "overflow_since",
                "overflow_refused",
                "overflow_dropped",
                "overflow_reported",
                "overflow_first_dropped",
                "overflow_last_dropped",
            ):
                self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        return state

    # --- writing ---------------------------------------------------------------------------------
    def _drop_oldest_for(self, size: int, seq: int) -> int | None:
        """Delete the oldest envelopes until `size` bytes fit; returns `seq` if even that fails."""
        dropped: list[int] = []
        while not self._fits(size):
            row = self._db.execute(
                "SELECT id, seq FROM outbox WHERE kind = ? ORDER BY id LIMIT 1",
                (MessageKind.TELEMETRY.value,),
            ).fetchone()
            if row is None:  # one envelope larger than max_bytes (config prevents it): refuse
                return seq
            self._delete(int(row[0]))
            dropped.append(int(row[1]))
        self._note_overflow(dropped_seqs=tuple(dropped))
        return None

    def enqueue_envelope(
        self,
        topic: str,
        build: Callable[[int], bytes],
        *,
        meter: str,
        last_interval: datetime | None,
        mark: tuple[str, datetime] | None = None,
    ) -> int:
        """Assign the next seq, store `build(seq)` and advance the meter's cursor, atomically.

        An envelope of registers, instantaneous values or events carries no interval
        (`last_interval` None: the load-profile cursor stays) but may move its schedule `mark`
        (key, read time) in the same transaction, so a restart neither re-reads nor skips it.

        Raises `BufferFull` under `stop_reading` when the envelope does not fit (nothing changes,
        except that the refusal is recorded for the overflow event).
        """
        refused: int | None = None
        with self._transaction() as db:
            seq = int(self._meta("next_seq") or 0)
            payload = build(seq)
            if not self._fits(len(payload)):
                if self.overflow is OverflowPolicy.STOP_READING:
                    refused = seq
                else:
                    refused = self._drop_oldest_for(len(payload), seq)
            if refused is not None:
                self._note_overflow(refused=1)  # committed: the episode is remembered
            else:
                db.execute(
                    "INSERT INTO outbox (kind, topic, payload, seq, meter, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (MessageKind.TELEMETRY.value, topic, payload, seq, meter, _now()),
                )
                self._set_meta("next_seq", str(seq + 1))
                self._count_telemetry(1, len(payload))
                if last_interval is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO cursors (meter, last_interval) VALUES (?, ?)",
                        (meter, last_interval.isoformat()),
                    )
                if mark is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO schedule (key, at) VALUES (?, ?)",
                        (mark[0], mark[1].isoformat()),
                    )
        if refused is not None:
            raise BufferFull(f"outbox full; envelope {refused} not stored (policy {self.overflow.value})")
        return seq

    def enqueue_control(self, kind: MessageKind, topic: str, payload: bytes) -> int:
        """Store an RTU event or a command ack (always admitted; see the module docstring)."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO outbox (kind, topic, payload, seq, meter, created_at) VALUES (?, ?, ?, NULL, NULL, ?)",
                (kind.value, topic, payload, _now()),
            )
        return int(cursor.lastrowid or 0)

    # --- forwarding ------------------------------------------------------------------------------
    def peek(self, limit: int = 1) -> list[BufferedMessage]:
        """The oldest messages, in the order they must be published."""
        rows = self._db.execute(
            "SELECT id, kind, topic, payload, seq, meter FROM outbox ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [
            BufferedMessage(int(r[0]), MessageKind(r[1]), str(r[2]), bytes(r[3]), r[4], r[5]) for r in rows
        ]

    def acknowledge(self, message_id: int) -> None:
        """The broker acknowledged it: forget it."""
        with self._transaction():
            self._delete(message_id)

    def _delete(self, message_id: int) -> None:
        row = self._db.execute(
            "SELECT kind, LENGTH(payload) FROM outbox WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            return
        self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))
        if row[0] == MessageKind.TELEMETRY.value:
            self._count_telemetry(-1, -int(row[1]))

    # --- commands --------------------------------------------------------------------------------
    def claim_command(self, command_id: str) -> CommandRecord | None:
        """Record a command as started; None if it is new (execute it), else its earlier record.

        Recorded *before* execution: a crash mid-command makes a redelivery a duplicate, which is
        what at-most-once means for a relay operation.
        """
        with self._transaction() as db:
            row = db.execute("SELECT status, ack FROM commands WHERE id = ?", (command_id,)).fetchone()
            if row is not None:
                return CommandRecord(command_id, str(row[0]), None if row[1] is None else json.loads(row[1]))
            db.execute(
                "INSERT INTO commands (id, status, received_at) VALUES (?, 'started', ?)",
                (command_id, _now()),
            )
        return None

    def finish_command(self, command_id: str, status: str, ack_topic: str, ack: bytes) -> None:
        """Store the command's outcome and queue its ack, atomically."""
        with self._transaction() as db:
            db.execute(
                "UPDATE commands SET status = ?, ack = ? WHERE id = ?", (status, ack.decode(), command_id)
            )
            db.execute(
                "INSERT INTO outbox (kind, topic, payload, seq, meter, created_at) VALUES (?, ?, ?, NULL, NULL, ?)",
                (MessageKind.ACK.value, ack_topic, ack, _now()),
            )
