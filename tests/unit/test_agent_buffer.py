"""The agent's outbox: order, bounds, overflow policies, crash safety (by reopening the file)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hemera_agent.buffer import (
    BUFFER_FILE,
    BufferForeign,
    BufferFull,
    EnvelopeBuffer,
    MessageKind,
    OverflowPolicy,
)

TOPIC = "hemera/sul-energia/rtu-poa-01/up/telemetry"
T0 = datetime(2026, 3, 2, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


def open_buffer(folder: Path, **bounds: object) -> EnvelopeBuffer:
    return EnvelopeBuffer(folder / BUFFER_FILE, "sul-energia", "rtu-poa-01", **bounds)  # type: ignore[arg-type]


def put(buffer: EnvelopeBuffer, n: int, meter: str = "sul-m-1001", size: int = 100) -> list[int]:
    """Store n envelopes whose payload names their seq (padded to `size` bytes)."""
    seqs = []
    for i in range(n):
        seqs.append(
            buffer.enqueue_envelope(
                TOPIC,
                lambda seq: f'{{"seq": {seq}}}'.ljust(size).encode(),
                meter=meter,
                last_interval=T0 + i * QUARTER,
            )
        )
    return seqs


def test_envelopes_get_increasing_seqs_and_replay_in_that_order(tmp_path: Path) -> None:
    buffer = open_buffer(tmp_path)

    seqs = put(buffer, 3)
    buffer.enqueue_control(MessageKind.EVENT, "hemera/sul-energia/rtu-poa-01/up/events", b"{}")
    seqs += put(buffer, 2)

    queued = buffer.peek(10)
    assert seqs == [0, 1, 2, 3, 4]
    assert [m.seq for m in queued] == [0, 1, 2, None, 3, 4]
    assert [m.payload.split()[1] for m in queued if m.seq is not None] == [b"0}", b"1}", b"2}", b"3}", b"4}"]


def test_an_acknowledged_envelope_is_gone_and_the_next_is_first(tmp_path: Path) -> None:
    buffer = open_buffer(tmp_path)
    put(buffer, 3)

    buffer.acknowledge(buffer.peek()[0].id)

    assert [m.seq for m in buffer.peek(10)] == [1, 2]
    assert buffer.telemetry_usage() == (2, 200)


def test_everything_survives_reopening_the_file(tmp_path: Path) -> None:
    # Given an outbox with three envelopes, one acknowledged, and a command seen
    buffer = open_buffer(tmp_path)
    put(buffer, 3)
    buffer.acknowledge(buffer.peek()[0].id)
    assert buffer.claim_command("c-1") is None
    buffer.close()

    # When the agent (process) starts again on the same file
    again = open_buffer(tmp_path)

    # Then the unacknowledged envelopes, the cursor, the next seq and the command are all there
    assert [m.seq for m in again.peek(10)] == [1, 2]
    assert again.next_seq == 3
    assert again.cursors() == {"sul-m-1001": T0 + 2 * QUARTER}
    assert again.claim_command("c-1") is not None


def test_a_crash_inside_a_write_leaves_neither_the_envelope_nor_the_cursor(tmp_path: Path) -> None:
    # Given an outbox holding seq 0
    buffer = open_buffer(tmp_path)
    put(buffer, 1)

    # When building the next envelope blows up mid-transaction (as a power cut would cut it off)
    def explode(_seq: int) -> bytes:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        buffer.enqueue_envelope(TOPIC, explode, meter="sul-m-1001", last_interval=T0 + 5 * QUARTER)
    buffer.close()

    # Then a reopened outbox has seq 0 only, the cursor did not move, and seq 1 is still free
    again = open_buffer(tmp_path)
    assert [m.seq for m in again.peek(10)] == [0]
    assert again.cursors() == {"sul-m-1001": T0}
    assert put(again, 1) == [1]


def test_an_uncommitted_transaction_of_a_killed_process_is_not_seen(tmp_path: Path) -> None:
    # Given a writer that began storing an envelope and never committed (killed mid-write)
    buffer = open_buffer(tmp_path)
    put(buffer, 1)
    killed = sqlite3.connect(tmp_path / BUFFER_FILE, isolation_level=None)
    killed.execute("BEGIN IMMEDIATE")
    killed.execute("UPDATE meta SET value = '99' WHERE key = 'next_seq'")
    killed.close()  # the connection goes away without COMMIT

    # Then the next agent sees the last committed state
    assert open_buffer(tmp_path).next_seq == 1


def test_stop_reading_refuses_when_full_and_records_the_overflow_once(tmp_path: Path) -> None:
    # Given an outbox of at most 3 envelopes, policy stop_reading
    buffer = open_buffer(tmp_path, max_envelopes=3, overflow=OverflowPolicy.STOP_READING)
    put(buffer, 3)

    # When a 4th and a 5th envelope come
    for _ in range(2):
        with pytest.raises(BufferFull):
            put(buffer, 1)

    # Then nothing was dropped, the cursor stayed at the last stored interval, the seq is unused
    assert [m.seq for m in buffer.peek(10)] == [0, 1, 2]
    assert buffer.cursors() == {"sul-m-1001": T0 + 2 * QUARTER}
    assert buffer.next_seq == 3
    state = buffer.overflow_state()
    assert state is not None and (state.refused, state.dropped) == (2, 0)
    assert buffer.overflow_needs_report()
    buffer.mark_overflow_reported()
    assert not buffer.overflow_needs_report()


def test_drop_oldest_keeps_the_newest_and_says_what_was_dropped(tmp_path: Path) -> None:
    buffer = open_buffer(tmp_path, max_envelopes=3, overflow=OverflowPolicy.DROP_OLDEST)
    put(buffer, 5)

    assert [m.seq for m in buffer.peek(10)] == [2, 3, 4]
    state = buffer.overflow_state()
    assert state is not None
    assert (state.dropped, state.first_dropped_seq, state.last_dropped_seq) == (2, 0, 1)


def test_the_byte_bound_counts_too(tmp_path: Path) -> None:
    buffer = open_buffer(tmp_path, max_envelopes=100, max_bytes=1000, overflow=OverflowPolicy.DROP_OLDEST)

    put(buffer, 5, size=300)

    assert [m.seq for m in buffer.peek(10)] == [2, 3, 4]
    assert buffer.telemetry_usage() == (3, 900)


def test_events_and_acks_are_admitted_when_full_and_never_dropped(tmp_path: Path) -> None:
    buffer = open_buffer(tmp_path, max_envelopes=2, overflow=OverflowPolicy.DROP_OLDEST)
    put(buffer, 2)
    buffer.enqueue_control(MessageKind.EVENT, "hemera/sul-energia/rtu-poa-01/up/events", b"{}")

    put(buffer, 2)

    assert [(m.kind, m.seq) for m in buffer.peek(10)] == [
        (MessageKind.EVENT, None),
        (MessageKind.TELEMETRY, 2),
        (MessageKind.TELEMETRY, 3),
    ]


def test_the_overflow_episode_ends_below_the_low_water_mark(tmp_path: Path) -> None:
    buffer = open_buffer(tmp_path, max_envelopes=10, overflow=OverflowPolicy.STOP_READING)
    put(buffer, 10)
    with pytest.raises(BufferFull):
        put(buffer, 1)

    # When one envelope is acknowledged the buffer is still above 80 %: the episode goes on
    buffer.acknowledge(buffer.peek()[0].id)
    assert buffer.end_overflow_if_drained() is None
    # When it drains to 8 of 10 it ends, and says what it cost
    buffer.acknowledge(buffer.peek()[0].id)
    ended = buffer.end_overflow_if_drained()
    assert ended is not None and ended.refused == 1
    assert buffer.overflow_state() is None


def test_another_devices_outbox_is_refused(tmp_path: Path) -> None:
    open_buffer(tmp_path).close()
    with pytest.raises(BufferForeign, match="sul-energia/rtu-poa-01"):
        EnvelopeBuffer(tmp_path / BUFFER_FILE, "sul-energia", "rtu-poa-02")


def test_a_legacy_json_state_is_adopted_once(tmp_path: Path) -> None:
    buffer = open_buffer(tmp_path)
    buffer.adopt_legacy_state(7, {"sul-m-1001": T0})
    put(buffer, 1)
    buffer.adopt_legacy_state(3, {"sul-m-1001": T0 - QUARTER})

    assert buffer.next_seq == 8
    assert buffer.cursors() == {"sul-m-1001": T0}


def test_a_command_id_is_claimed_once(tmp_path: Path) -> None:
    buffer = open_buffer(tmp_path)

    first = buffer.claim_command("c-1")
    buffer.finish_command("c-1", "ok", "hemera/sul-energia/rtu-poa-01/up/cmd-ack", b'{"id": "c-1"}')
    second = buffer.claim_command("c-1")

    assert first is None
    assert second is not None and second.status == "ok" and second.ack == {"id": "c-1"}
    assert [m.kind for m in buffer.peek(10)] == [MessageKind.ACK]


def test_a_readout_envelope_moves_its_schedule_mark_not_the_load_profile_cursor(tmp_path: Path) -> None:
    # Given a meter whose load profile was captured up to T0
    buffer = open_buffer(tmp_path)
    put(buffer, 1)
    # When a registers envelope is stored with its read time, and the outbox is reopened
    read_at = T0 + timedelta(hours=1)
    seq = buffer.enqueue_envelope(
        TOPIC, lambda s: b"{}", meter="sul-m-1001", last_interval=None, mark=("registers:sul-m-1001", read_at)
    )
    buffer.close()
    reopened = open_buffer(tmp_path)
    # Then it has the next seq, the cursor is still T0 and the read time survived the restart
    assert seq == 1
    assert reopened.cursors() == {"sul-m-1001": T0}
    assert reopened.schedule_mark("registers:sul-m-1001") == read_at
    assert reopened.schedule_mark("events:sul-m-1001") is None
