"""Routes of the meter data computed from the stored interval series: consumption per period,
maximum demand and power factor (contract: `api_spec/openapi.yaml`).

They are registered through the app's `portal_route`, so they resolve the caller and map typed
errors exactly like every other route; the app hands in its ports and query accessors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from chalice.app import Response

from hemera.domain.aggregation import Granularity
from hemera.domain.readings import Channel
from hemera.observability import logger
from hemera.services import meter_data
from hemera.services.access import Caller, PortalPorts

from .documents import consumption_document, demand_document, power_factor_document
from .http import json_response, parse_instant, required

View = Callable[..., Response]
Route = Callable[[str], Callable[[View], View]]

_BOUND = "a date or an ISO-8601 time with offset"
CONSUMPTION_GRANULARITIES = (
    Granularity.INTERVAL,
    Granularity.HOUR,
    Granularity.DAY,
    Granularity.MONTH,
    Granularity.POST,  # per time-of-use post of the meter's tariff
)
DEMAND_PERIODS = (Granularity.DAY, Granularity.MONTH)
POWER_FACTOR_GRANULARITIES = (Granularity.HOUR, Granularity.DAY)


def register(route: Route, ports: Callable[[], PortalPorts], query: Callable[[], Mapping[str, str]]) -> None:
    """Add the routes to the app whose `portal_route` is `route`."""

    def bounds(caller: Caller) -> tuple[datetime, datetime]:
        zone = meter_data.caller_tenant(ports(), caller).zone
        q = query()
        start = parse_instant(required(q, "from", _BOUND), zone, "from")
        end = parse_instant(required(q, "to", _BOUND), zone, "to")
        return start, end

    @route("/v1/meters/{meter_id}/consumption")
    def get_consumption(caller: Caller, meter_id: str) -> Response:
        q = query()
        granularity = meter_data.parse_granularity(q.get("granularity", "day"), CONSUMPTION_GRANULARITIES)
        channels = [meter_data.parse_channel(q["channel"])] if "channel" in q else list(Channel)
        start, end = bounds(caller)
        result = meter_data.consumption(ports(), caller, meter_id, start, end, granularity, channels)
        logger.info("consumption served", extra={"meter": meter_id, "granularity": granularity.value})
        return json_response(consumption_document(result))

    @route("/v1/meters/{meter_id}/demand")
    def get_demand(caller: Caller, meter_id: str) -> Response:
        period = meter_data.parse_granularity(query().get("period", "day"), DEMAND_PERIODS, "period")
        start, end = bounds(caller)
        result = meter_data.demand(ports(), caller, meter_id, start, end, period)
        logger.info("demand served", extra={"meter": meter_id, "period": period.value})
        return json_response(demand_document(result))

    @route("/v1/meters/{meter_id}/power-factor")
    def get_power_factor(caller: Caller, meter_id: str) -> Response:
        granularity = meter_data.parse_granularity(
            query().get("granularity", "hour"), POWER_FACTOR_GRANULARITIES
        )
        start, end = bounds(caller)
        result = meter_data.power_factor(ports(), caller, meter_id, start, end, granularity)
        logger.info("power factor served", extra={"meter": meter_id, "granularity": granularity.value})
        return json_response(power_factor_document(result))
