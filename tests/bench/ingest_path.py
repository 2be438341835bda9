"""Benchmark (`make bench`), not a test: the translate function's throughput on moto.

Feeds N envelopes of one meter-day (96 intervals x 4 channels) through the translate handler in
SQS batches of the telemetry queue's batch size, as Lambda would receive them, on in-process moto
(no HTTP, no broker: the function alone); prints envelopes/s and intervals/s. Then redelivers everything once to measure the cost of an
at-least-once duplicate (no writes expected).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime, timedelta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meter-days", type=int, default=200)
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    from moto import mock_aws

    from hemera.config import AwsMode, AwsTarget, RuntimeSettings
    from hemera.definitions import TELEMETRY_QUEUE, TRANSLATE_FUNCTION
    from hemera.services.onboarding import register_tenant
    from hemera.tenants import load_tenant_dir
    from hemera.wiring import ingest_ports
    from hemera_local.bridge import LambdaContext, load_handler
    from hemera_local.resources import create_resources
    from tests.builders import as_sqs_record, hx300_envelope
    from tests.conftest import TENANTS_DIR

    with mock_aws():
        target = AwsTarget(mode=AwsMode.AWS)
        create_resources(target)
        settings = RuntimeSettings.local(target)
        os.environ.update(settings.environ())
        for tenant in load_tenant_dir(TENANTS_DIR):
            register_tenant(ingest_ports(settings).registry, tenant)
        handler = load_handler(TRANSLATE_FUNCTION)
        topic = "hemera/sul-energia/rtu-poa-01/up/telemetry"
        first_day = datetime(2026, 1, 1, 3, tzinfo=UTC)
        records = [
            as_sqs_record(
                f"m{i}",
                hx300_envelope(
                    "sul-energia",
                    "rtu-poa-01",
                    "sul-m-1001",
                    first_day + timedelta(days=i),
                    [1000] * 96,
                    seq=i,
                ).to_json(),
                topic,
            )
            for i in range(args.meter_days)
        ]
        batch = TELEMETRY_QUEUE.batch_size
        for label in ("first delivery", "redelivery"):
            started = time.perf_counter()
            for i in range(0, len(records), batch):
                response = handler({"Records": records[i : i + batch]}, LambdaContext("translate"))
                assert response == {"batchItemFailures": []}, response
            elapsed = time.perf_counter() - started
            intervals = len(records) * 96 * 4
            print(
                f"{label}: {len(records)} envelopes, {intervals} intervals in {elapsed:.2f} s = "
                f"{len(records) / elapsed:.0f} envelopes/s, {intervals / elapsed:.0f} intervals/s"
            )


if __name__ == "__main__":
    main()
