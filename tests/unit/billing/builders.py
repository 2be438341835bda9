"""Final (VEE'd) days built by hand for the billing tests: a Sao Paulo Group A meter with
15-minute intervals, whose value and status at each local quarter-hour a test function gives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hemera.domain.billing.tariff import BillingRules, MeterTariff
from hemera.domain.billing.tou import brazil_group_a
from hemera.domain.final_series import (
    ESPI_EDITED,
    ESPI_LINEAR,
    ESPI_VALID,
    FinalDay,
    FinalInterval,
    FinalStatus,
    QualityFlag,
)
from hemera.domain.readings import Channel

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
METER = "sul-m-1001"
# (value, status) of the interval starting at a local time; None: the interval is absent.
Values = Callable[[datetime], tuple[Decimal | None, FinalStatus] | Decimal | None]

_QUALITY = {
    FinalStatus.ACTUAL: (QualityFlag.ACTUAL, ESPI_VALID),
    FinalStatus.ESTIMATED: (QualityFlag.SUBSTITUTE, ESPI_LINEAR),
    FinalStatus.EDITED: (QualityFlag.FINAL_SUBSTITUTE, ESPI_EDITED),
    FinalStatus.FAILED: (QualityFlag.NULL, ESPI_VALID),
}


def final_day(day: date, channel: Channel, values: Values, meter: str = METER, version: int = 1) -> FinalDay:
    intervals = []
    cursor = datetime.combine(day, time(0), tzinfo=SAO_PAULO).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=SAO_PAULO).astimezone(UTC)
    while cursor < end:
        given = values(cursor.astimezone(SAO_PAULO))
        if given is not None:
            value, status = given if isinstance(given, tuple) else (given, FinalStatus.ACTUAL)
            flag, espi = _QUALITY[status]
            intervals.append(
                FinalInterval(
                    start=cursor,
                    length_minutes=15,
                    value=value,
                    raw_value=value if status is FinalStatus.ACTUAL else None,
                    status=status,
                    quality_flag=flag,
                    espi_quality=espi,
                )
            )
        cursor += timedelta(minutes=15)
    return FinalDay(
        meter_id=meter,
        channel=channel,
        local_day=day,
        timezone="America/Sao_Paulo",
        interval_minutes=15,
        version=version,
        intervals=tuple(intervals),
        computed_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def azul_tariff(ponta_kw: str = "200", fora_ponta_kw: str = "300", reading_day: int = 1) -> MeterTariff:
    """A4 azul: ponta 18:00-21:00 on business days, demand per post, capacitive window 00:00-06:00."""
    return MeterTariff(
        tariff_id="a4-azul",
        name="A4 Azul",
        calendar=brazil_group_a("America/Sao_Paulo", time(18), 3),
        rules=BillingRules(),
        reading_day=reading_day,
        contracted_demand_kw=(("ponta", Decimal(ponta_kw)), ("fora_ponta", Decimal(fora_ponta_kw))),
    )
