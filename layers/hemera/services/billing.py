"""Billing determinants of one meter and billing period, from the final (VEE'd) series.

The portal route and any other caller go through `meter_billing_determinants`: it checks
ownership (another tenant's or customer's meter is not found), reads the meter's tariff from the
registry (written at `tenant apply` from the tenant file), turns `YYYY-MM` into the tariff's
billing cycle, reads the final days of active import and both reactive channels through the
`FinalSeriesReader` port, and hands them to `hemera.domain.billing.determinants`.

The billing cycle closes on the customer's reading day when the tenant file gives the customer
one (`customers[].reading_day`), else on the tariff's: the tariff the determinants see carries
the reading day that applied, so the response says which days the cycle covers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hemera.domain.billing.cycle import billing_cycle, parse_period
from hemera.domain.billing.determinants import BillingDeterminants, billing_determinants
from hemera.domain.billing.tariff import MeterTariff
from hemera.domain.errors import InvalidQuery, TariffNotConfigured
from hemera.domain.readings import Channel
from hemera.domain.registry import Customer, Meter
from hemera.domain.tenancy import TenantContext
from hemera.ports import Registry
from hemera.ports.final_series import FinalSeriesReader
from hemera.services.access import Caller, PortalPorts, owned_meter

# The channels the determinants read: active energy, inductive (R+) and capacitive (R-) reactive.
BILLING_CHANNELS = (Channel.ACTIVE_IMPORT, Channel.REACTIVE_IMPORT, Channel.REACTIVE_EXPORT)
# Periods the API accepts (the query bounds of the other routes are 1970-9998 too).
FIRST_YEAR, LAST_YEAR = 1970, 9998


@dataclass(frozen=True, slots=True)
class MeterDeterminants:
    meter: Meter
    determinants: BillingDeterminants
    # Final days found per channel (0: VEE has computed nothing for the cycle yet).
    final_days: dict[Channel, int]


def billing_tariff(registry: Registry, ctx: TenantContext, meter: Meter) -> MeterTariff | None:
    """The meter's tariff as billing applies it (`tariff_of_customer`), reading its customer."""
    if meter.tariff is None:
        return None
    return tariff_of_customer(meter, registry.get_customer(ctx, meter.customer_id))


def tariff_of_customer(meter: Meter, customer: Customer | None) -> MeterTariff | None:
    """The meter's tariff with its customer's reading day when the customer has one (it
    overrides the tariff's)."""
    if meter.tariff is None or customer is None or customer.reading_day is None:
        return meter.tariff
    return replace(meter.tariff, reading_day=customer.reading_day)


def meter_billing_determinants(
    ports: PortalPorts, final_series: FinalSeriesReader, caller: Caller, meter_id: str, period: str
) -> MeterDeterminants:
    """The determinants of `meter_id` for the billing period `period` (`YYYY-MM`: the cycle whose
    last day lies in that month, see `hemera.domain.billing.cycle`), closed on the customer's
    reading day or else the tariff's (`billing_tariff`)."""
    meter = owned_meter(ports.registry, caller, meter_id)
    tariff = billing_tariff(ports.registry, caller.ctx, meter)
    if tariff is None:
        raise TariffNotConfigured(f"meter {meter.id!r} has no tariff in its tenant's file")
    try:
        year, _ = parse_period(period)
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValueError(f"the year lies in {FIRST_YEAR}-{LAST_YEAR}")
        cycle = billing_cycle(period, tariff.reading_day, tariff.calendar.timezone)
    except ValueError as exc:
        raise InvalidQuery(f"period={period!r} is not a billing period YYYY-MM: {exc}") from exc
    days = {
        channel: final_series.final_days(caller.ctx, meter.id, channel, cycle.first, cycle.last)
        for channel in BILLING_CHANNELS
    }
    result = billing_determinants(
        cycle,
        tariff,
        days[Channel.ACTIVE_IMPORT],
        days[Channel.REACTIVE_IMPORT],
        days[Channel.REACTIVE_EXPORT],
    )
    return MeterDeterminants(meter, result, {c: len(d) for c, d in days.items()})
