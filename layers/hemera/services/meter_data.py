"""Customer Database data computed from a meter's stored interval series: consumption per period,
maximum demand and power factor, in the tenant's calendar.

Every function checks ownership first (`owned_meter`: another tenant's or customer's meter is not
found) and bounds the range, then reads the series through `ReadingStore.load_profile` and hands
them to the pure functions of `hemera.domain.aggregation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hemera.domain.aggregation import (
    POWER_FACTOR_REACTIVE_CHANNELS,
    EnergyTotal,
    Granularity,
    PeakDemand,
    PowerFactorPeriod,
    calendar_periods,
    energy_by_period,
    energy_by_post,
    interval_minutes,
    peak_demand_by_period,
    power_factor_by_period,
)
from hemera.domain.billing.tou import post_of
from hemera.domain.errors import InvalidQuery, TariffNotConfigured, TenantNotFound
from hemera.domain.readings import Channel, IntervalReading
from hemera.domain.registry import Meter, Tenant
from hemera.services.access import Caller, PortalPorts, owned_meter

# A request spans at most this many days: a quarter, so three monthly bills compare in one call
# (≈ 9,000 intervals of 15 min per channel, four channels ≈ 372 meter-channel-day items).
MAX_AGGREGATE_DAYS = 93
# Interval granularity returns one period per interval: bounded like the load profile.
MAX_INTERVAL_DAYS = 31


def caller_tenant(ports: PortalPorts, caller: Caller) -> Tenant:
    """The caller's tenant (its time zone reads the query's dates)."""
    tenant = ports.registry.get_tenant(caller.ctx)
    if tenant is None:
        raise TenantNotFound(f"tenant {caller.tenant_id} is not registered")
    return tenant


def parse_channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError as exc:
        raise InvalidQuery(f"channel must be one of {', '.join(c.value for c in Channel)}") from exc


def parse_granularity(value: str, allowed: Sequence[Granularity], name: str = "granularity") -> Granularity:
    try:
        granularity = Granularity(value)
    except ValueError:
        granularity = None
    if granularity not in allowed:
        raise InvalidQuery(f"{name} must be one of {', '.join(g.value for g in allowed)}")
    assert granularity is not None
    return granularity


def check_range(start: datetime, end: datetime, max_days: int) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidQuery("from and to need a UTC offset, e.g. 2026-11-20T00:00:00-03:00")
    if end <= start:
        raise InvalidQuery("to must be after from")
    if end.astimezone(UTC) - start.astimezone(UTC) > timedelta(days=max_days):
        raise InvalidQuery(f"a request at this granularity spans at most {max_days} days")


@dataclass(frozen=True, slots=True)
class MeterSeries:
    """The stored intervals of some channels of one meter in `[start, end)`."""

    tenant: Tenant
    meter: Meter
    start: datetime
    end: datetime
    readings: dict[Channel, list[IntervalReading]]

    @property
    def interval_minutes(self) -> int:
        return interval_minutes(self.readings.values())


def meter_series(
    ports: PortalPorts,
    caller: Caller,
    meter_id: str,
    channels: Sequence[Channel],
    start: datetime,
    end: datetime,
    max_days: int = MAX_AGGREGATE_DAYS,
) -> MeterSeries:
    meter = owned_meter(ports.registry, caller, meter_id)
    check_range(start, end, max_days)
    tenant = caller_tenant(ports, caller)
    readings = {c: ports.store.load_profile(caller.ctx, meter.id, c, start, end) for c in channels}
    return MeterSeries(tenant, meter, start, end, readings)


@dataclass(frozen=True, slots=True)
class Consumption:
    series: MeterSeries
    granularity: Granularity
    totals: dict[Channel, list[EnergyTotal]]
    # At `Granularity.POST`: the posts of the meter's tariff, one total of each channel per post.
    posts: tuple[str, ...] = ()
    tariff_id: str | None = None


def consumption(
    ports: PortalPorts,
    caller: Caller,
    meter_id: str,
    start: datetime,
    end: datetime,
    granularity: Granularity,
    channels: Sequence[Channel] = tuple(Channel),
) -> Consumption:
    """Energy of each channel per period of the tenant's calendar, or per time-of-use post of the
    meter's tariff over the whole range (`Granularity.POST`; a meter without tariff raises
    `TariffNotConfigured`)."""
    max_days = MAX_INTERVAL_DAYS if granularity is Granularity.INTERVAL else MAX_AGGREGATE_DAYS
    series = meter_series(ports, caller, meter_id, channels, start, end, max_days)
    if granularity is Granularity.POST:
        return _consumption_by_post(series, channels)
    periods = calendar_periods(start, end, granularity, series.tenant.zone, series.interval_minutes)
    totals = {c: energy_by_period(series.readings[c], periods) for c in channels}
    return Consumption(series, granularity, totals)


def _consumption_by_post(series: MeterSeries, channels: Sequence[Channel]) -> Consumption:
    tariff = series.meter.tariff
    if tariff is None:
        raise TariffNotConfigured(f"meter {series.meter.id!r} has no tariff: it has no time-of-use posts")
    calendar = tariff.calendar
    totals = {
        c: energy_by_post(
            series.readings[c],
            series.start,
            series.end,
            series.interval_minutes,
            calendar.posts,
            lambda start: post_of(start, calendar),
        )
        for c in channels
    }
    return Consumption(series, Granularity.POST, totals, calendar.posts, tariff.tariff_id)


@dataclass(frozen=True, slots=True)
class Demand:
    series: MeterSeries
    granularity: Granularity
    peaks: list[PeakDemand]


def demand(
    ports: PortalPorts,
    caller: Caller,
    meter_id: str,
    start: datetime,
    end: datetime,
    granularity: Granularity,
) -> Demand:
    """Maximum active-import demand per day or month of the tenant's calendar."""
    series = meter_series(ports, caller, meter_id, [Channel.ACTIVE_IMPORT], start, end)
    periods = calendar_periods(start, end, granularity, series.tenant.zone, series.interval_minutes)
    return Demand(series, granularity, peak_demand_by_period(series.readings[Channel.ACTIVE_IMPORT], periods))


@dataclass(frozen=True, slots=True)
class PowerFactor:
    series: MeterSeries
    granularity: Granularity
    periods: list[PowerFactorPeriod]


def power_factor(
    ports: PortalPorts,
    caller: Caller,
    meter_id: str,
    start: datetime,
    end: datetime,
    granularity: Granularity,
) -> PowerFactor:
    """Average power factor per hour or day (active import against `POWER_FACTOR_REACTIVE_CHANNELS`)."""
    channels = [Channel.ACTIVE_IMPORT, *POWER_FACTOR_REACTIVE_CHANNELS]
    series = meter_series(ports, caller, meter_id, channels, start, end)
    periods = calendar_periods(start, end, granularity, series.tenant.zone, series.interval_minutes)
    reactive = [series.readings[c] for c in POWER_FACTOR_REACTIVE_CHANNELS]
    results = power_factor_by_period(series.readings[Channel.ACTIVE_IMPORT], reactive, periods)
    return PowerFactor(series, granularity, results)
