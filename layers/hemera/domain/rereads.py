"""Automatic re-reads of missing interval data: find the gaps in what a meter delivered, and plan
on-demand reads (`read_range` commands to its RTU) for exactly those ranges, bounded per run.

A gap is a run of intervals missing *between* two intervals the meter delivered within the
lookback: data after the newest is not late yet (the agent's cursor sends it on its next cycle),
data before the oldest may predate the meter (an earlier run saw that part), and a meter that
delivered nothing at all is a communication failure for the alarms, not a gap to re-read. Each gap is
attempted at most `max_attempts` times, `retry_after` apart; then it is given up (exhausted) and a
communication-failure alarm is raised (`MeterReadsExhausted`). A gap that data closed — a re-read
answered, or the agent caught up — is forgotten. The per-run and per-RTU bounds keep a large outage
from flooding the RTUs: the oldest gaps go first, the rest wait for the next run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hemera.domain.commands import MAX_READ_RANGE
from hemera.domain.readings import Channel

# The channel whose gaps are re-read: every meter model records active import, and an envelope
# carries all channels of its intervals, so a gap in it is a gap in all of them.
REREAD_CHANNEL = Channel.ACTIVE_IMPORT


@dataclass(frozen=True, slots=True)
class RereadPolicy:
    """Bounds of the re-read sweep; the defaults are the platform's (README, "Automatic re-reads")."""

    lookback: timedelta = timedelta(days=7)
    max_attempts: int = 3
    retry_after: timedelta = timedelta(hours=2)
    max_commands_per_run: int = 100  # per tenant
    max_commands_per_rtu: int = 2  # per run: an RTU reads its meters one after another
    max_meters_per_run: int = 500  # per tenant; the sweep resumes after the last one next run

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_commands_per_run < 1 or self.max_commands_per_rtu < 1:
            raise ValueError("re-read bounds must be at least 1")


@dataclass(frozen=True, slots=True)
class Gap:
    """Intervals [start, end) (UTC) of one meter that it never delivered."""

    meter_id: str
    device_id: str
    start: datetime
    end: datetime

    @property
    def key(self) -> tuple[str, datetime]:
        return (self.meter_id, self.start)


@dataclass(frozen=True, slots=True)
class RereadAttempt:
    """What the sweep did about one gap so far (stored between runs)."""

    meter_id: str
    device_id: str
    start: datetime
    end: datetime
    attempts: int
    last_sent_at: datetime
    last_command_id: str | None = None
    exhausted: bool = False

    @property
    def key(self) -> tuple[str, datetime]:
        return (self.meter_id, self.start)


@dataclass(frozen=True, slots=True)
class RereadPlan:
    send: tuple[Gap, ...]  # read these now (each within MAX_READ_RANGE)
    give_up: tuple[RereadAttempt, ...]  # attempts used up: raise the communication failure
    forget: tuple[RereadAttempt, ...]  # their gap is closed (or moved): delete the record
    deferred: int  # gaps left for a later run by the bounds


def find_gaps(
    meter_id: str,
    device_id: str,
    present: Iterable[datetime],
    interval_minutes: int,
    window_start: datetime,
) -> list[Gap]:
    """The runs of missing interval starts between the oldest and the newest interval present
    since `window_start`, oldest first."""
    step = timedelta(minutes=interval_minutes)
    starts = sorted(s for s in set(present) if s >= window_start)
    if not starts:
        return []
    gaps: list[Gap] = []
    expected = starts[0]
    for start in starts:
        if start > expected:
            gaps.append(Gap(meter_id, device_id, expected, start))
        expected = max(expected, start + step)
    return gaps


def split_to_read_range(gap: Gap) -> list[Gap]:
    """A gap longer than an on-demand read may span, cut into reads of at most MAX_READ_RANGE."""
    pieces, start = [], gap.start
    while start < gap.end:
        end = min(gap.end, start + MAX_READ_RANGE)
        pieces.append(replace(gap, start=start, end=end))
        start = end
    return pieces


def plan_rereads(
    gaps: Sequence[Gap],
    attempts: Mapping[tuple[str, datetime], RereadAttempt],
    now: datetime,
    policy: RereadPolicy,
    swept_meters: frozenset[str],
) -> RereadPlan:
    """What this run does: gaps to read (new ones, and retries due), attempts given up, and
    records to forget (their meter was swept and the gap is no longer there)."""
    open_gaps = {g.key: g for g in (piece for gap in gaps for piece in split_to_read_range(gap))}
    forget = tuple(a for key, a in attempts.items() if a.meter_id in swept_meters and key not in open_gaps)
    give_up: list[RereadAttempt] = []
    due: list[Gap] = []
    for key, gap in sorted(open_gaps.items(), key=lambda item: (item[1].start, item[1].meter_id)):
        attempt = attempts.get(key)
        if attempt is None:
            due.append(gap)
        elif attempt.exhausted:
            continue
        elif attempt.attempts >= policy.max_attempts:
            if now - attempt.last_sent_at >= policy.retry_after:
                give_up.append(replace(attempt, exhausted=True))
        elif now - attempt.last_sent_at >= policy.retry_after:
            due.append(gap)
    send: list[Gap] = []
    per_rtu: dict[str, int] = {}
    for gap in due:
        if len(send) >= policy.max_commands_per_run:
            break
        if per_rtu.get(gap.device_id, 0) >= policy.max_commands_per_rtu:
            continue
        per_rtu[gap.device_id] = per_rtu.get(gap.device_id, 0) + 1
        send.append(gap)
    return RereadPlan(tuple(send), tuple(give_up), forget, len(due) - len(send))


def record_attempt(
    previous: RereadAttempt | None, gap: Gap, now: datetime, command_id: str | None
) -> RereadAttempt:
    """The attempt record after sending (or failing to send) a read for `gap`."""
    count = 1 if previous is None else previous.attempts + 1
    return RereadAttempt(gap.meter_id, gap.device_id, gap.start, gap.end, count, now, command_id)
