"""HTTP helpers of the portal API: JSON responses, query bounds in the tenant's time zone, numbers
as JSON writes them, and the choice between JSON and CSV."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from chalice.app import Request, Response

from hemera.domain.errors import InvalidQuery

CSV = "text/csv"
JSON = "application/json"


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": JSON})


def csv_response(body: str, filename: str) -> Response:
    """A CSV download (RFC 4180); `filename` names the file a browser saves."""
    headers: dict[str, str | list[str]] = {
        "Content-Type": f"{CSV}; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    return Response(body=body, status_code=200, headers=headers)


# Bounds of a query: the API adds a day to `from` and works in UTC, which must not overflow.
_IN_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9998, 12, 31, tzinfo=UTC))


def parse_instant(value: str, zone: ZoneInfo, name: str) -> datetime:
    """A query bound: a date (local midnight of the tenant) or an ISO-8601 time with offset."""
    try:
        if len(value) == 10:
            instant = datetime.combine(date.fromisoformat(value), time(0), tzinfo=zone)
        else:
            instant = datetime.fromisoformat(value)
    except ValueError as exc:
        # An unencoded "+11:00" reaches us as " 11:00": say so rather than just "invalid".
        hint = " (encode a + offset as %2B)" if " " in value else ""
        raise InvalidQuery(f"{name}={value!r} is neither a date nor an ISO-8601 time{hint}") from exc
    if instant.tzinfo is None:
        raise InvalidQuery(f"{name}={value!r} needs a UTC offset, e.g. 2026-11-20T00:00:00-03:00")
    try:
        in_range = _IN_RANGE[0] <= instant.astimezone(UTC) <= _IN_RANGE[1]
    except OverflowError:
        in_range = False
    if not in_range:
        raise InvalidQuery(f"{name}={value!r} is outside the years 1970-9998")
    return instant


def required(query: Mapping[str, str], name: str, what: str) -> str:
    if name not in query:
        raise InvalidQuery(f"{name} is required ({what})")
    return query[name]


def number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _accepted(accept: str) -> list[tuple[float, int, str]]:
    """Media ranges of an Accept header as (-q, position, type), best first (RFC 9110 §12.5.1)."""
    ranges = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranges.append((-q, position, media.lower()))
    return sorted(ranges)


def wants_csv(accept: str | None, format_: str | None) -> bool:
    """CSV when `format=csv`, or when the Accept header prefers `text/csv` to JSON; JSON otherwise
    (also for `*/*` or no Accept header). `format` wins over the header: a link can carry it."""
    if format_ is not None:
        if format_ not in ("csv", "json"):
            raise InvalidQuery("format must be csv or json")
        return format_ == "csv"
    for _, _, media in _accepted(accept or ""):
        if media in (CSV, "text/*"):
            return True
        if media in (JSON, "application/*", "*/*"):
            return False
    return False


def utc_time(value: datetime | None) -> str | None:
    """An instant as the API writes UTC times: ISO-8601 with `Z` (None stays None)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def json_object(request: Request, error: type[InvalidQuery], shape: str) -> dict[str, Any]:
    """The request's JSON object body; `error` (a 400) naming the expected `shape` otherwise."""
    try:
        body = json.loads(request.raw_body or b"null")
    except ValueError as exc:
        raise error("the body is not JSON") from exc
    if not isinstance(body, dict):
        raise error(f"the body is a JSON object: {shape}")
    return body
