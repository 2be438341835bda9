"""Fault injection on the local cloud: 10 % of the translate function's invocations raise (half
before doing anything, half after storing everything), 5 % of the envelopes are published twice,
and the broker restarts mid-run — the store ends exactly equal to what the meters sent (count
and checksum), with nothing quarantined and nothing in the DLQ."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from hemera import aws
from hemera.definitions import TELEMETRY_QUEUE, TRANSLATE_FUNCTION
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.wiring import ingest_ports
from hemera_local.bridge import load_handler
from tests.builders import hx300_envelope
from tests.integration.conftest import eventually, run
from tests.integration.test_bad_input_and_isolation import broker, publish_all

pytestmark = pytest.mark.integration

METERS = [
    ("sul-energia", "rtu-poa-01", "sul-m-1001"),
    ("sul-energia", "rtu-poa-01", "sul-m-1002"),
    ("coastal-power", "rtu-syd-01", "cp-m-2001"),
    ("coastal-power", "rtu-syd-01", "cp-m-2002"),
]
FIRST = datetime(2026, 6, 1, tzinfo=UTC)
DAYS, PER_ENVELOPE = 5, 24  # 4 envelopes a meter-day: 80 envelopes, 1,920 quarter hours
WAVE = 4  # envelopes published together


class FaultyTranslate:
    """The real translate handler, but every 10th invocation raises: alternately before it does
    anything and after it has stored everything (SQS then delivers the whole batch again).

    A batch holding a message on its last allowed receive is never failed: a message in the DLQ
    would be a loss the test cannot tell apart from a bug, and the DLQ path has its own test.
    """

    def __init__(self) -> None:
        self.invocations = 0
        self.raised_before = 0
        self.raised_after = 0

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.invocations += 1
        last_chance = any(
            int(r["attributes"].get("ApproximateReceiveCount", "1")) >= TELEMETRY_QUEUE.max_receive_count
            for r in event["Records"]
        )
        fault = self.invocations % 10 == 1 and not last_chance
        before = fault and (self.raised_before + self.raised_after) % 2 == 0
        if before:
            self.raised_before += 1
            raise RuntimeError("injected fault before processing")
        response = load_handler(TRANSLATE_FUNCTION)(event, context)
        if fault:
            self.raised_after += 1
            raise RuntimeError("injected fault after processing")
        return response


def wh(meter: str, i: int) -> int:
    return 100 + (int(hashlib.sha256(f"{meter}/{i}".encode()).hexdigest()[:6], 16) % 9000)


def envelopes() -> list[tuple[str, str, str, bytes]]:
    out = []
    seq = 0
    for tenant, device, meter in METERS:
        for chunk in range(DAYS * 96 // PER_ENVELOPE):
            start = FIRST + timedelta(minutes=15 * PER_ENVELOPE * chunk)
            values = [wh(meter, chunk * PER_ENVELOPE + k) for k in range(PER_ENVELOPE)]
            seq += 1
            body = hx300_envelope(tenant, device, meter, start, values, seq=seq).to_json()
            out.append((tenant, device, meter, body))
    return out


def checksum(rows: list[tuple[str, datetime, Decimal]]) -> str:
    """sha256 over (meter, start, Wh) in order: equal values hash equally whatever their notation."""
    lines = (f"{m}|{s.isoformat()}|{int(v * 1000)}" for m, s, v in sorted(rows))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_retries_duplicates_and_a_broker_restart_leave_exactly_the_sent_data(local_cloud):
    faulty = FaultyTranslate()
    cloud = local_cloud
    quarantine = ingest_ports(cloud.settings).quarantine
    quarantined_before = {r.key for t in ("sul-energia", "coastal-power") for r in quarantine.list(t)}
    expected = [
        (meter, FIRST + timedelta(minutes=15 * i), Decimal(wh(meter, i)) / 1000)
        for _, _, meter in METERS
        for i in range(DAYS * 96)
    ]
    real = cloud.bridge.replace_handler(TRANSLATE_FUNCTION.name, faulty)
    try:
        # Given 80 envelopes, every 20th published twice (5 %)
        messages = envelopes()
        plan = [m for i, m in enumerate(messages) for _ in range(2 if i % 20 == 0 else 1)]
        half = len(plan) // 2

        def publish_once(part: list[tuple[str, str, str, bytes]]) -> None:
            for tenant, device in {(t, d) for t, d, _, _ in part}:
                mine = [
                    (f"hemera/{tenant}/{device}/up/telemetry", b)
                    for t, d, _, b in part
                    if (t, d) == (tenant, device)
                ]
                assert run(publish_all(broker(cloud, tenant, device), f"{tenant}:{device}", mine)) == [
                    "acked"
                ] * len(mine)

        def publish(part: list[tuple[str, str, str, bytes]]) -> None:
            # In waves a batching window apart, so translate runs many (small) batches, as it would
            # for a fleet whose RTUs report at different moments; every 10th invocation fails.
            for start in range(0, len(part), WAVE):
                publish_once(part[start : start + WAVE])
                time.sleep(TELEMETRY_QUEUE.batch_window_s + 0.2)

        # When half is published, the broker restarts, and the rest follows once the bridge is back
        publish(plan[:half])
        before = cloud.bridge.stats.resubscriptions
        cloud.broker.stop()
        cloud.broker.start()
        assert (
            eventually(lambda: cloud.bridge.stats.resubscriptions, lambda n: n > before, timeout_s=30)
            > before
        )
        publish(plan[half:])

        store = ingest_ports(cloud.settings).store

        def stored() -> list[tuple[str, datetime, Decimal]]:
            rows = []
            for tenant, _, meter in METERS:
                rows += [
                    (meter, r.start, r.value)
                    for r in store.load_profile(
                        TenantContext(tenant),
                        meter,
                        Channel.ACTIVE_IMPORT,
                        FIRST,
                        FIRST + timedelta(days=DAYS),
                    )
                ]
            return rows

        sqs = aws.client(cloud.target, "sqs")

        def queues_empty() -> bool:
            total = 0
            for url in (sqs.get_queue_url(QueueName=n)["QueueUrl"] for n in (TELEMETRY_QUEUE.local_name,)):
                attrs = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                total += int(attrs["ApproximateNumberOfMessages"]) + int(
                    attrs["ApproximateNumberOfMessagesNotVisible"]
                )
            return total == 0

        rows = eventually(stored, lambda r: len(r) >= len(expected) and queues_empty(), timeout_s=120)
        dlq = sqs.get_queue_url(QueueName=TELEMETRY_QUEUE.dlq_local_name)["QueueUrl"]
        in_dlq = int(
            sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
        quarantined = [
            r
            for t in ("sul-energia", "coastal-power")
            for r in quarantine.list(t)
            if r.key not in quarantined_before
        ]
    finally:
        cloud.bridge.replace_handler(TRANSLATE_FUNCTION.name, real)

    # Then the store holds exactly what was sent, once
    assert len(rows) == len(expected) == 4 * DAYS * 96
    assert checksum(rows) == checksum(expected)
    assert sum(v for _, _, v in rows) == sum(v for _, _, v in expected)
    assert quarantined == [] and in_dlq == 0
    # and the faults really happened
    assert faulty.raised_before >= 1 and faulty.raised_after >= 1, vars(faulty)
    print(f"translate invocations {faulty.invocations}, injected faults {vars(faulty)}")
    assert len(plan) - len(messages) == 4
