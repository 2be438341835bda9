"""The shared definitions and the local rules bridge apply the same rule."""

import json

import pytest

from hemera.definitions import TELEMETRY_RULE, TOPIC_RULES, TRANSLATE_FUNCTION, ScheduleDef
from hemera.domain.errors import MalformedEnvelope
from hemera.domain.tenancy import topic_matches
from hemera.services.ingest import unwrap_rule_message
from hemera_local.bridge import apply_rule, sqs_event
from hemera_local.scheduler import LocalScheduler


def test_the_rule_sql_wraps_payload_and_topic():
    assert TELEMETRY_RULE.sql == (
        "SELECT encode(*, 'base64') AS payload, topic() AS mqtt_topic FROM 'hemera/+/+/up/telemetry'"
    )


@pytest.mark.parametrize(
    ("flt", "topic", "expected"),
    [
        ("hemera/+/+/up/telemetry", "hemera/acme/rtu-1/up/telemetry", True),
        ("hemera/+/+/up/telemetry", "hemera/acme/rtu-1/up/events", False),
        ("hemera/+/+/up/telemetry", "hemera/acme/up/telemetry", False),
        ("hemera/+/+/up/#", "hemera/acme/rtu-1/up/a/b", True),
        ("hemera/acme/#", "hemera/acme-corp/rtu-1/up", False),
    ],
)
def test_topic_filters_match_like_mqtt(flt, topic, expected):
    assert topic_matches(flt, topic) is expected


@pytest.mark.parametrize("payload", [b'{"a": 1}', b"not json", bytes(range(256))])
def test_what_the_bridge_sends_the_handler_unwraps_byte_for_byte(payload):
    from datetime import UTC, datetime

    body = apply_rule(TELEMETRY_RULE, "hemera/acme/rtu-1/up/telemetry", payload)
    message = unwrap_rule_message("id-1", body, datetime.now(UTC), "payload", "mqtt_topic")
    assert (message.payload, message.topic) == (payload, "hemera/acme/rtu-1/up/telemetry")


@pytest.mark.parametrize("body", ["{}", "[]", "x", json.dumps({"payload": "!!", "mqtt_topic": "t"})])
def test_a_body_that_did_not_come_through_the_rule_is_rejected(body):
    from datetime import UTC, datetime

    with pytest.raises(MalformedEnvelope):
        unwrap_rule_message("id-1", body, datetime.now(UTC), "payload", "mqtt_topic")


def test_sqs_event_has_lambdas_shape():
    event = sqs_event(
        [{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "b", "Attributes": {"SentTimestamp": "1"}}],
        "arn:aws:sqs:us-east-1:000000000000:q",
        "us-east-1",
    )
    record = event["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert (record["messageId"], record["body"], record["attributes"]["SentTimestamp"]) == ("m1", "b", "1")


def test_every_rule_targets_a_queue_and_a_function():
    assert {r.queue.local_name for r in TOPIC_RULES} == {"hemera-telemetry", "hemera-command-acks"}
    assert all(r.function.module_file.endswith(".py") for r in TOPIC_RULES)


def test_the_scheduler_fires_at_the_rate_divided_by_the_speed():
    now = [0.0]
    fired = []
    schedule = ScheduleDef(name="nightly", rate_minutes=60, function=TRANSLATE_FUNCTION, payload={"job": "x"})
    scheduler = LocalScheduler([schedule], lambda s, e: fired.append(e), speed=60.0, clock=lambda: now[0])
    assert scheduler.tick() == []  # first run is one period (60 min / 60 = 60 s) in
    now[0] = 59.9
    assert scheduler.tick() == []
    now[0] = 60.0
    assert scheduler.tick() == ["nightly"]
    now[0] = 180.0
    assert scheduler.tick() == ["nightly"]  # catches up one period per tick, never a burst
    # the schedule's payload, as EventBridge gives a target with an input (the CDK app's rule)
    assert fired[0] == {"job": "x"}
    assert schedule.expression == "rate(60 minutes)"


def test_a_failing_job_is_counted_and_the_other_schedules_keep_firing():
    now = [0.0]
    fired = []

    def invoke(schedule, event):
        if schedule.name == "broken":
            raise KeyError("Records")
        fired.append(schedule.name)

    broken = ScheduleDef(name="broken", rate_minutes=1, function=TRANSLATE_FUNCTION, payload={"job": "b"})
    healthy = ScheduleDef(name="healthy", rate_minutes=1, function=TRANSLATE_FUNCTION, payload={"job": "h"})
    scheduler = LocalScheduler([broken, healthy], invoke, speed=60.0, clock=lambda: now[0])
    for second in (0.0, 1.0, 2.0, 3.0):  # the first run is one period (1 s) in
        now[0] = second
        scheduler.tick()
    assert fired == ["healthy"] * 3
    assert scheduler.failed == {"broken": 3, "healthy": 0}
