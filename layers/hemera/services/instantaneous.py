"""Customer Database data: a meter's stored instantaneous values (V, I, P, Q, PF, frequency).

Ownership is checked first (`owned_meter`: another tenant's or customer's meter is not found),
then the range and the page size are bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hemera.domain.errors import InvalidQuery
from hemera.domain.instantaneous import InstantaneousReading
from hemera.domain.registry import Meter
from hemera.ports.instantaneous import InstantaneousStore
from hemera.services.access import Caller, PortalPorts, owned_meter
from hemera.services.meter_data import check_range

# Read every 5 minutes by default: a week is 2,016 readings, so a range spans at most 31 days and
# a response holds at most `MAX_LIMIT` readings (narrow `to` to page further back).
MAX_INSTANTANEOUS_DAYS = 31
DEFAULT_LIMIT = 288  # one day at the agent's default period
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class InstantaneousValues:
    meter: Meter
    start: datetime
    end: datetime
    readings: list[InstantaneousReading]  # newest first
    truncated: bool  # more readings lie in the range, before the oldest one returned


def parse_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(value)


def instantaneous_values(
    ports: PortalPorts,
    store: InstantaneousStore,
    caller: Caller,
    meter_id: str,
    start: datetime,
    end: datetime,
    limit: int,
) -> InstantaneousValues:
    """The meter's instantaneous readings captured in `[start, end)`, newest first, at most `limit`."""
    meter = owned_meter(ports.registry, caller, meter_id)
    check_range(start, end, MAX_INSTANTANEOUS_DAYS)
    readings = store.newest_first(caller.ctx, meter.id, start, end, limit + 1)
    return InstantaneousValues(meter, start, end, readings[:limit], len(readings) > limit)
