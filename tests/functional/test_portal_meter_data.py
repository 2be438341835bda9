"""Consumption, demand, power factor and the load profile as CSV, served by the portal API on moto
from stored series of a Sydney meter (a DST fall-back day and a month boundary), held to the
OpenAPI contract."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from chalice.test import Client

from hemera.domain.readings import CHANNEL_UNITS, Channel, IntervalReading, Source, VeeStatus
from hemera.domain.tenancy import TenantContext
from hemera.services.access import issue_api_key
from hemera.wiring import portal_ports
from tests.conftest import REPO_ROOT
from tests.openapi_contract import assert_conforms

BASE = "http://127.0.0.1:8000"
TENANT, METER = "coastal-power", "cp-m-2001"
SYDNEY = ZoneInfo("Australia/Sydney")
# 2026-04-05 in Sydney: 03:00 AEDT (+11) falls back to 02:00 AEST (+10), a 25-hour day.
FALL_BACK = datetime(2026, 4, 5, tzinfo=SYDNEY)
# Per quarter-hour: active import, reactive import (R+), reactive export (R-).
KWH, KVARH_PLUS, KVARH_MINUS = Decimal("0.3"), Decimal("0.3"), Decimal("0.1")
SPIKE_AT = datetime.fromisoformat("2026-04-05T02:30:00+10:00")  # in the repeated hour


def _reading(start: datetime, channel: Channel, value: Decimal, **provenance) -> IntervalReading:
    return IntervalReading(
        meter_id=METER,
        channel=channel,
        start=start.astimezone(UTC),
        length_minutes=15,
        value=value,
        unit=CHANNEL_UNITS[channel],
        raw_value=int(value * 1000),
        **provenance,
    )


def fall_back_day() -> list[IntervalReading]:
    """The 100 quarter-hours of the 25-hour day; active import spikes to 30 kWh (120 kW) once,
    one active-import interval (05:00 AEST) was never received."""
    readings = []
    cursor, end = FALL_BACK.astimezone(UTC), (FALL_BACK + timedelta(days=1)).astimezone(UTC)
    while cursor < end:
        readings += [
            _reading(cursor, Channel.REACTIVE_IMPORT, KVARH_PLUS),
            _reading(cursor, Channel.REACTIVE_EXPORT, KVARH_MINUS),
            _reading(cursor, Channel.ACTIVE_EXPORT, Decimal(0)),
        ]
        if cursor == SPIKE_AT:
            readings.append(_reading(cursor, Channel.ACTIVE_IMPORT, Decimal(30)))
        elif cursor != datetime.fromisoformat("2026-04-05T05:00:00+10:00"):
            readings.append(_reading(cursor, Channel.ACTIVE_IMPORT, KWH))
        cursor += timedelta(minutes=15)
    return readings


# Either side of local midnight on 1 November: one UTC day (31 October), two local months.
MONTH_EDGE = [
    _reading(datetime.fromisoformat("2026-10-31T23:45:00+11:00"), Channel.ACTIVE_IMPORT, Decimal("1.25")),
    _reading(
        datetime.fromisoformat("2026-11-01T00:00:00+11:00"),
        Channel.ACTIVE_IMPORT,
        Decimal("2.5"),
        source=Source.ESTIMATED,
        status=VeeStatus.ESTIMATED,
        quality_flag="E",
    ),
]


@pytest.fixture
def api(moto_cloud):
    ports = portal_ports(moto_cloud)
    ports.store.merge_intervals(TenantContext(TENANT), fall_back_day() + MONTH_EDGE)
    key = issue_api_key(ports.keys, TENANT, "test")
    spec = importlib.util.spec_from_file_location(
        "portal_meter_data_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_meter_data_app"] = module
    spec.loader.exec_module(module)
    with Client(module.app) as client:
        yield client, key


def get(client, key, path, headers=None, **query):
    headers = {"x-api-key": key} | (headers or {})
    url = path + ("?" + urlencode(query) if query else "")
    response = client.http.get(url, headers=headers)
    assert_conforms(BASE + url, headers, response.status_code, dict(response.headers), response.body)
    return response


def body(response) -> dict:
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def test_daily_consumption_of_a_25_hour_day_counts_the_missing_interval(api):
    client, key = api
    document = body(
        get(client, key, f"/v1/meters/{METER}/consumption", **{"from": "2026-04-05", "to": "2026-04-07"})
    )
    assert (document["timezone"], document["granularity"], document["interval_minutes"]) == (
        "Australia/Sydney",
        "day",
        15,
    )
    assert document["units"] == {
        "active_import": "kWh",
        "active_export": "kWh",
        "reactive_import": "kvarh",
        "reactive_export": "kvarh",
    }
    day, next_day = document["periods"]
    assert (day["start"], day["end"], day["expected_intervals"]) == (
        "2026-04-05T00:00:00+11:00",
        "2026-04-06T00:00:00+10:00",
        100,
    )
    # 98 intervals of 0.3 kWh and the 30 kWh spike; one interval missing, not counted as zero.
    assert day["channels"]["active_import"] == {"energy": 59.4, "intervals": 99, "missing": 1}
    assert day["channels"]["reactive_import"] == {"energy": 30, "intervals": 100, "missing": 0}
    assert day["channels"]["reactive_export"] == {"energy": 10, "intervals": 100, "missing": 0}
    assert day["channels"]["active_export"] == {"energy": 0, "intervals": 100, "missing": 0}
    assert next_day["channels"]["active_import"] == {"energy": None, "intervals": 0, "missing": 96}


def test_hourly_consumption_keeps_the_repeated_hour_apart(api):
    client, key = api
    document = body(
        get(
            client,
            key,
            f"/v1/meters/{METER}/consumption",
            granularity="hour",
            channel="active_import",
            **{"from": "2026-04-05", "to": "2026-04-06"},
        )
    )
    assert list(document["units"]) == ["active_import"]
    periods = document["periods"]
    assert len(periods) == 25
    assert [p["start"] for p in periods[2:4]] == ["2026-04-05T02:00:00+11:00", "2026-04-05T02:00:00+10:00"]
    assert periods[3]["channels"] == {"active_import": {"energy": 30.9, "intervals": 4, "missing": 0}}


def test_monthly_consumption_splits_at_local_midnight(api):
    client, key = api
    document = body(
        get(
            client,
            key,
            f"/v1/meters/{METER}/consumption",
            granularity="month",
            channel="active_import",
            **{"from": "2026-10-31", "to": "2026-11-02"},
        )
    )
    october, november = document["periods"]
    assert (october["end"], october["channels"]["active_import"]) == (
        "2026-11-01T00:00:00+11:00",
        {"energy": 1.25, "intervals": 1, "missing": 95},
    )
    assert november["channels"]["active_import"] == {"energy": 2.5, "intervals": 1, "missing": 95}


def test_maximum_demand_per_day_and_month_with_its_interval(api):
    client, key = api
    query = {"from": "2026-04-05", "to": "2026-04-07"}
    daily = body(get(client, key, f"/v1/meters/{METER}/demand", **query))
    assert (daily["period"], daily["unit"]) == ("day", "kW")
    day, empty = daily["periods"]
    assert (day["max_demand_kw"], day["at"], day["intervals"], day["missing"]) == (
        120,
        "2026-04-05T02:30:00+10:00",
        99,
        1,
    )
    assert (empty["max_demand_kw"], empty["at"], empty["missing"]) == (None, None, 96)
    monthly = body(
        get(
            client,
            key,
            f"/v1/meters/{METER}/demand",
            period="month",
            **{"from": "2026-04-01", "to": "2026-05-01"},
        )
    )
    (april,) = monthly["periods"]
    assert (april["max_demand_kw"], april["expected_intervals"]) == (120, 30 * 96 + 4)


def test_power_factor_per_hour_and_day_from_active_import_and_both_reactive_channels(api):
    client, key = api
    query = {"from": "2026-04-05T00:00:00+11:00", "to": "2026-04-05T02:00:00+11:00"}
    hourly = body(get(client, key, f"/v1/meters/{METER}/power-factor", **query))
    assert hourly["reactive_channels"] == ["reactive_import", "reactive_export"]
    first = hourly["periods"][0]
    # P = 4 x 0.3 = 1.2 kWh, Q = 4 x (0.3 + 0.1) = 1.6 kvarh: PF = 1.2 / 2 = 0.6
    assert (first["active_kwh"], first["reactive_kvarh"], first["power_factor"]) == (1.2, 1.6, 0.6)
    daily = body(
        get(
            client,
            key,
            f"/v1/meters/{METER}/power-factor",
            granularity="day",
            **{"from": "2026-04-05", "to": "2026-04-06"},
        )
    )
    (day,) = daily["periods"]
    # The interval without active import is left out of P and Q alike: 99 complete intervals.
    assert (day["intervals"], day["missing"], day["active_kwh"], day["reactive_kvarh"]) == (99, 1, 59.4, 39.6)
    assert day["power_factor"] == 0.8321  # 59.4 / sqrt(59.4² + 39.6²) = 3 / sqrt(13) = 0.83205…


@pytest.mark.parametrize(
    ("how", "headers", "query"),
    [
        ("query", {}, {"format": "csv"}),
        ("accept", {"Accept": "application/json;q=0.5, text/csv"}, {}),
    ],
)
def test_the_load_profile_as_csv_carries_the_provenance(api, how, headers, query):
    client, key = api
    response = get(
        client,
        key,
        f"/v1/meters/{METER}/load-profile",
        headers,
        channel="active_import",
        **{"from": "2026-11-01", "to": "2026-11-02"},
        **query,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    assert rows == [
        {
            "meter_id": METER,
            "channel": "active_import",
            "start": "2026-11-01T00:00:00+11:00",
            "end": "2026-11-01T00:15:00+11:00",
            "value": "2.5",
            "unit": "kWh",
            "source": "estimated",
            "status": "estimated",
            "quality": "E",
            "meter_flags": "0",
            # No final (VEE'd) day yet: what the meter reported, in kWh, and no VEE columns.
            "raw_value": "2.5",
            "method_flag": "",
            "reason_code": "",
            "espi_quality": "14",
            "rule_id": "",
            "rule_version": "",
            "data_version": "",
        }
    ]


def test_the_load_profile_stays_json_without_asking_for_csv(api):
    client, key = api
    response = get(
        client, key, f"/v1/meters/{METER}/load-profile", {"Accept": "*/*"}, **{"from": "2026-11-01"}
    )
    assert body(response)["summary"]["intervals"] == 1


@pytest.mark.parametrize(
    ("route", "query"),
    [
        ("consumption", {"from": "2026-04-05"}),
        ("consumption", {"from": "2026-01-01", "to": "2026-04-05"}),
        ("consumption", {"from": "2026-04-01", "to": "2026-05-05", "granularity": "interval"}),
        ("consumption", {"from": "2026-04-05", "to": "2026-04-06", "granularity": "week"}),
        ("consumption", {"from": "2026-04-05", "to": "2026-04-06", "channel": "volts"}),
        ("consumption", {"from": "2026-04-06", "to": "2026-04-05"}),
        ("demand", {"from": "2026-04-05", "to": "2026-04-06", "period": "hour"}),
        ("power-factor", {"from": "2026-04-05", "to": "2026-04-06", "granularity": "month"}),
        ("power-factor", {"from": "2026-04-05T00:00:00", "to": "2026-04-06"}),
        ("load-profile", {"from": "2026-04-05", "format": "xml"}),
    ],
)
def test_bad_queries_are_400_problems(api, route, query):
    client, key = api
    response = client.http.get(f"/v1/meters/{METER}/{route}?" + urlencode(query), headers={"x-api-key": key})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert json.loads(response.body)["detail"]


def test_93_days_is_the_longest_range(api):
    client, key = api
    response = get(client, key, f"/v1/meters/{METER}/demand", **{"from": "2026-01-01", "to": "2026-04-04"})
    assert len(body(response)["periods"]) == 93
