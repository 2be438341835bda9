"""Properties of the billing determinants over random quarter-hour data of a Sao Paulo week that
holds a national holiday (Hypothesis): what any bill must satisfy, whatever the load."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hemera.domain.billing.cycle import billing_cycle
from hemera.domain.billing.determinants import billing_determinants
from hemera.domain.readings import Channel
from tests.unit.billing.builders import azul_tariff, final_day

DAYS = [date(2026, 11, 18) + timedelta(days=i) for i in range(4)]  # Wed-Sat, Fri 20 a holiday
QUARTERS = 96 * len(DAYS)

values = st.lists(
    st.decimals(min_value=0, max_value=500, places=2, allow_nan=False, allow_infinity=False),
    min_size=QUARTERS,
    max_size=QUARTERS,
)


def _days(channel, series):
    def value_at(local):
        index = DAYS.index(local.date()) * 96 + local.hour * 4 + local.minute // 15
        return series[index]

    return [final_day(d, channel, value_at) for d in DAYS]


@settings(max_examples=25, deadline=None)
@given(values, values, values, st.decimals(min_value=1, max_value=2000, places=0))
def test_what_every_bill_satisfies(active, inductive, capacitive, contract):
    tariff = azul_tariff(str(contract), str(contract))
    result = billing_determinants(
        billing_cycle("2026-11", 1, "America/Sao_Paulo"),
        tariff,
        _days(Channel.ACTIVE_IMPORT, active),
        _days(Channel.REACTIVE_IMPORT, inductive),
        _days(Channel.REACTIVE_EXPORT, capacitive),
    )

    # The posts split the energy without losing or double-counting any of it.
    assert sum((e.kwh or Decimal(0) for e in result.energy), Decimal(0)) == sum(active, Decimal(0))
    for demand in result.demand:
        assert demand.billed_kw == max(demand.measured_kw, contract)
        # Either no overrun, or the whole excess past the 5 % tolerance.
        assert demand.overrun_kw == 0 or (
            demand.measured_kw > contract * Decimal("1.05")
            and demand.overrun_kw == demand.measured_kw - contract
        )
    assert result.excess_reactive_energy.kwh >= 0
    assert result.excess_reactive_energy.hours_evaluated == 24 * len(DAYS)
    assert all(d.kw is not None and d.kw >= 0 for d in result.excess_reactive_demand)
