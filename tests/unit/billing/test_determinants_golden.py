"""Golden cases of the billing determinants (REN 414/1000 as REFERENCE.md words them), computed by
hand from final days built interval by interval.

The meter: Sul Energia, America/Sao_Paulo (UTC-3, no DST), 15-minute intervals, tariff A4 azul:
ponta 18:00-21:00 on business days, fora ponta otherwise; contracted demand ponta 200 kW, fora
ponta 300 kW; fR = 0.92; capacitive window 00:00-06:00. Billing period 2026-11, reading day 1:
the cycle is 2026-11-01 … 2026-11-30 (30 days x 96 = 2,880 quarter-hours). Final days exist for
two days only:

- Thu 2026-11-19, a business day;
- Fri 2026-11-20, Dia Nacional de Zumbi e da Consciencia Negra, a national holiday: its
  18:00-21:00 is fora ponta.

Active import (kWh per quarter-hour): 25 (100 kW) everywhere, except
- 18:00-21:00 on both days: 50 (200 kW), and Thu 19:00 is 60 (240 kW), an *estimated* interval;
- Fri 10:00: 78 (312 kW), an *edited* interval.

Reactive (kvarh per quarter-hour): inductive (R+) 5, capacitive (R-) 0, except
- Thu 10:00-11:00 R+ 18.75 -> hour P 100, Q 75, S 125, fT 0.8 (inductive hour: charged);
- Thu 19:00-20:00 R+ 39.375 -> P 60+50+50+50 = 210, Q 157.5, S 262.5, fT 0.8 (ponta, charged);
- Thu 12:00-13:00 R- 18.75 -> capacitive energy outside the window: ignored (R+ 5 counts there);
- Fri 02:00-03:00 R- 18.75 -> P 100, Q 75, fT 0.8 inside the capacitive window: charged;
- Fri 03:00-04:00 R+ 18.75 -> inductive energy inside the capacitive window: ignored (R- 0).
Every other hour: P 100 (or 200 in 18-21h), Q 20 -> fT >= 0.98, not charged.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from hemera.domain.billing.cycle import billing_cycle
from hemera.domain.billing.determinants import billing_determinants
from hemera.domain.billing.tariff import ALL_POSTS, BillingRules, MeterTariff
from hemera.domain.billing.tou import brazil_group_a
from hemera.domain.final_series import FinalStatus
from hemera.domain.readings import Channel
from tests.unit.billing.builders import SAO_PAULO, azul_tariff, final_day

THU, FRI = date(2026, 11, 19), date(2026, 11, 20)


def _at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=SAO_PAULO)


def active(local: datetime):
    if local == _at(THU, 19):
        return Decimal(60), FinalStatus.ESTIMATED
    if local == _at(FRI, 10):
        return Decimal(78), FinalStatus.EDITED
    return Decimal(50) if 18 <= local.hour < 21 else Decimal(25)


def inductive(local: datetime):
    if (local.date(), local.hour) == (THU, 10) or (local.date(), local.hour) == (FRI, 3):
        return Decimal("18.75")
    if (local.date(), local.hour) == (THU, 19):
        return Decimal("39.375")
    return Decimal(5)


def capacitive(local: datetime):
    if (local.date(), local.hour) in {(THU, 12), (FRI, 2)}:
        return Decimal("18.75")
    return Decimal(0)


def determinants(tariff: MeterTariff | None = None, days=(THU, FRI)):
    tariff = tariff or azul_tariff()
    cycle = billing_cycle("2026-11", tariff.reading_day, "America/Sao_Paulo")
    return billing_determinants(
        cycle,
        tariff,
        [final_day(d, Channel.ACTIVE_IMPORT, active) for d in days],
        [final_day(d, Channel.REACTIVE_IMPORT, inductive) for d in days],
        [final_day(d, Channel.REACTIVE_EXPORT, capacitive) for d in days],
    )


def test_energy_per_post_splits_at_ponta_and_puts_the_holiday_evening_in_fora_ponta():
    """Ponta (Thu only): 11 x 50 + 60 = 610 kWh.
    Fora ponta: Thu 84 x 25 = 2,100; Fri (holiday) 83 x 25 + 78 + 12 x 50 = 2,753; sum 4,853 kWh."""
    result = determinants()

    energy = {e.post: e for e in result.energy}
    assert (energy["ponta"].kwh, energy["fora_ponta"].kwh) == (Decimal(610), Decimal(4853))
    # November 2026 has 21 weekdays; Mon 2 (Finados) and Fri 20 are national holidays (Sun 15
    # is a Sunday anyway): 19 business days x 12 ponta quarter-hours = 228.
    assert energy["ponta"].coverage.expected == 228
    assert energy["fora_ponta"].coverage.expected == 2880 - 228


def test_each_energy_determinant_states_its_estimated_and_edited_share():
    """Ponta: 12 of 228 expected intervals present, 1 estimated (Thu 19:00). Fora ponta: 180 of
    2,652 present, 1 edited (Fri 10:00)."""
    result = determinants()

    ponta, fora = (next(e.coverage for e in result.energy if e.post == p) for p in ("ponta", "fora_ponta"))
    assert (ponta.actual, ponta.estimated, ponta.edited, ponta.missing) == (11, 1, 0, 216)
    assert ponta.share_estimated == Decimal(1) / Decimal(228)
    assert (fora.actual, fora.estimated, fora.edited, fora.missing) == (179, 0, 1, 2652 - 180)
    assert fora.share_edited == Decimal(1) / Decimal(2652)


def test_demand_overrun_charges_the_whole_excess_only_past_the_5_percent_tolerance():
    """Ponta: max 60 kWh x 4 = 240 kW at Thu 19:00 > 200 x 1.05 = 210 -> overrun 240 - 200 = 40 kW
    (the whole excess), billed 240. Fora ponta: max 78 x 4 = 312 kW at Fri 10:00 <= 300 x 1.05 = 315
    -> no overrun, billed max(312, 300) = 312."""
    result = determinants()

    demand = {d.post: d for d in result.demand}
    assert (demand["ponta"].measured_kw, demand["ponta"].billed_kw, demand["ponta"].overrun_kw) == (
        Decimal(240),
        Decimal(240),
        Decimal(40),
    )
    assert demand["ponta"].at == _at(THU, 19).astimezone(UTC)
    assert (demand["fora_ponta"].measured_kw, demand["fora_ponta"].overrun_kw) == (Decimal(312), Decimal(0))
    assert demand["fora_ponta"].billed_kw == Decimal(312)
    assert demand["fora_ponta"].at == _at(FRI, 10).astimezone(UTC)


def test_demand_below_contract_is_billed_at_the_contract():
    """With 400 kW contracted in fora ponta, the measured 312 kW is billed as max(312, 400) = 400."""
    result = determinants(azul_tariff(fora_ponta_kw="400"))

    fora = next(d for d in result.demand if d.post == "fora_ponta")
    assert (fora.measured_kw, fora.billed_kw, fora.overrun_kw) == (Decimal(312), Decimal(400), Decimal(0))


def test_excess_reactive_energy_counts_only_the_hours_below_092_in_their_own_window():
    """ERE = sum of EEAM_T x (0.92 / fT - 1) over the hours with fT < 0.92:
    Thu 10h: 100 x (0.92/0.8 - 1) = 15; Thu 19h: 210 x 0.15 = 31.5; Fri 02h (capacitive, in the
    window): 100 x 0.15 = 15. Thu 12h (capacitive outside the window) and Fri 03h (inductive inside
    it) are not charged. ERE = 61.5 kWh over 3 hours; 48 of the cycle's 720 hours evaluated."""
    result = determinants()

    ere = result.excess_reactive_energy
    assert ere.kwh == Decimal("61.5")
    assert (ere.hours_below_reference, ere.hours_evaluated, ere.hours_expected) == (3, 48, 720)


def test_excess_reactive_demand_compares_the_corrected_peak_with_the_billed_demand_per_post():
    """DRE(p) = max_T(PAM_T x 0.92 / fT) - PAF(p):
    ponta: Thu 19h 210 x 0.92 / 0.8 = 241.5 kW; PAF 240 -> DRE 1.5 kW;
    fora ponta: Thu 10h and Fri 02h both 100 x 1.15 = 115 kW (the earlier wins); PAF 312 -> 0."""
    result = determinants()

    dre = {d.post: d for d in result.excess_reactive_demand}
    assert (dre["ponta"].corrected_kw, dre["ponta"].billed_kw, dre["ponta"].kw) == (
        Decimal("241.5"),
        Decimal(240),
        Decimal("1.5"),
    )
    assert dre["ponta"].at == _at(THU, 19).astimezone(UTC)
    assert (dre["fora_ponta"].corrected_kw, dre["fora_ponta"].kw) == (Decimal(115), Decimal(0))
    assert dre["fora_ponta"].at == _at(THU, 10).astimezone(UTC)
    # The ponta hour behind DRE holds the estimated interval: its share says so.
    assert dre["ponta"].coverage.estimated == 1


def test_total_reactive_energy_per_kind():
    """Inductive: 192 quarter-hours; 4 x 18.75 (Thu 10h) + 4 x 39.375 (Thu 19h) + 4 x 18.75 (Fri 3h)
    + 180 x 5 = 75 + 157.5 + 75 + 900 = 1,207.5 kvarh. Capacitive: 8 x 18.75 = 150 kvarh."""
    result = determinants()

    totals = {t.kind: t.kvarh for t in result.reactive_energy}
    assert totals == {"inductive": Decimal("1207.5"), "capacitive": Decimal(150)}


def test_verde_bills_one_demand_over_all_posts():
    """A4 verde: one contracted demand (300 kW) for every hour: the maximum is Fri 10:00's 312 kW,
    within 315 -> no overrun. DRE per calendar post all the same (REN 1000 Art. 304), each against
    the single billed 312 kW: ponta Thu 19h 241.5 -> 0; fora ponta Thu 10h (or Fri 2h) 100 x
    0.92 / 0.8 = 115 -> 0."""
    tariff = MeterTariff(
        "a4-verde",
        "A4 Verde",
        brazil_group_a(),
        BillingRules(demand_per_post=False),
        contracted_demand_kw=((ALL_POSTS, Decimal(300)),),
    )

    result = determinants(tariff)

    (demand,) = result.demand
    assert (demand.post, demand.measured_kw, demand.billed_kw, demand.overrun_kw) == (
        ALL_POSTS,
        Decimal(312),
        Decimal(312),
        Decimal(0),
    )
    dre = {d.post: (d.corrected_kw, d.billed_kw, d.kw) for d in result.excess_reactive_demand}
    assert dre == {
        "ponta": (Decimal("241.5"), Decimal(312), Decimal(0)),
        "fora_ponta": (Decimal(115), Decimal(312), Decimal(0)),
    }
    assert {e.post for e in result.energy} == {"ponta", "fora_ponta"}


def test_a_cycle_without_final_days_reports_no_data_instead_of_zero():
    result = determinants(days=())

    assert all(e.kwh is None and e.coverage.intervals == 0 for e in result.energy)
    assert all(d.measured_kw is None and d.overrun_kw is None for d in result.demand)
    assert result.excess_reactive_energy.hours_evaluated == 0
    assert result.excess_reactive_energy.coverage.missing == 2880
    assert all(d.kw is None for d in result.excess_reactive_demand)


def test_an_hour_with_a_missing_interval_is_not_evaluated():
    """Drop Thu 10:15 active import: the Thu 10h hour (15 kWh of ERE) is no longer evaluated."""
    tariff = azul_tariff()
    cycle = billing_cycle("2026-11", 1, "America/Sao_Paulo")

    def gappy(local: datetime):
        return None if local == _at(THU, 10, 15) else active(local)

    result = billing_determinants(
        cycle,
        tariff,
        [final_day(d, Channel.ACTIVE_IMPORT, gappy) for d in (THU, FRI)],
        [final_day(d, Channel.REACTIVE_IMPORT, inductive) for d in (THU, FRI)],
        [final_day(d, Channel.REACTIVE_EXPORT, capacitive) for d in (THU, FRI)],
    )

    assert result.excess_reactive_energy.kwh == Decimal("46.5")
    assert result.excess_reactive_energy.hours_evaluated == 47


def test_five_minute_data_is_integrated_over_the_tariffs_15_minutes():
    """Three 5-minute intervals of 10, 30 and 20 kWh make one 15-minute block of 60 kWh = 240 kW,
    although the 30 kWh interval alone would read 360 kW."""
    base = final_day(THU, Channel.ACTIVE_IMPORT, lambda local: Decimal(1))
    first = base.intervals[0]
    start = _at(THU, 19).astimezone(UTC)
    five = tuple(
        replace(
            first,
            start=start + timedelta(minutes=5 * i),
            length_minutes=5,
            value=Decimal(v),
            raw_value=Decimal(v),
        )
        for i, v in enumerate((10, 30, 20))
    )
    day = replace(base, interval_minutes=5, intervals=five)

    result = billing_determinants(
        billing_cycle("2026-11", 1, "America/Sao_Paulo"), azul_tariff(), [day], [], []
    )

    ponta = next(d for d in result.demand if d.post == "ponta")
    assert ponta.measured_kw == Decimal(240)


@pytest.mark.parametrize("day", [THU, FRI])
def test_intervals_outside_the_cycle_are_ignored(day):
    """The December cycle holds none of the November days."""
    tariff = azul_tariff()
    result = billing_determinants(
        billing_cycle("2026-12", 1, "America/Sao_Paulo"),
        tariff,
        [final_day(day, Channel.ACTIVE_IMPORT, active)],
        [],
        [],
    )
    assert all(e.kwh is None for e in result.energy)
