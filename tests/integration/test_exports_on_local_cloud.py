"""Billing exports on the local cloud: the scheduled "exports due" job (fired as the local scheduler
fires it) writes a tenant's export to S3 on the moto server, `GET /v1/exports` lists it, the
pre-signed URL from `GET /v1/exports/{id}` downloads the file and its sha256 is the manifest's;
another tenant's key cannot see it, and the Green Button route serves the same final data."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import requests

from hemera.definitions import EXPORTS_DUE_SCHEDULE
from hemera.domain.final_series import ESPI_VALIDATED, FinalDay, FinalInterval, FinalStatus, QualityFlag
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.wiring import export_ports
from hemera_local.cloud import LocalCloud

TENANT, OTHER = "sul-energia", "coastal-power"
METER = "sul-m-1001"
ATOM = "{http://www.w3.org/2005/Atom}"


def final_day(cloud: LocalCloud, day: date, kwh: str) -> FinalDay:
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
        METER, Channel.ACTIVE_IMPORT, day, zone.key, 15, 1, intervals, datetime.now(UTC), cause="ingest"
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
