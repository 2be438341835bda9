"""Meter identities in the billing exports, on moto: the scheduled NEM12 of the Australian demo
tenant carries the NMIs and serials registered from `tenants/coastal-power.yaml` (read back by
`nemreader`), and a meter registered without an NMI is left out of it and listed in the
manifest as skipped with the reason, never exported under a made-up NMI."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from nemreader import NEMFile

from hemera.definitions import BILLING_EXPORTS_FUNCTION, EXPORTS_BUCKET
from hemera.domain.final_series import ESPI_VALIDATED, FinalDay, FinalInterval, FinalStatus, QualityFlag
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.wiring import export_ports
from hemera_local.bridge import LambdaContext, cold_start, load_handler

TENANT = "coastal-power"
CTX = TenantContext(TENANT)
ZONE = ZoneInfo("Australia/Sydney")
DAY = date(2026, 10, 1)  # AEST (+10, NEM time itself): 96 quarter-hours
# The daily NEM12 schedule (at 00:00 local) exports yesterday: 1 October, once 2 October began.
AS_OF = datetime(2026, 10, 2, 6, 0, tzinfo=ZONE)
DAILY = "20261001-daily-nem12"
IDENTITIES = {
    "cp-m-2001": ("NCCC000101", "HX3A0012001"),
    "cp-m-2002": ("NCCC000102", "HX3A0012002"),
    "cp-m-2003": ("NCCC000103", "HD5B0012003"),
}


def final_day(meter: str, kwh: str) -> FinalDay:
    start = datetime.combine(DAY, time(0), tzinfo=ZONE).astimezone(UTC)
    intervals = tuple(
        FinalInterval(
            start=start + timedelta(minutes=15 * n),
            length_minutes=15,
            value=Decimal(kwh),
            raw_value=Decimal(kwh),
            status=FinalStatus.ACTUAL,
            quality_flag=QualityFlag.ACTUAL,
            espi_quality=ESPI_VALIDATED,
        )
        for n in range(96)
    )
    return FinalDay(
        meter_id=meter,
        channel=Channel.ACTIVE_IMPORT,
        local_day=DAY,
        timezone=ZONE.key,
        interval_minutes=15,
        version=1,
        intervals=intervals,
        computed_at=datetime(2026, 10, 1, 15, tzinfo=UTC),
        cause="ingest",
    )


@pytest.fixture
def coastal(moto_cloud: Any) -> Any:
    """The demo tenants onboarded from their files, and 1 October of Coastal Power's meters
    (1, 2 and 3 kWh a quarter-hour)."""
    cold_start()
    ports = export_ports(moto_cloud)
    for kwh, meter in enumerate(IDENTITIES, start=1):
        ports.final_series.save(CTX, [final_day(meter, str(kwh))])  # type: ignore[attr-defined]
    return ports


def run_job() -> dict[str, Any]:
    event = {"job": "exports_due", "as_of": AS_OF.isoformat()}
    result: dict[str, Any] = load_handler(BILLING_EXPORTS_FUNCTION)(
        event, LambdaContext(BILLING_EXPORTS_FUNCTION.name)
    )
    return result


def written_nem12(ports: Any, tmp_path: Path) -> tuple[dict[str, Any], Any]:
    """The daily export's manifest entry of its NEM12 file, and the file as nemreader reads it."""
    s3 = boto3.client("s3")
    export = ports.index.get(CTX, DAILY)
    manifest = json.loads(
        s3.get_object(Bucket=EXPORTS_BUCKET.local_name, Key=export.latest.manifest_key)["Body"].read()
    )
    (entry,) = [f for f in manifest["files"] if f["format"] == "nem12"]
    path = tmp_path / entry["name"].replace("#", "_")
    path.write_bytes(s3.get_object(Bucket=EXPORTS_BUCKET.local_name, Key=entry["key"])["Body"].read())
    return entry, NEMFile(str(path), strict=True).nem_data()


def test_the_scheduled_nem12_carries_the_registered_nmis_and_serials(coastal, tmp_path):
    # Given Coastal Power's meters registered from its tenant file with NMIs and serials
    # When the hourly job writes the daily NEM12 of 1 October
    assert DAILY in run_job()["written"]
    entry, data = written_nem12(coastal, tmp_path)

    # Then an independent reader finds each meter's day under its own NMI, with its serial
    streams = {nmi: streams["E1"] for nmi, streams in data.readings.items()}
    assert set(streams) == {nmi for nmi, _ in IDENTITIES.values()}
    for kwh, (nmi, serial) in enumerate(IDENTITIES.values(), start=1):
        assert {r.meter_serial_number for r in streams[nmi]} == {serial}
        assert sum(r.read_value for r in streams[nmi]) == pytest.approx(96 * kwh)
    # and the manifest leaves no meter out
    assert entry["skipped"] == []


def test_a_meter_without_an_nmi_is_listed_as_skipped_not_exported(coastal, tmp_path):
    # Given cp-m-2003 registered without an NMI (its other data unchanged)
    registry = coastal.registry
    meter = registry.get_meter(CTX, "cp-m-2003")
    registry.put_meter(CTX, replace(meter, nmi=None))
    # When the daily NEM12 is written
    assert DAILY in run_job()["written"]
    entry, data = written_nem12(coastal, tmp_path)

    # Then the file holds the two other meters only, its totals are theirs (1 + 2 kWh x 96)
    assert set(data.readings) == {"NCCC000101", "NCCC000102"}
    assert Decimal(entry["totals"]["active_import_kWh"]) == Decimal(96 * 3)
    # and the manifest says which meter was left out and why
    assert entry["skipped"] == [{"meter_id": "cp-m-2003", "reason": "no_nmi"}]
