"""The alarm types the platform raises: severity, what feeds them, what they are about and how
they close (the README's `## Alarms` table is this catalogue in prose)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from hemera.domain.meter_events import Subject


class AlarmType(StrEnum):
    # --- device events (MeterEventsRecorded) ---
    OUTAGE = "outage"  # power down (last gasp) .. power up
    COVER_OPEN = "cover_open"
    MAGNETIC_TAMPER = "magnetic_tamper"
    PHASE_LOSS = "phase_loss"
    REVERSE_ENERGY = "reverse_energy"
    CLOCK_RESET = "clock_reset"
    RELAY_OPEN = "relay_open"
    METER_READ_FAILED = "meter_read_failed"
    RTU_BUFFER_OVERFLOW = "rtu_buffer_overflow"
    RTU_LOW_SIGNAL = "rtu_low_signal"
    RTU_HIGH_TEMPERATURE = "rtu_high_temperature"
    # --- derived from instantaneous values (the sweep) ---
    OVERVOLTAGE = "overvoltage"
    UNDERVOLTAGE = "undervoltage"
    VOLTAGE_UNBALANCE = "voltage_unbalance"
    CURRENT_WITHOUT_ENERGY = "current_without_energy"
    ENERGY_WITHOUT_VOLTAGE = "energy_without_voltage"
    # --- derived from interval data (MeterDaysChanged) ---
    LOW_POWER_FACTOR = "low_power_factor"
    DEMAND_OVERRUN = "demand_overrun"
    # --- communication and data quality ---
    COMMUNICATION_FAILURE = "communication_failure"  # no data from a meter/RTU for hours (sweep)
    READS_EXHAUSTED = "reads_exhausted"  # the re-read sweep gave up on a gap (MeterReadsExhausted)
    VEE_FAILURES = "vee_failures"  # VEE rules failed on several recent days (FinalDaysChanged)


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    INFO = "info"


class Feed(StrEnum):
    """What evaluates the alarm."""

    DEVICE_EVENT = "device_event"  # MeterEventsRecorded
    INSTANTANEOUS = "instantaneous"  # the periodic sweep over the newest instantaneous values
    INTERVAL = "interval"  # MeterDaysChanged: the stored interval series of the changed days
    SILENCE = "silence"  # the periodic sweep over the devices' last-seen times
    READS_EXHAUSTED = "reads_exhausted"  # MeterReadsExhausted
    VEE = "vee"  # FinalDaysChanged


class Closing(StrEnum):
    """How an alarm closes on its own (any open alarm can also be acknowledged first)."""

    CLEARING_EVENT = "clearing_event"  # the device reports the end (power up, cover closed, ...)
    CONDITION_CLEARS = "condition_clears"  # an evaluation no longer sees the condition
    QUIET_PERIOD = "quiet_period"  # one-shot: no recurrence for `quiet_close_hours`


@dataclass(frozen=True, slots=True)
class AlarmSpec:
    severity: Severity
    feed: Feed
    subject: Subject
    closing: Closing
    # Consecutive evaluations without the condition before the alarm closes: more than one
    # suppresses flapping (a value hovering at a threshold neither closes nor reopens it).
    clear_after: int = 1
    # Counts towards the meter's theft/tamper suspicion score.
    theft_indicator: bool = False


_M, _R = Subject.METER, Subject.RTU
_EVENT, _CLEARS, _QUIET = Closing.CLEARING_EVENT, Closing.CONDITION_CLEARS, Closing.QUIET_PERIOD

CATALOG: Mapping[AlarmType, AlarmSpec] = {
    AlarmType.OUTAGE: AlarmSpec(Severity.MAJOR, Feed.DEVICE_EVENT, _M, _EVENT),
    AlarmType.COVER_OPEN: AlarmSpec(Severity.CRITICAL, Feed.DEVICE_EVENT, _M, _EVENT, theft_indicator=True),
    AlarmType.MAGNETIC_TAMPER: AlarmSpec(
        Severity.CRITICAL, Feed.DEVICE_EVENT, _M, _EVENT, theft_indicator=True
    ),
    AlarmType.PHASE_LOSS: AlarmSpec(Severity.MAJOR, Feed.DEVICE_EVENT, _M, _EVENT, theft_indicator=True),
    AlarmType.REVERSE_ENERGY: AlarmSpec(Severity.MAJOR, Feed.DEVICE_EVENT, _M, _EVENT, theft_indicator=True),
    AlarmType.CLOCK_RESET: AlarmSpec(Severity.MINOR, Feed.DEVICE_EVENT, _M, _QUIET),
    AlarmType.RELAY_OPEN: AlarmSpec(Severity.INFO, Feed.DEVICE_EVENT, _M, _EVENT),
    AlarmType.METER_READ_FAILED: AlarmSpec(Severity.MINOR, Feed.DEVICE_EVENT, _M, _QUIET),
    AlarmType.RTU_BUFFER_OVERFLOW: AlarmSpec(Severity.MAJOR, Feed.DEVICE_EVENT, _R, _QUIET),
    AlarmType.RTU_LOW_SIGNAL: AlarmSpec(Severity.MINOR, Feed.DEVICE_EVENT, _R, _QUIET),
    AlarmType.RTU_HIGH_TEMPERATURE: AlarmSpec(Severity.MINOR, Feed.DEVICE_EVENT, _R, _QUIET),
    AlarmType.OVERVOLTAGE: AlarmSpec(Severity.MAJOR, Feed.INSTANTANEOUS, _M, _CLEARS, clear_after=2),
    AlarmType.UNDERVOLTAGE: AlarmSpec(Severity.MAJOR, Feed.INSTANTANEOUS, _M, _CLEARS, clear_after=2),
    AlarmType.VOLTAGE_UNBALANCE: AlarmSpec(Severity.MINOR, Feed.INSTANTANEOUS, _M, _CLEARS, clear_after=2),
    AlarmType.CURRENT_WITHOUT_ENERGY: AlarmSpec(
        Severity.MAJOR, Feed.INSTANTANEOUS, _M, _CLEARS, clear_after=2, theft_indicator=True
    ),
    AlarmType.ENERGY_WITHOUT_VOLTAGE: AlarmSpec(
        Severity.MAJOR, Feed.INSTANTANEOUS, _M, _CLEARS, clear_after=2, theft_indicator=True
    ),
    AlarmType.LOW_POWER_FACTOR: AlarmSpec(Severity.MINOR, Feed.INTERVAL, _M, _CLEARS, clear_after=2),
    AlarmType.DEMAND_OVERRUN: AlarmSpec(Severity.MAJOR, Feed.INTERVAL, _M, _CLEARS, clear_after=2),
    AlarmType.COMMUNICATION_FAILURE: AlarmSpec(Severity.MAJOR, Feed.SILENCE, _M, _CLEARS),
    AlarmType.READS_EXHAUSTED: AlarmSpec(Severity.MINOR, Feed.READS_EXHAUSTED, _M, _QUIET),
    AlarmType.VEE_FAILURES: AlarmSpec(Severity.MINOR, Feed.VEE, _M, _CLEARS),
}


def spec_of(alarm_type: AlarmType) -> AlarmSpec:
    return CATALOG[alarm_type]
