"""Benchmark (`make bench`), not a test: a billing export rendered in parts on moto, as the billing
function renders it — per part, its meters' final days read from DynamoDB, the five formats
rendered one at a time and put to S3, the part recorded; the last part writes the manifest.

Prints, per part, its meters and meter-days, seconds and the peak of Python allocations while
it rendered (tracemalloc: moto's in-process DynamoDB/S3 allocations are counted too, so the
figure is an upper bound of what the function holds), then the worst part and the per
meter-day figures that choose `hemera.services.exports.PART_METER_DAYS`.

    python -m tests.bench.exports [--meters 200] [--days 31] [--part-meter-days N]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta

from hemera.domain.exports import ExportFormat
from hemera.domain.readings import Channel
from hemera.domain.registry import Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.ports.exports import ExportState
from tests.export_builders import final_day

TENANT = "bench-utility"
CTX = TenantContext(TENANT)
ZONE = "Australia/Sydney"
FIRST = date(2026, 10, 1)


def nmi(n: int) -> str:
    return f"NBEN{n:06d}"


def main() -> None:
    from moto import mock_aws

    from hemera.adapters.exports_memory import MemoryExportRequests
    from hemera.config import AwsMode, AwsTarget, RuntimeSettings
    from hemera.services.exports import PART_METER_DAYS, create_export, render_export_part
    from hemera.wiring import export_ports
    from hemera_local.resources import create_resources

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--part-meter-days", type=int, default=PART_METER_DAYS)
    args = parser.parse_args()

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(key, value)
    os.environ.pop("HEMERA_AWS_ENDPOINT", None)
    with mock_aws():
        target = AwsTarget(mode=AwsMode.AWS, region="us-east-1")
        create_resources(target)
        settings = RuntimeSettings.local(target)
        requests = MemoryExportRequests()
        ports = dataclasses.replace(
            export_ports(settings), requests=requests, part_meter_days=args.part_meter_days
        )
        ports.registry.put_tenant(Tenant(TENANT, "Bench Utility", "AU", ZONE))  # type: ignore[attr-defined]
        meters = [
            Meter(TENANT, f"bm-{n:05d}", "hd500", "dlms", "rtu-1", "c-1", nmi=nmi(n), serial=f"SN{n:06d}")
            for n in range(args.meters)
        ]
        ports.registry.put_meters(CTX, meters)  # type: ignore[attr-defined]
        started = time.perf_counter()
        days = [FIRST + timedelta(days=d) for d in range(args.days)]
        for meter in meters:
            ports.final_series.save(  # type: ignore[attr-defined]
                CTX, [final_day(meter.id, channel, day, timezone=ZONE) for channel in Channel for day in days]
            )
        print(
            f"stored {args.meters} meters x {args.days} days x {len(Channel)} channels of final days "
            f"in {time.perf_counter() - started:.0f} s"
        )

        formats = [f.value for f in ExportFormat]
        now = datetime(2026, 11, 2, tzinfo=UTC)
        export = create_export(
            ports, CTX, "20261001-bench", formats, meters, days[0], days[-1], None, "bench", "scheduled", now
        )
        assert export.rendering is not None, "one part: raise --meters or lower --part-meter-days"
        per_part = export.rendering.meters_per_part
        print(
            f"export of {args.meters * args.days} meter-days in {export.rendering.parts} parts of "
            f"{per_part} meters ({per_part * args.days} meter-days, {len(Channel)} channels, "
            f"formats {', '.join(formats)})"
        )
        # tracemalloc slows Python down several times: part 1 (a full part) is rendered traced,
        # for its memory; the others untraced, for their time.
        peak_mb, seconds = 0.0, []
        for detail in requests.details:
            part = detail["part"]
            traced = part == 1
            if traced:
                tracemalloc.start()
            started = time.perf_counter()
            outcome = render_export_part(ports, TENANT, export.id, 1, part, now)
            elapsed = time.perf_counter() - started
            part_meters = min(per_part, args.meters - (part - 1) * per_part)
            if traced:
                peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
                measured = f"peak {peak_mb:.1f} MB (traced: time not representative)"
            else:
                seconds.append((elapsed, part_meters * args.days))
                measured = f"{elapsed:.1f} s"
            print(f"part {part:4d}: {part_meters} meters, {part_meters * args.days} meter-days: {measured}")
        assert outcome is not None and outcome.state is ExportState.READY
        full_part = per_part * args.days
        worst_s = max((s for s, _ in seconds), default=0.0)
        per_day_ms = 1000 * sum(s for s, _ in seconds) / max(1, sum(n for _, n in seconds))
        print(
            f"a part of {full_part} meter-days: peak {peak_mb:.1f} MB ({peak_mb / full_part:.3f} MB a meter-day), "
            f"slowest untraced part {worst_s:.1f} s ({per_day_ms:.1f} ms a meter-day of {len(Channel)} "
            f"channels, five formats); {len(outcome.latest.files)} files in the manifest"
        )


if __name__ == "__main__":
    main()
