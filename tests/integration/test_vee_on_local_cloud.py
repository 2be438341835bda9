"""VEE on the local cloud: a meter's days published over MQTT reach the store, their
MeterDaysChanged events reach the VEE queue through the bus rule, and the VEE function stores
final days that the portal API serves with their provenance. The day under test is Sydney's
spring-forward day (23 hours) with a 45-minute gap, a 6-hour gap and a spike; the gap's real
data then arrives late, and an operator edits an interval: each makes a new data version, and
the earlier ones stay retrievable."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from hemera import aws
from hemera_local import identity
from tests.builders import hx300_envelope
from tests.integration.conftest import eventually, run
from tests.integration.test_bad_input_and_isolation import broker, publish_all

pytestmark = pytest.mark.integration

TENANT, RTU, METER = "coastal-power", "rtu-syd-01", "cp-m-2002"
TOPIC = f"hemera/{TENANT}/{RTU}/up/telemetry"
SYDNEY = ZoneInfo("Australia/Sydney")
# Sunday 4 October 2026: 02:00 AEST jumps to 03:00 AEDT, 92 quarter-hours.
DST_DAY = date(2026, 10, 4)
HISTORY = [DST_DAY - timedelta(days=n) for n in range(14, 0, -1)]  # two weeks, two like Sundays
GAP_45_MIN = range(20, 23)
GAP_6_H = range(40, 64)
SPIKE, SPIKE_WH = 70, 40_000  # 40 kWh in a quarter-hour (160 kW) between ~5.5 kWh neighbours
OPERATOR, PASSWORD = "vera.vee", "Validated-Data-2026!"
SEQ = iter(range(48_000, 49_000))


def wh_at(n: int) -> int:
    """A ramp: 2 kWh in the first quarter-hour, 50 Wh more in each one after."""
    return 2000 + 50 * n


def quarter_hours(day: date) -> int:
    start = datetime.combine(day, datetime.min.time(), tzinfo=SYDNEY)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=SYDNEY)
    return int((end.astimezone(SYDNEY).timestamp() - start.timestamp()) // 900)


def publish_segments(cloud: Any, day: date, indexes: list[int], wh: dict[int, int] | None = None) -> None:
    """Publish the quarter-hours `indexes` of a Sydney day, one envelope per consecutive run."""
    # In UTC: adding minutes to a Sydney wall-clock time would step over the DST jump wrongly.
    start = datetime.combine(day, datetime.min.time(), tzinfo=SYDNEY).astimezone(UTC)
    runs: list[list[int]] = []
    for n in sorted(indexes):
        if runs and runs[-1][-1] == n - 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    messages = [
        (
            TOPIC,
            hx300_envelope(
                TENANT,
                RTU,
                METER,
                start + timedelta(minutes=15 * segment[0]),
                [(wh or {}).get(n, wh_at(n)) for n in segment],
                seq=next(SEQ),
            ).to_json(),
        )
        for segment in runs
    ]
    config = broker(cloud, TENANT, RTU)
    assert set(run(publish_all(config, f"{TENANT}:{RTU}", messages))) == {"acked"}


def profile(cloud: Any, headers: dict[str, str], first: date, last: date | None = None, **query: Any) -> dict:
    params = {"from": first.isoformat(), "to": ((last or first) + timedelta(days=1)).isoformat(), **query}
    response = requests.get(
        f"{cloud.api_url}/v1/meters/{METER}/load-profile", params=params, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def version_of(document: dict, day: date) -> int | None:
    return {d["local_day"]: d["version"] for d in document["data_versions"]}.get(day.isoformat())


@pytest.fixture(scope="module")
def operator(local_cloud) -> dict[str, str]:
    local_cloud.add_portal_user(OPERATOR, PASSWORD, "operator", TENANT)
    cognito = aws.client(local_cloud.settings.aws, "cognito-idp")
    token = identity.login(cognito, local_cloud.user_pool, OPERATOR, PASSWORD)["IdToken"]
    return {"Authorization": f"Bearer {token}"}


def test_vee_estimates_a_dst_day_then_late_data_and_an_edit_make_new_versions(local_cloud, operator):
    # Given two weeks of complete days, validated into final days
    for day in HISTORY:
        publish_segments(local_cloud, day, list(range(quarter_hours(day))))
    history = eventually(
        lambda: profile(local_cloud, operator, HISTORY[0], HISTORY[-1]),
        lambda d: (
            len(d["data_versions"]) == len(HISTORY)
            and all(i["status"] == "actual" for i in d["intervals"])
            and len(d["intervals"]) == sum(quarter_hours(day) for day in HISTORY)
        ),
        timeout_s=180,
    )
    assert len(history["data_versions"]) == len(HISTORY)

    # When the DST day arrives with a 45-minute gap, a 6-hour gap and a spike
    quarters = quarter_hours(DST_DAY)
    assert quarters == 92
    sent = [n for n in range(quarters) if n not in GAP_45_MIN and n not in GAP_6_H]
    publish_segments(local_cloud, DST_DAY, sent, {SPIKE: SPIKE_WH})

    def settled(document: dict) -> bool:
        by_index = dict(enumerate(document["intervals"]))
        return (
            version_of(document, DST_DAY) is not None
            and len(document["intervals"]) == quarters
            and all(by_index[n]["status"] == "actual" for n in sent if n != SPIKE)
        )

    day = eventually(lambda: profile(local_cloud, operator, DST_DAY), settled, timeout_s=120)

    # Then the API serves the final day: 92 quarter-hours, each gap filled and flagged
    assert day["summary"]["expected_intervals"] == 92 and settled(day)
    by_index = dict(enumerate(day["intervals"]))
    assert [
        (by_index[n]["value"], by_index[n]["method_flag"], by_index[n]["quality_flag"]) for n in GAP_45_MIN
    ] == [(wh_at(n) / 1000, 17, "S") for n in GAP_45_MIN]
    assert {by_index[n]["method_flag"] for n in GAP_6_H} <= {14, 15}  # like day / average like day
    assert all(by_index[n]["status"] == "estimated" and by_index[n]["raw_value"] is None for n in GAP_6_H)
    spike = by_index[SPIKE]
    assert (spike["status"], spike["raw_value"], spike["value"]) == ("estimated", 40.0, wh_at(SPIKE) / 1000)
    assert (
        by_index[0]["start"] == "2026-10-04T00:00:00+10:00"
        and day["intervals"][-1]["end"] == "2026-10-05T00:00:00+11:00"
    )
    estimated_version = version_of(day, DST_DAY)
    assert estimated_version is not None

    # When the 6-hour gap's real data arrives late
    publish_segments(local_cloud, DST_DAY, list(GAP_6_H))
    late = eventually(
        lambda: profile(local_cloud, operator, DST_DAY),
        lambda d: all(d["intervals"][n]["status"] == "actual" for n in GAP_6_H),
        timeout_s=120,
    )

    # Then it replaces the estimates in a new version, and the estimated version is still there
    late_version = version_of(late, DST_DAY)
    assert late_version is not None and late_version > estimated_version
    assert [late["intervals"][n]["value"] for n in GAP_6_H] == [wh_at(n) / 1000 for n in GAP_6_H]
    assert {late["intervals"][n]["data_version"] for n in GAP_6_H} == {late_version}
    before = profile(local_cloud, operator, DST_DAY, version=estimated_version)
    assert [before["intervals"][n]["method_flag"] for n in GAP_6_H] == [
        by_index[n]["method_flag"] for n in GAP_6_H
    ]

    # When an operator edits one quarter-hour through the API
    start = late["intervals"][30]["start"]
    response = requests.post(
        f"{local_cloud.api_url}/v1/meters/{METER}/edits",
        json={"channel": "active_import", "edits": [{"start": start, "value": 3.5, "reason": "site visit"}]},
        headers=operator,
        timeout=30,
    )

    # Then the answer names the new version, the API serves it, and the previous one stays
    assert response.status_code == 200, response.text
    (edited_day,) = response.json()["days"]
    assert (edited_day["local_day"], edited_day["previous_version"]) == ("2026-10-04", late_version)
    edited = profile(local_cloud, operator, DST_DAY)
    assert version_of(edited, DST_DAY) == edited_day["version"] == late_version + 1
    assert (edited["intervals"][30]["value"], edited["intervals"][30]["status"]) == (3.5, "edited")
    previous = profile(local_cloud, operator, DST_DAY, version=late_version)
    assert (previous["intervals"][30]["value"], previous["intervals"][30]["status"]) == (
        wh_at(30) / 1000,
        "actual",
    )
