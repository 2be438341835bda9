"""Benchmark (`make bench`), not a test: a fleet's day through the local cloud, with its AWS bill.

N meters (10,000 by default) x one day of 15-minute data, one envelope per meter, published by a
fast envelope generator through the real broker (mosquitto, mTLS, QoS 1) and the real rules bridge
(→ SQS on moto → translate in batches, as Lambda would run it) into DynamoDB and the raw archive.
Measured in the same run, on the same servers: moto's raw BatchWriteItem rate and mosquitto's raw
QoS 1 publish rate, so our rates read as fractions of those ceilings. Every AWS call the run makes
is counted (the moto server's usage middleware; the bridge counts what IoT Core and Lambda would
bill) and priced with bench/prices.yaml. The store is checked against what was sent, not trusted.

    python -m tests.bench.fleet_day [--meters 10000] [--model canonical|hx300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TENANT = "bench-utility"
LOADGEN = "bench-loadgen"
DAY = datetime(2026, 11, 20, tzinfo=UTC)


@dataclass
class PhaseTimes:
    """Wall seconds spent in each port of the ingest service, summed over invocations."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
                self.calls[name] = self.calls.get(name, 0) + 1

        return wrapper


def say(*parts: Any) -> None:
    """Progress on the terminal (the local cloud sends this process's stdout to the function log)."""
    print(*parts, file=sys.__stdout__, flush=True)


def bench_tenant(meters: int, per_rtu: int, model: str) -> Any:
    from hemera.tenants import TenantDefinition

    protocol = "canonical" if model == "canonical" else "modbus"
    rtus = (meters + per_rtu - 1) // per_rtu
    return TenantDefinition.model_validate(
        {
            "id": TENANT,
            "name": "Bench Utility",
            "country": "BR",
            "timezone": "America/Sao_Paulo",
            "customers": [{"id": "c-1", "name": "Bench customer"}],
            "rtus": [{"id": f"rtu-{r:05d}"} for r in range(rtus)],
            "meters": [
                {
                    "id": f"m-{m:05d}",
                    "model": "bench-connector" if model == "canonical" else model,
                    "protocol": protocol,
                    "rtu": f"rtu-{m // per_rtu:05d}",
                    "customer": "c-1",
                }
                for m in range(meters)
            ],
        }
    )


def day_values(meter_index: int) -> list[int]:
    """Wh per quarter hour, deterministic per meter."""
    rng = random.Random(meter_index)
    return [rng.randint(200, 9000) for _ in range(96)]


def envelope_bytes(meter_index: int, per_rtu: int, model: str, seq: int) -> bytes:
    meter, rtu = f"m-{meter_index:05d}", f"rtu-{meter_index // per_rtu:05d}"
    values = day_values(meter_index)
    if model == "hx300":
        from tests.builders import hx300_envelope

        return hx300_envelope(TENANT, rtu, meter, DAY, values, seq=seq).to_json()
    return json.dumps(
        {
            "schema": "hemera.envelope/1",
            "tenant": TENANT,
            "device": rtu,
            "meter": meter,
            "model": "bench-connector",
            "protocol": "canonical",
            "seq": seq,
            "collected_at": (DAY + timedelta(days=1, minutes=5)).isoformat(),
            "frames": [
                {
                    "kind": "load_profile",
                    "channel": "active_import",
                    "unit": "kWh",
                    "interval_minutes": 15,
                    "intervals": [
                        {
                            "start": (DAY + timedelta(minutes=15 * i)).isoformat(),
                            "value": str(Decimal(wh) / 1000),
                        }
                        for i, wh in enumerate(values)
                    ],
                }
            ],
        },
        separators=(",", ":"),
    ).encode()


async def publish(config: Any, client_id: str, messages: list[tuple[str, bytes]], window: int = 256) -> None:
    """QoS 1, up to `window` publishes in flight; returns when every one is acknowledged."""
    from hemera_agent.publisher import Mqtt5Publisher

    async with Mqtt5Publisher(config, client_id) as publisher:
        for start in range(0, len(messages), window):
            await asyncio.gather(*(publisher.publish(t, p) for t, p in messages[start : start + window]))


def publish_parallel(configs: list[Any], messages: list[tuple[str, bytes]]) -> None:
    async def all_publishers() -> None:
        parts = [messages[i :: len(configs)] for i in range(len(configs))]
        await asyncio.gather(
            *(
                publish(c, f"{LOADGEN}-{i}", part)
                for i, (c, part) in enumerate(zip(configs, parts, strict=True))
            )
        )

    asyncio.run(all_publishers())


def raw_batch_write_rate(target: Any, item_size: int, items: int = 6000) -> float:
    """moto's BatchWriteItem ceiling on this run's server: items of our items' size, 25 a call."""
    from hemera import aws

    ddb = aws.client(target, "dynamodb")
    ddb.create_table(
        TableName="bench-raw-rate",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    filler = "x" * max(1, item_size - 40)
    started = time.perf_counter()
    for start in range(0, items, 25):
        ddb.batch_write_item(
            RequestItems={
                "bench-raw-rate": [
                    {"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "v": {"S": filler}}}}
                    for i in range(start, start + 25)
                ]
            }
        )
    rate = items / (time.perf_counter() - started)
    ddb.delete_table(TableName="bench-raw-rate")
    return rate


def raw_publish_rate(configs: list[Any], payload_size: int, messages: int = 6000) -> float:
    """mosquitto's QoS 1 ceiling on this run's broker: same publishers, same payload size, on a
    topic no rule reads."""
    payload = b"x" * payload_size
    started = time.perf_counter()
    publish_parallel(configs, [(f"bench/raw/{i % 16}", payload) for i in range(messages)])
    return messages / (time.perf_counter() - started)


def scan_store(target: Any, table: str) -> tuple[int, int, Decimal, int]:
    """(items, intervals, sum of values, stored bytes) of the bench tenant's series items."""
    from hemera import aws
    from hemera_local.usage import stored_item_size

    ddb = aws.client(target, "dynamodb")
    items = intervals = stored = 0
    total = Decimal(0)
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            stored += stored_item_size(item)
            if not item["sk"]["S"].startswith("LP#") or not item["pk"]["S"].startswith(f"T#{TENANT}#"):
                continue
            items += 1
            values = [v for v in item["values"]["S"].split(",") if v]
            intervals += len(values)
            total += sum((Decimal(v) for v in values), Decimal(0))
    return items, intervals, total, stored


def s3_bytes(target: Any, bucket: str) -> tuple[int, int]:
    from hemera import aws

    s3 = aws.client(target, "s3")
    objects = [
        o
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    return len(objects), sum(o["Size"] for o in objects)


def drain(cloud: Any, queue_name: str, deadline: float) -> float:
    """Seconds until a queue has stayed empty (nothing visible or in flight) for 3 s."""
    from hemera import aws

    sqs = aws.client(cloud.target, "sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    started = time.perf_counter()
    empty_since: float | None = None
    while time.perf_counter() < deadline:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        ):
            empty_since = None
        elif empty_since is None:
            empty_since = time.perf_counter()
        elif time.perf_counter() - empty_since >= 3:
            return empty_since - started
        time.sleep(0.2)
    return float("nan")


def parquet_rows(target: Any, bucket: str) -> tuple[int, int]:
    """(objects, rows) of the bench tenant's curated Parquet, read back with pyarrow."""
    import io

    import pyarrow.parquet as pq

    from hemera import aws

    s3 = aws.client(target, "s3")
    prefix = f"curated/intervals/tenant={TENANT}/"
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]
    rows = sum(
        pq.read_metadata(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).num_rows
        for k in keys
    )
    return len(keys), rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--meters-per-rtu", type=int, default=4)
    parser.add_argument("--model", choices=["canonical", "hx300"], default="canonical")
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fleet_day.json")
    args = parser.parse_args()
    os.environ.update(
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from hemera.definitions import (
        CURATE_FUNCTION,
        CURATE_QUEUE,
        CURATED_BUCKET,
        QUEUE_CONSUMERS,
        RAW_BUCKET,
        READINGS_TABLE,
        TRANSLATE_FUNCTION,
    )
    from hemera.services.onboarding import register_tenant
    from hemera.wiring import ingest_ports
    from hemera_agent.config import BrokerConfig
    from hemera_local.bridge import load_handler
    from hemera_local.broker import acl_text
    from hemera_local.cloud import LocalCloud, LocalCloudConfig
    from hemera_local.costs import PriceTable, Scenario, cost_lines, format_table, per_meter_month, total_usd

    state = Path(tempfile.mkdtemp(prefix="hemera-bench-"))
    config = LocalCloudConfig(
        state_dir=state,
        tenants_dir=REPO / "tenants",
        with_api=False,
        moto_in_own_process=True,
        function_log=state / "functions.log",
    )
    with LocalCloud(config) as cloud:
        assert cloud.target and cloud.settings
        tenant = bench_tenant(args.meters, args.meters_per_rtu, args.model)
        t = time.perf_counter()
        register_tenant(ingest_ports(cloud.settings).registry, tenant)
        say(f"setup: {args.meters} meters registered in {time.perf_counter() - t:.1f} s")
        # The load generator publishes for every RTU of the bench tenant (one identity instead of
        # thousands of certificates); the broker's ACL lets it write exactly those topics.
        creds = cloud.pki.client(LOADGEN)
        cloud.broker.update_acl(
            acl_text(cloud.tenants.values())
            + f"\nuser {LOADGEN}\ntopic write hemera/{TENANT}/+/up/telemetry\ntopic write bench/raw/#\n"
        )
        broker = BrokerConfig(
            host="127.0.0.1",
            port=cloud.mqtt_port,
            cert=creds.cert,
            key=creds.key,
            ca=creds.ca,
            flow_control="none",
            max_inflight=100,
        )
        publishers = [broker] * args.publishers

        t = time.perf_counter()
        messages = [
            (
                f"hemera/{TENANT}/rtu-{m // args.meters_per_rtu:05d}/up/telemetry",
                envelope_bytes(m, args.meters_per_rtu, args.model, seq=1),
            )
            for m in range(args.meters)
        ]
        expected_total = sum((Decimal(sum(day_values(m))) / 1000 for m in range(args.meters)), Decimal(0))
        envelope_size = sum(len(p) for _, p in messages) // len(messages)
        say(
            f"generated {len(messages)} envelopes ({envelope_size} B each) in {time.perf_counter() - t:.1f} s"
        )

        # The ceilings, measured now on these servers (series items are ~1.2 KB)
        batch_write_rate = raw_batch_write_rate(cloud.target, item_size=1200)
        publish_rate = raw_publish_rate(publishers, envelope_size)
        say(
            f"raw moto BatchWriteItem: {batch_write_rate:,.0f} items/s; raw mosquitto QoS1: {publish_rate:,.0f} msg/s"
        )

        # Time every port of the ingest service inside the translate function, and its batches
        phases = PhaseTimes()
        translate_handler = load_handler(TRANSLATE_FUNCTION)
        module = sys.modules[translate_handler.__module__]
        batch_sizes: list[int] = []
        batch_seconds: list[float] = []

        def measured_translate(event: dict[str, Any], context: Any) -> Any:
            started = time.perf_counter()
            try:
                return translate_handler(event, context)
            finally:
                batch_sizes.append(len(event["Records"]))
                batch_seconds.append(time.perf_counter() - started)

        cloud.bridge.replace_handler(TRANSLATE_FUNCTION.name, measured_translate)
        ports = module._ports()
        for name, obj, method in (
            ("ledger.seen", ports.ledger, "seen"),
            ("ledger.record", ports.ledger, "record"),
            ("registry.get_meters", ports.registry, "get_meters"),
            ("store.merge_intervals (reads, conditional writes, events)", ports.store, "merge_intervals"),
            ("events.announce", ports.events, "announce"),
            ("archive.put_batch", ports.archive, "put_batch"),
        ):
            setattr(obj, method, phases.timed(name, getattr(obj, method)))
        # The target is MQTT -> translate -> store; curate (Parquet), VEE, alarms, billing and
        # notifications are downstream consumers with budgets of their own (batching windows of
        # seconds to minutes in AWS, and their own concurrency). On this 2-core machine they would
        # take the one moto process's CPU from translate, so their event sources are paused until
        # the store is complete; then curate is resumed and its drain timed separately (the others
        # stay paused: they are not part of this benchmark).
        downstream = {c.function.name for c in QUEUE_CONSUMERS} - {TRANSLATE_FUNCTION.name}
        for name in downstream:
            cloud.bridge.pause(name)
        cloud.reset_usage()
        translated = cloud.bridge.stats.records_ok_by_function
        before = translated.get(TRANSLATE_FUNCTION.name, 0)

        started = time.perf_counter()
        publish_parallel(publishers, messages)
        published_s = time.perf_counter() - started
        deadline = started + args.timeout
        while (
            translated.get(TRANSLATE_FUNCTION.name, 0) - before < len(messages)
            and time.perf_counter() < deadline
        ):
            time.sleep(0.05)
        wall_s = time.perf_counter() - started
        done = translated.get(TRANSLATE_FUNCTION.name, 0) - before
        cloud.bridge.resume(CURATE_FUNCTION.name)
        curate_s = drain(cloud, CURATE_QUEUE.local_name, deadline=time.perf_counter() + args.timeout)
        usage = cloud.usage()  # before the checks below read the store and the Parquet back
        curated_objects, curated_rows = parquet_rows(cloud.target, CURATED_BUCKET.local_name)
        say(
            f"curate: drained in {curate_s:.1f} s after the store; {curated_objects} Parquet objects, {curated_rows} rows"
        )
        stats = cloud.bridge.stats

        translate_batches = {
            "count": len(batch_sizes),
            "mean_size": round(sum(batch_sizes) / max(1, len(batch_sizes)), 1),
            "seconds_in_handler": round(sum(batch_seconds), 2),
            "mean_seconds": round(sum(batch_seconds) / max(1, len(batch_seconds)), 3),
        }
        items, intervals, total, ddb_stored = scan_store(cloud.target, READINGS_TABLE.local_name)
        raw_objects, raw_bytes = s3_bytes(cloud.target, RAW_BUCKET.local_name)
        usage["s3_stored_bytes"], usage["dynamodb_stored_bytes"] = raw_bytes, ddb_stored

    channels = 1 if args.model == "canonical" else 4
    expected_intervals = args.meters * 96 * channels
    scenario = Scenario(
        meters=args.meters,
        rtus=len(tenant.rtus),
        days_covered=1,
        interval_minutes=15,
    )
    prices = PriceTable.load(REPO / "bench" / "prices.yaml")
    lines = cost_lines(usage, prices, scenario)
    envelopes_per_s = done / wall_s
    intervals_per_s = intervals / wall_s
    items_per_s = items / wall_s
    result = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "scenario": {
            **asdict(scenario),
            "model": args.model,
            "channels": channels,
            "envelope_bytes": envelope_size,
        },
        "wall_s": round(wall_s, 2),
        "published_s": round(published_s, 2),
        "envelopes_done": done,
        "target_met": bool(wall_s <= 60 and done == len(messages)),
        "store": {
            "items": items,
            "intervals": intervals,
            "expected_intervals": expected_intervals,
            "sum_kwh": str(total),
            "expected_sum_kwh": str(expected_total),
            "matches": intervals == expected_intervals and (channels > 1 or total == expected_total),
        },
        "raw_archive": {"objects": raw_objects, "bytes": raw_bytes},
        "curate": {
            "drain_s_after_store": round(curate_s, 1),
            "parquet_objects": curated_objects,
            "rows": curated_rows,
        },
        "rates": {
            "envelopes_per_s": round(envelopes_per_s, 1),
            "intervals_per_s": round(intervals_per_s),
            "items_per_s": round(items_per_s),
            "raw_mosquitto_qos1_msg_per_s": round(publish_rate),
            "raw_moto_batch_write_items_per_s": round(batch_write_rate),
            "envelopes_vs_mosquitto": round(envelopes_per_s / publish_rate, 3),
            "items_vs_moto_batch_write": round(items_per_s / batch_write_rate, 3),
        },
        "bridge": {
            "invocations": stats.invocations,
            "records_failed": stats.records_failed,
            "invocation_errors": stats.invocation_errors,
            "forwarded": stats.forwarded,
            "held_back_waits": stats.held_back,
            "translate_batches": translate_batches,
        },
        "translate_phases_s": {k: round(v, 2) for k, v in sorted(phases.seconds.items())},
        "translate_phase_calls": phases.calls,
        "usage": usage,
        "cost": {
            "lines": [asdict(line) for line in lines],
            "run_usd": total_usd(lines),
            "per_meter_month_usd": per_meter_month(lines, scenario),
            "per_meter_month_measured_only_usd": per_meter_month([x for x in lines if x.measured], scenario),
            "prices": str(Path("bench") / "prices.yaml"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")

    print(
        f"\n{args.meters} meters x 1 day ({args.model}, {channels} channel(s)): {done}/{len(messages)} envelopes"
    )
    print(
        f"wall time {wall_s:.1f} s (publishing {published_s:.1f} s); target 60 s: {'met' if result['target_met'] else 'NOT met'}"
    )
    print(
        f"{envelopes_per_s:,.0f} envelopes/s = {envelopes_per_s / publish_rate:.0%} of raw mosquitto QoS1 ({publish_rate:,.0f}/s); "
        f"{items_per_s:,.0f} items/s = {items_per_s / batch_write_rate:.0%} of raw moto BatchWriteItem ({batch_write_rate:,.0f}/s); "
        f"{intervals_per_s:,.0f} intervals/s"
    )
    print(
        f"store: {items} items, {intervals} intervals (expected {expected_intervals}), matches: {result['store']['matches']}"
    )
    print(
        f"translate: {stats.invocations} invocations; time inside by port (s): {result['translate_phases_s']}"
    )
    print()
    print(format_table(lines, scenario))
    print(
        "cost per meter-month of the measured lines only (without the modelled IoT connectivity): "
        f"${result['cost']['per_meter_month_measured_only_usd']:.6f}"
    )
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
