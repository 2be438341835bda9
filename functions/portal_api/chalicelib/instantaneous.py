"""Route of a meter's instantaneous values (V, I per phase, P, Q, PF, frequency), as stored by
the translate function from the agent's `instantaneous` frames (contract: `api_spec/openapi.yaml`).

Registered through the app's `portal_route`, like `meter_data`, so it resolves the caller and maps
typed errors like every other route.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import Response

from hemera.domain.instantaneous import QUANTITY_UNITS, SCALED_BY_MULTIPLIER, capture_key
from hemera.observability import logger
from hemera.ports.instantaneous import InstantaneousStore
from hemera.services import meter_data
from hemera.services.access import Caller, PortalPorts
from hemera.services.instantaneous import InstantaneousValues, instantaneous_values, parse_limit

from .http import json_response, number, parse_instant, required

View = Callable[..., Response]
Route = Callable[[str], Callable[[View], View]]

_BOUND = "a date or an ISO-8601 time with offset"


def instantaneous_document(result: InstantaneousValues) -> dict[str, Any]:
    return {
        "meter_id": result.meter.id,
        "from": result.start.isoformat(),
        "to": result.end.isoformat(),
        "order": "newest_first",
        "units": {q.value: unit for q, unit in QUANTITY_UNITS.items()},
        "primary_side": sorted(q.value for q in SCALED_BY_MULTIPLIER),
        "truncated": result.truncated,
        "readings": [
            {
                "captured_at": capture_key(r.captured_at),
                "values": {q.value: number(v) for q, v in sorted(r.values.items())},
            }
            for r in result.readings
        ],
    }


def register(
    route: Route,
    ports: Callable[[], PortalPorts],
    store: Callable[[], InstantaneousStore],
    query: Callable[[], Mapping[str, str]],
) -> None:
    """Add the route to the app whose `portal_route` is `route`."""

    @route("/v1/meters/{meter_id}/instantaneous")
    def get_instantaneous(caller: Caller, meter_id: str) -> Response:
        q = query()
        zone = meter_data.caller_tenant(ports(), caller).zone
        start = parse_instant(required(q, "from", _BOUND), zone, "from")
        end = parse_instant(required(q, "to", _BOUND), zone, "to")
        limit = parse_limit(q.get("limit"))
        result = instantaneous_values(ports(), store(), caller, meter_id, start, end, limit)
        logger.info(
            "instantaneous values served", extra={"meter": meter_id, "readings": len(result.readings)}
        )
        return json_response(instantaneous_document(result))
