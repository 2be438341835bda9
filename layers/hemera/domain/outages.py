"""Supply outages of a meter, derived from its event log and its load-profile status bits (pure).

Sources, most trusted first (`OutageSource`):
- `last_gasp`: a power-down entry (the meter's last gasp) and the power-up that follows it give
  the outage's start and end as the meter's clock stamped them. A power-down without a power-up
  yet is an *open* outage (end None) until the power-up arrives; a second power-down with no
  power-up between them ends the first outage at the latest there (the meter evidently had power
  again to log it).
- `power_up`: a power-up alone (its power-down was lost, e.g. the log wrapped) that reports the
  failure's duration (IDIS long power-failure log): start = power-up - reported duration. A
  power-up alone without a duration has no known start and makes no outage (the event is kept).
- `inferred_comms`: no event, but load-profile intervals carry the meter's power-outage status bit
  (bit 0; the interval the supply failed in and the one it came back in). Consecutive flagged
  intervals, with only missing intervals between them, make one outage from the first flagged
  interval's start to the last one's end: interval resolution, so it may overstate by up to two
  intervals.

`merge_outages` reconciles what a batch derived with what is stored: an outage of a more trusted
source replaces the less trusted ones it overlaps, overlapping inferred outages are joined, and
the identity of an outage is (meter, start) as the store keys it. Merging what is already stored
changes nothing, so a redelivered batch is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hemera.domain.events_decode import reported_duration
from hemera.domain.meter_events import EventType, MeterEvent, Outage, OutageSource, Subject
from hemera.domain.readings import METER_FLAG_POWER_OUTAGE, IntervalReading

# How far before a batch's power events the stored log and outages are read to pair them: a
# power-up finds the power-down of an outage of up to this length (a longer one is a dead meter,
# which the communication alarms catch).
OUTAGE_LOOKBACK = timedelta(days=31)
POWER_EVENTS = frozenset({EventType.POWER_DOWN, EventType.POWER_UP})
_TRUST = {OutageSource.LAST_GASP: 0, OutageSource.POWER_UP: 1, OutageSource.INFERRED_COMMS: 2}


def outages_from_events(meter_id: str, events: Iterable[MeterEvent]) -> list[Outage]:
    """The outages the meter's power-down / power-up entries describe, in start order."""
    power = sorted(
        (
            e
            for e in events
            if e.subject is Subject.METER and e.subject_id == meter_id and e.type in POWER_EVENTS
        ),
        # At one time stamp the power-down comes first (a zero-length outage, not a stray power-up).
        key=lambda e: (e.at, e.type is EventType.POWER_UP),
    )
    outages: list[Outage] = []
    down: MeterEvent | None = None
    for event in power:
        if event.type is EventType.POWER_DOWN:
            if down is not None:
                outages.append(Outage(meter_id, down.at, event.at, OutageSource.LAST_GASP))
            down = event
            continue
        if down is not None:
            outages.append(Outage(meter_id, down.at, event.at, OutageSource.LAST_GASP))
            down = None
            continue
        duration = reported_duration(event)
        if duration is not None:
            outages.append(Outage(meter_id, event.at - duration, event.at, OutageSource.POWER_UP))
    if down is not None:
        outages.append(Outage(meter_id, down.at, None, OutageSource.LAST_GASP))
    return outages


def outages_from_interval_flags(meter_id: str, intervals: Iterable[IntervalReading]) -> list[Outage]:
    """Outages inferred from the power-outage status bit of the meter's load-profile intervals.

    Intervals of all channels may be given (one record sets the bit on each); a run of flagged
    intervals ends at the first present interval without the bit.
    """
    flagged: dict[datetime, bool] = {}
    ends: dict[datetime, datetime] = {}
    for reading in intervals:
        if reading.meter_id != meter_id:
            continue
        on = bool(reading.meter_flags & METER_FLAG_POWER_OUTAGE)
        flagged[reading.start] = flagged.get(reading.start, False) or on
        ends[reading.start] = reading.end
    outages: list[Outage] = []
    run: tuple[datetime, datetime] | None = None
    for start in sorted(flagged):
        if flagged[start]:
            run = (run[0] if run else start, ends[start])
        elif run is not None:
            outages.append(Outage(meter_id, run[0], run[1], OutageSource.INFERRED_COMMS))
            run = None
    if run is not None:
        outages.append(Outage(meter_id, run[0], run[1], OutageSource.INFERRED_COMMS))
    return outages


@dataclass(frozen=True, slots=True)
class OutageChanges:
    """What to write: outages to create or update, and stored ones a better outage replaced."""

    save: list[Outage]
    discard: list[Outage]


def _overlap(a: Outage, b: Outage) -> bool:
    return (b.end is None or a.start < b.end) and (a.end is None or b.start < a.end)


def _join(a: Outage, b: Outage) -> Outage:
    end = None if a.end is None or b.end is None else max(a.end, b.end)
    return Outage(a.meter_id, min(a.start, b.start), end, a.source)


def merge_outages(derived: Sequence[Outage], stored: Sequence[Outage]) -> OutageChanges:
    """Reconcile derived outages with the stored ones of the same meters (see the module doc).

    A derived outage with a stored one's identity (meter, start) replaces it (an open outage is
    closed this way). Then, most trusted source first, an outage overlapping an accepted outage
    of a more trusted source is dropped, and inferred outages that overlap each other are joined.
    """
    candidates: dict[tuple[str, datetime], Outage] = {(o.meter_id, o.start): o for o in stored}
    candidates.update({(o.meter_id, o.start): o for o in derived})
    accepted: list[Outage] = []
    for outage in sorted(candidates.values(), key=lambda o: (_TRUST[o.source], o.meter_id, o.start)):
        same_meter = [a for a in accepted if a.meter_id == outage.meter_id and _overlap(a, outage)]
        if any(_TRUST[a.source] < _TRUST[outage.source] for a in same_meter):
            continue
        if outage.source is OutageSource.INFERRED_COMMS and same_meter:
            joined = outage
            for other in same_meter:
                joined = _join(joined, other)
                accepted.remove(other)
            accepted.append(joined)
            continue
        accepted.append(outage)
    kept = {(o.meter_id, o.start): o for o in accepted}
    before = {(o.meter_id, o.start): o for o in stored}
    save = [o for key, o in sorted(kept.items()) if before.get(key) != o]
    discard = [o for key, o in sorted(before.items()) if key not in kept]
    return OutageChanges(save, discard)
