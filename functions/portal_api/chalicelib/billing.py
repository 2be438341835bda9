"""Route of a meter's billing determinants for a billing period (contract: `api_spec/openapi.yaml`,
README "Billing determinants"), computed from the final (VEE'd) series by
`hemera.services.billing`.

Registered through the app's `portal_route`, like `meter_data`, so it resolves the caller and maps
typed errors like every other route. Quantities are rounded to 4 decimals, shares to 6.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from chalice.app import Response

from hemera.domain.billing.determinants import Coverage
from hemera.observability import logger
from hemera.ports.final_series import FinalSeriesReader
from hemera.services.access import Caller, PortalPorts
from hemera.services.billing import MeterDeterminants, meter_billing_determinants

from .http import json_response, number, required

View = Callable[..., Response]
Route = Callable[[str], Callable[[View], View]]

_QUANTITY = Decimal("0.0001")
_SHARE = Decimal("0.000001")


def _amount(value: Decimal | None) -> float | int | None:
    return None if value is None else number(value.quantize(_QUANTITY))


def _coverage(coverage: Coverage) -> dict[str, Any]:
    return {
        "expected_intervals": coverage.expected,
        "intervals": coverage.intervals,
        "actual": coverage.actual,
        "estimated": coverage.estimated,
        "edited": coverage.edited,
        "failed": coverage.failed,
        "missing": coverage.missing,
        "share_estimated": number(coverage.share_estimated.quantize(_SHARE)),
        "share_edited": number(coverage.share_edited.quantize(_SHARE)),
        "share_present": number(coverage.share_present.quantize(_SHARE)),
    }


def _local(instant: datetime | None, zone: ZoneInfo) -> str | None:
    return None if instant is None else instant.astimezone(zone).isoformat()


def determinants_document(result: MeterDeterminants) -> dict[str, Any]:
    d = result.determinants
    tariff, cycle, zone = d.tariff, d.cycle, d.tariff.calendar.zone
    ere = d.excess_reactive_energy
    return {
        "meter_id": result.meter.id,
        "period": cycle.period,
        "timezone": cycle.timezone,
        "cycle": {
            "first_day": cycle.first.isoformat(),
            "last_day": cycle.last.isoformat(),
            "from": _local(cycle.start, zone),
            "to": _local(cycle.end, zone),
            "reading_day": tariff.reading_day,
        },
        "tariff": {
            "id": tariff.tariff_id,
            "name": tariff.name,
            "posts": list(tariff.calendar.posts),
            "demand_posts": list(tariff.demand_posts),
            "pf_reference": number(tariff.rules.pf_reference),
            "demand_interval_minutes": tariff.rules.demand_interval_minutes,
            "overrun_tolerance": number(tariff.rules.overrun_tolerance),
            "capacitive_window": {
                "start": tariff.rules.capacitive_start.isoformat("minutes"),
                "hours": tariff.rules.capacitive_hours,
            },
        },
        "interval_minutes": d.interval_minutes,
        "final_days": {c.value: n for c, n in result.final_days.items()},
        "energy": [
            {"post": e.post, "kwh": _amount(e.kwh), "coverage": _coverage(e.coverage)} for e in d.energy
        ],
        "demand": [
            {
                "post": m.post,
                "measured_kw": _amount(m.measured_kw),
                "at": _local(m.at, zone),
                "contracted_kw": _amount(m.contracted_kw),
                "billed_kw": _amount(m.billed_kw),
                "overrun_kw": _amount(m.overrun_kw),
                "incomplete_blocks": m.incomplete_blocks,
                "coverage": _coverage(m.coverage),
            }
            for m in d.demand
        ],
        "excess_reactive_energy": {
            "kwh": _amount(ere.kwh),
            "hours_expected": ere.hours_expected,
            "hours_evaluated": ere.hours_evaluated,
            "hours_below_reference": ere.hours_below_reference,
            "hours_without_load": ere.hours_without_load,
            "coverage": _coverage(ere.coverage),
        },
        "excess_reactive_demand": [
            {
                "post": r.post,
                "corrected_kw": _amount(r.corrected_kw),
                "at": _local(r.at, zone),
                "billed_kw": _amount(r.billed_kw),
                "kw": _amount(r.kw),
                "coverage": _coverage(r.coverage),
            }
            for r in d.excess_reactive_demand
        ],
        "reactive_energy": [
            {"kind": t.kind, "kvarh": _amount(t.kvarh), "coverage": _coverage(t.coverage)}
            for t in d.reactive_energy
        ],
    }


def register(
    route: Route,
    ports: Callable[[], PortalPorts],
    final_series: Callable[[], FinalSeriesReader],
    query: Callable[[], Mapping[str, str]],
) -> None:
    """Add the route to the app whose `portal_route` is `route`."""

    @route("/v1/meters/{meter_id}/billing-determinants")
    def get_billing_determinants(caller: Caller, meter_id: str) -> Response:
        period = required(query(), "period", "a billing period YYYY-MM")
        result = meter_billing_determinants(ports(), final_series(), caller, meter_id, period)
        days = {c.value: n for c, n in result.final_days.items()}
        logger.info(
            "billing determinants served", extra={"meter": meter_id, "period": period, "final_days": days}
        )
        return json_response(determinants_document(result))
