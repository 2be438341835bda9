"""Billing exports on the local cloud: the scheduled "exports due" job (fired as the local scheduler
fires it) writes a tenant's export to S3 on the moto server, `GET /v1/exports` lists it, the
pre-signed URL from `GET /v1/exports/{id}` downloads the file and its sha256 is the manifest's;
another tenant's key cannot see it, and the Green Button route serves the same final data. An
operator's on-demand request is accepted (202, pending) and becomes ready through the platform
bus, the requests queue and the billing function; late data of an exported day waits as a
pending restatement until the restatements job makes exactly one new version of the export."""

from __future__ import annotations

import dataclasses
import hashlib
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from hemera import aws
from hemera.adapters.final_series_events import EventBridgeFinalDays
from hemera.definitions import EXPORTS_DUE_SCHEDULE, RESTATEMENTS_SCHEDULE
from hemera.domain.final_series import (
    ESPI_VALIDATED,
    FinalDay,
    FinalDayChange,
    FinalInterval,
    FinalStatus,
    QualityFlag,
)
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.services.exports import record_restatements, restate_pending
from hemera.wiring import export_ports
from hemera_local import identity
from hemera_local.cloud import LocalCloud
from tests.integration.conftest import eventually

TENANT, OTHER = "sul-energia", "coastal-power"
METER = "sul-m-1001"
ATOM = "{http://www.w3.org/2005/Atom}"


OPERATOR, PASSWORD = "exports.operator", "Exports-Operator-2026!"


def final_day(cloud: LocalCloud, day: date, kwh: str, version: int = 1, cause: str = "ingest") -> FinalDay:
    zone = cloud.tenants[TENANT].zone
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    count = int((end - start) / timedelta(minutes=15))
    intervals = tuple(
        FinalInterval(
            start + timedelta(minutes=15 * n),
            15,
            Decimal(kwh),
            Decimal(kwh),
            FinalStatus.ACTUAL,
            QualityFlag.ACTUAL,
            ESPI_VALIDATED,
        )
        for n in range(count)
    )
    return FinalDay(
        METER, Channel.ACTIVE_IMPORT, day, zone.key, 15, version, intervals, datetime.now(UTC), cause=cause
    )


@pytest.fixture(scope="module")
def scheduled_export(local_cloud: LocalCloud) -> tuple[str, date, FinalDay]:
    """A day's final data of one meter (VEE's output), then the hourly job fired as of the next
    day: Sul Energia's daily schedule is due for that day. The day is 40 days back, where no
    other test of the shared local cloud delivers data (VEE would replace this final day)."""
    assert local_cloud.settings
    as_of = datetime.now(local_cloud.tenants[TENANT].zone) - timedelta(days=40)
    yesterday = as_of.date() - timedelta(days=1)
    day = final_day(local_cloud, yesterday, "1.25")
    ports = export_ports(local_cloud.settings)
    if (
        ports.final_series.final_day_version(
            TenantContext(TENANT), METER, Channel.ACTIVE_IMPORT, yesterday, 1
        )
        is None
    ):
        ports.final_series.save(TenantContext(TENANT), [day])  # type: ignore[attr-defined]
    result = local_cloud.run_schedule(EXPORTS_DUE_SCHEDULE.name, as_of=as_of.isoformat())
    export_id = f"{yesterday:%Y%m%d}-daily-csv"
    assert export_id in result["written"] + result["already_done"]
    return export_id, yesterday, day


def get(cloud: LocalCloud, key: str, path: str, **params: str) -> requests.Response:
    return requests.get(f"{cloud.api_url}{path}", params=params, headers={"x-api-key": key}, timeout=10)


def test_the_scheduled_export_is_listed_and_downloads_what_its_manifest_says(
    local_cloud: LocalCloud, api_keys: dict[str, str], scheduled_export: tuple[str, date, FinalDay]
) -> None:
    export_id, yesterday, day = scheduled_export
    # When the tenant lists its exports
    listing = get(local_cloud, api_keys[TENANT], "/v1/exports")
    # Then the scheduled export is there, for yesterday, from the daily schedule
    assert listing.status_code == 200, listing.text
    (listed,) = [e for e in listing.json()["items"] if e["id"] == export_id]
    assert (listed["period_start"], listed["period_end"]) == (yesterday.isoformat(),) * 2
    assert listed["schedule_id"] == "daily-csv" and listed["requested_by"] == "schedule:daily-csv"
    # When it reads the export
    one = get(local_cloud, api_keys[TENANT], f"/v1/exports/{export_id}")
    assert one.status_code == 200, one.text
    version = one.json()["versions"][-1]
    (csv_file,) = version["files"]
    # Then the pre-signed URL downloads the file from S3 (moto), byte for byte the manifest's
    body = requests.get(csv_file["download_url"], timeout=10)
    assert body.status_code == 200
    manifest = requests.get(version["manifest_url"], timeout=10).json()
    (entry,) = manifest["files"]
    assert hashlib.sha256(body.content).hexdigest() == entry["sha256"] == csv_file["sha256"]
    assert entry["key"].startswith(f"tenants/{TENANT}/exports/{export_id}/v")
    # and the file holds the meter's day: its intervals, adding up to the final day's total
    assert day.total() == Decimal("1.25") * len(day.intervals)
    assert Decimal(entry["totals"]["active_import_kWh"]) == day.total()
    assert METER.encode() in body.content and entry["rows"] >= len(day.intervals)


def test_another_tenant_neither_lists_nor_reads_the_export(
    local_cloud: LocalCloud, api_keys: dict[str, str], scheduled_export: tuple[str, date, FinalDay]
) -> None:
    export_id, _, _ = scheduled_export
    listing = get(local_cloud, api_keys[OTHER], "/v1/exports")
    assert listing.status_code == 200 and export_id not in listing.text
    assert get(local_cloud, api_keys[OTHER], f"/v1/exports/{export_id}").status_code == 404


def test_the_green_button_download_carries_the_same_final_data(
    local_cloud: LocalCloud, api_keys: dict[str, str], scheduled_export: tuple[str, date, FinalDay]
) -> None:
    _, yesterday, day = scheduled_export
    response = get(
        local_cloud,
        api_keys[TENANT],
        f"/v1/meters/{METER}/green-button",
        **{"from": yesterday.isoformat(), "to": (yesterday + timedelta(days=1)).isoformat()},
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    readings = [e for e in feed.iter() if e.tag.endswith("IntervalReading")]
    assert len(readings) == len(day.intervals)


@pytest.fixture(scope="module")
def operator_token(local_cloud: LocalCloud) -> str:
    local_cloud.add_portal_user(OPERATOR, PASSWORD, "operator", TENANT)
    cognito = aws.client(local_cloud.target, "cognito-idp")
    return str(identity.login(cognito, local_cloud.user_pool, OPERATOR, PASSWORD)["IdToken"])


def test_an_on_demand_request_is_accepted_and_becomes_ready_through_the_billing_function(
    local_cloud: LocalCloud,
    api_keys: dict[str, str],
    operator_token: str,
    scheduled_export: tuple[str, date, FinalDay],
) -> None:
    _, day, final = scheduled_export
    # When an operator asks for that day's CSV of the meter
    body = {
        "format": "csv",
        "from": day.isoformat(),
        "to": (day + timedelta(days=1)).isoformat(),
        "meters": [METER],
    }
    accepted = requests.post(
        f"{local_cloud.api_url}/v1/exports",
        json=body,
        headers={"Authorization": f"Bearer {operator_token}"},
        timeout=10,
    )
    # Then the API answers at once: accepted, pending, at its Location
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["state"] == "pending"
    location = accepted.headers["Location"]
    # and the billing function renders it from the requests queue (ExportRequested on the bus)
    export = eventually(
        lambda: get(local_cloud, api_keys[TENANT], location).json(), lambda e: e.get("state") != "pending"
    )
    assert (export["state"], export["latest_version"], export["failure"]) == ("ready", 1, None)
    (file,) = export["versions"][0]["files"]
    content = requests.get(file["download_url"], timeout=10).content
    assert hashlib.sha256(content).hexdigest() == file["sha256"]
    assert Decimal(file["totals"]["active_import_kWh"]) == final.total()


def unsigned(export: dict[str, Any]) -> list[dict[str, Any]]:
    """An export's versions without their pre-signed URLs (signed anew, with their own expiry,
    at every request)."""
    return [
        {
            **{k: v for k, v in version.items() if k != "manifest_url"},
            "files": [{k: v for k, v in f.items() if k != "download_url"} for f in version["files"]],
        }
        for version in export["versions"]
    ]


def test_late_data_of_an_exported_day_makes_exactly_one_new_version_when_the_job_runs(
    local_cloud: LocalCloud, api_keys: dict[str, str], scheduled_export: tuple[str, date, FinalDay]
) -> None:
    export_id, day, first = scheduled_export
    assert local_cloud.settings and local_cloud.target
    ports, ctx = export_ports(local_cloud.settings), TenantContext(TENANT)
    before = get(local_cloud, api_keys[TENANT], f"/v1/exports/{export_id}").json()
    # When late data makes VEE store version 2 of the exported day and announce it
    late = final_day(local_cloud, day, "1.5", version=2, cause="late_data")
    if ports.final_series.final_day_version(ctx, METER, Channel.ACTIVE_IMPORT, day, 2) is None:
        ports.final_series.save(ctx, [late])  # type: ignore[attr-defined]
    EventBridgeFinalDays(aws.client(local_cloud.target, "events"), local_cloud.settings.event_bus).announce(
        ctx, [FinalDayChange(METER, Channel.ACTIVE_IMPORT, day, 2, 1, "late_data")]
    )
    # Then the billing function records it as pending (rule, queue, bridge) without a new version
    pending = eventually(lambda: ports.restatements.pending(ctx), lambda found: export_id in found)
    assert [(c.local_day, c.version) for c in pending[export_id]] == [(day, 2)]
    assert unsigned(get(local_cloud, api_keys[TENANT], f"/v1/exports/{export_id}").json()) == unsigned(before)
    # When the restatements job runs (as the scheduler fires it every 15 minutes)
    result = local_cloud.run_schedule(RESTATEMENTS_SCHEDULE.name)
    # Then the export has exactly one new version, for the late data, with the day's new total
    number = before["latest_version"] + 1
    assert f"{export_id}@v{number}" in result["restated"]
    after = get(local_cloud, api_keys[TENANT], f"/v1/exports/{export_id}").json()
    assert [v["version"] for v in after["versions"]] == [v["version"] for v in before["versions"]] + [number]
    newest = after["versions"][-1]
    assert newest["reason"] == "late_data"
    (diff,) = newest["diff"]
    assert Decimal(diff["new_total"]) == late.total() and Decimal(diff["old_total"]) == first.total()
    # and the earlier version is still downloadable, byte for byte what it listed
    (earlier,) = after["versions"][-2]["files"]
    body = requests.get(earlier["download_url"], timeout=10)
    assert body.status_code == 200 and hashlib.sha256(body.content).hexdigest() == earlier["sha256"]
    # and nothing is left pending: the job running again makes no further version
    assert export_id not in ports.restatements.pending(ctx)
    assert (
        f"{export_id}@v{number + 1}" not in local_cloud.run_schedule(RESTATEMENTS_SCHEDULE.name)["restated"]
    )


def test_a_restatement_in_parts_is_finished_by_the_billing_function_through_the_requests_queue(
    local_cloud: LocalCloud, api_keys: dict[str, str], scheduled_export: tuple[str, date, FinalDay]
) -> None:
    export_id, day, _ = scheduled_export
    assert local_cloud.settings
    ports, ctx = export_ports(local_cloud.settings), TenantContext(TENANT)
    before = ports.index.get(ctx, export_id)
    assert before is not None and before.latest_version is not None and len(before.meters) > 1
    # Given an operator's edit of the exported day, recorded as pending
    version = 2  # the day's next final version (the late data above stored version 2)
    while ports.final_series.final_day_version(ctx, METER, Channel.ACTIVE_IMPORT, day, version):
        version += 1
    edited = final_day(local_cloud, day, "3", version=version, cause="edit")
    ports.final_series.save(ctx, [edited])  # type: ignore[attr-defined]
    change = FinalDayChange(METER, Channel.ACTIVE_IMPORT, day, version, version - 1, "edit")
    record_restatements(ports, TENANT, [change])
    # When the restatements job starts the next version in parts of one meter-day (one a meter)
    outcome = restate_pending(dataclasses.replace(ports, part_meter_days=1), ctx, datetime.now(UTC))
    (started,) = [e for e in outcome.rendering if e.id == export_id]
    assert started.rendering is not None and started.rendering.parts == len(before.meters)
    # Then the local cloud delivers each part message (rule, requests queue, poller) to the billing
    # function, and the delivery of the last part makes the version current
    number = before.latest_version + 1
    eventually(
        lambda: ports.index.get(ctx, export_id), lambda e: e is not None and e.latest_version == number
    )
    after = get(local_cloud, api_keys[TENANT], f"/v1/exports/{export_id}").json()
    newest = after["versions"][-1]
    assert (newest["version"], newest["reason"]) == (number, "edit")
    # with one CSV per part, each downloadable byte for byte as listed
    assert len(newest["files"]) == len(before.meters)
    for file in newest["files"]:
        body = requests.get(file["download_url"], timeout=10)
        assert body.status_code == 200 and hashlib.sha256(body.content).hexdigest() == file["sha256"]
    # and the edit is no longer pending
    assert export_id not in ports.restatements.pending(ctx)
