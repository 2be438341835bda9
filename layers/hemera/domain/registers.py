"""Energy register readings (cumulative meter counters, e.g. OBIS 1.0.1.8.0.255) as the meter
reported them: VEE checks interval sums against register deltas and scales estimates to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from hemera.domain.readings import CHANNEL_UNITS, Channel, Unit


@dataclass(frozen=True, slots=True)
class RegisterReading:
    """The cumulative register of one channel at `at` (tz-aware UTC, the meter's capture time),
    in the channel's unit on the primary side (multiplier applied), like interval values."""

    meter_id: str
    channel: Channel
    at: datetime
    value: Decimal

    @property
    def unit(self) -> Unit:
        return CHANNEL_UNITS[self.channel]
