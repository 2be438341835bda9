"""Webhook signatures (round trip, tampering, replay window), the retry schedule, delivery
messages and channel rules of `hemera.domain.notifications`."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.errors import (
    InvalidWebhookTarget,
    MalformedNotification,
    WebhookSignatureExpired,
    WebhookSignatureMalformed,
    WebhookSignatureMismatch,
)
from hemera.domain.notifications import (
    DEFAULT_TOLERANCE_S,
    MAX_DELAY_S,
    ChannelKind,
    Delivery,
    DeliveryChannel,
    RetryPolicy,
    alarm_notification,
    delivery_channels,
    export_notification,
    new_signing_secret,
    signature_header,
    tenant_topic_name,
    verify_signature,
    webhook_secret_name,
)

NOW = 1_790_000_000
bodies = st.binary(min_size=0, max_size=512)
secrets_ = st.text(min_size=1, max_size=64)


def transition(**overrides: object) -> AlarmTransition:
    at = datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
    values: dict[str, object] = {
        "transition_id": "tr-0001",
        "tenant_id": "sul-energia",
        "alarm_id": "al-7",
        "alarm_type": "demand_exceeded",
        "severity": "major",
        "subject": "meter",
        "subject_id": "poa-m-01",
        "state": "open",
        "previous_state": None,
        "at": at,
        "first_seen": at,
        "last_seen": at,
        "count": 1,
        "facts": {"measured_kw": "812.5", "contracted_kw": "750"},
    }
    values.update(overrides)
    return AlarmTransition(**values)  # type: ignore[arg-type]


# --- signatures ------------------------------------------------------------------------------
@given(secret=secrets_, body=bodies, timestamp=st.integers(min_value=0, max_value=2**40))
def test_a_signed_body_verifies_with_its_secret(secret: str, body: bytes, timestamp: int) -> None:
    header = signature_header(secret, timestamp, body)
    assert verify_signature(secret, header, body, now=timestamp) == timestamp


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    # An independent computation, as a receiver in another language would write it.
    body = b'{"tenant":"sul-energia"}'
    expected = hmac.new(b"whsec_k", b"1790000000." + body, hashlib.sha256).hexdigest()
    assert signature_header("whsec_k", NOW, body) == f"t=1790000000,v1={expected}"


@given(secret=secrets_, body=bodies.filter(bool), flip=st.integers(min_value=0, max_value=511))
def test_a_tampered_body_is_rejected(secret: str, body: bytes, flip: int) -> None:
    header = signature_header(secret, NOW, body)
    index = flip % len(body)
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(WebhookSignatureMismatch):
        verify_signature(secret, header, tampered, now=NOW)


def test_a_changed_timestamp_is_rejected() -> None:
    body = b'{"a":1}'
    signed = signature_header("s3cret", NOW, body)
    forged = signed.replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(WebhookSignatureMismatch):
        verify_signature("s3cret", forged, body, now=NOW)


def test_another_secret_does_not_verify_but_a_rotation_list_does() -> None:
    body = b"{}"
    header = signature_header("new-secret", NOW, body)
    with pytest.raises(WebhookSignatureMismatch):
        verify_signature("old-secret", header, body, now=NOW)
    assert verify_signature(["old-secret", "new-secret"], header, body, now=NOW) == NOW


@pytest.mark.parametrize("offset", [-DEFAULT_TOLERANCE_S - 1, DEFAULT_TOLERANCE_S + 1, 86_400])
def test_a_timestamp_outside_the_window_is_a_replay(offset: int) -> None:
    body = b'{"transition_id":"tr-1"}'
    header = signature_header("s", NOW, body)
    with pytest.raises(WebhookSignatureExpired):
        verify_signature("s", header, body, now=NOW + offset)


@pytest.mark.parametrize("offset", [-DEFAULT_TOLERANCE_S, 0, DEFAULT_TOLERANCE_S])
def test_a_timestamp_inside_the_window_is_accepted(offset: int) -> None:
    header = signature_header("s", NOW, b"x")
    assert verify_signature("s", header, b"x", now=NOW + offset) == NOW


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=123", "t=abc,v1=00", "garbage"])
def test_a_missing_or_malformed_header_is_rejected(header: str | None) -> None:
    with pytest.raises(WebhookSignatureMalformed):
        verify_signature("s", header, b"x", now=NOW)


def test_new_secrets_are_long_random_and_distinct() -> None:
    first, second = new_signing_secret(), new_signing_secret()
    assert first != second and first.startswith("whsec_") and len(first) >= 6 + 43


# --- retry schedule --------------------------------------------------------------------------
@given(delivery_id=st.text(min_size=1, max_size=40), attempts=st.integers(min_value=1, max_value=12))
def test_backoff_grows_exponentially_within_jitter_and_caps_at_900_s(delivery_id: str, attempts: int) -> None:
    policy = RetryPolicy(max_attempts=attempts, base_delay_s=30, jitter=0.2)
    schedule = policy.schedule(delivery_id)
    assert len(schedule) == attempts - 1  # a delay between each two attempts
    for n, delay in enumerate(schedule, start=1):
        nominal = 30 * 2 ** (n - 1)
        assert min(MAX_DELAY_S, round(nominal * 0.8)) <= delay <= min(MAX_DELAY_S, round(nominal * 1.2))
    assert schedule == sorted(schedule)  # ±20 % never reorders doublings
    assert policy.schedule(delivery_id) == schedule  # reproducible for one delivery


def test_default_policy_gives_up_after_six_attempts_within_about_half_an_hour() -> None:
    policy = RetryPolicy()
    schedule = policy.schedule("tr-1:webhook-abc")
    assert len(schedule) == 5 and not policy.gives_up_after(5) and policy.gives_up_after(6)
    # 30 s, 1, 2, 4, 8 minutes nominal: 930 s ± 20 %
    assert 0.8 * 930 <= sum(schedule) <= 1.2 * 930


def test_jitter_spreads_the_deliveries_of_one_receiver() -> None:
    policy = RetryPolicy(base_delay_s=60)
    first_delays = {policy.delay_after(1, f"tr-{n}:webhook-abc") for n in range(50)}
    assert len(first_delays) > 10


def test_no_delay_is_longer_than_sqs_allows() -> None:
    assert RetryPolicy(max_attempts=20, base_delay_s=900).schedule("x") == [MAX_DELAY_S] * 19
    with pytest.raises(ValueError):
        RetryPolicy(cap_s=901)


# --- notifications and delivery messages -------------------------------------------------------
def test_an_alarm_transition_becomes_a_notification_with_its_detail_as_body() -> None:
    detail = transition().detail()
    notification = alarm_notification("AlarmChanged", detail)
    assert notification.tenant_id == "sul-energia"
    assert notification.notification_id == "tr-0001"
    assert AlarmTransition.from_detail(__import__("json").loads(notification.body)) == transition()
    assert notification.subject == "Hemera major alarm demand_exceeded new->open: meter poa-m-01"
    assert notification.attributes["severity"] == "major"


def test_an_export_without_id_is_named_by_its_detail_so_a_repeat_is_the_same_notification() -> None:
    detail = {"tenant": "coastal-power", "formats": ["nem12"], "manifest_key": "tenants/coastal-power/x.json"}
    first = export_notification("ExportWritten", detail)
    again = export_notification("ExportWritten", dict(reversed(list(detail.items()))))
    assert first.notification_id == again.notification_id and first.notification_id.startswith("export-")
    with pytest.raises(MalformedNotification):
        export_notification("ExportWritten", {"formats": ["csv"]})


def test_a_restated_export_is_a_new_notification() -> None:
    # billing's `written_detail`: a restatement is a new version of the same export
    detail = {
        "tenant": "coastal-power",
        "export_id": "ex-2026-02",
        "version": 1,
        "formats": ["csv", "nem12"],
        "period_start": "2026-02-01",
        "period_end": "2026-03-01",
    }
    first = export_notification("ExportWritten", detail)
    restated = export_notification("ExportWritten", {**detail, "version": 2, "reason": "late data"})
    assert (first.notification_id, restated.notification_id) == ("ex-2026-02-v1", "ex-2026-02-v2")
    assert first.subject == "Hemera billing export written ex-2026-02-v1 csv,nem12 2026-02-01..2026-03-01"


def test_a_delivery_message_round_trips_and_counts_its_attempts() -> None:
    notification = alarm_notification("AlarmChanged", transition().detail())
    channel = DeliveryChannel(ChannelKind.WEBHOOK, "https://ops.example/hemera")
    delivery = Delivery(notification, channel)
    retry = delivery.next_attempt("HTTP 500")
    assert Delivery.from_message(retry.to_message()) == retry
    assert (retry.attempt, retry.last_error) == (2, "HTTP 500")
    assert retry.delivery_id == delivery.delivery_id == f"tr-0001:{channel.channel_id}"
    with pytest.raises(MalformedNotification):
        Delivery.from_message('{"schema": "other"}')


def test_every_tenant_gets_its_topic_and_each_distinct_webhook() -> None:
    channels = delivery_channels(
        "acme",
        [
            ("email", "ops@acme.example"),
            ("webhook", "https://a.example/h"),
            ("webhook", "https://a.example/h"),
            ("webhook", "http://127.0.0.1:8080/h"),
        ],
    )
    assert [(c.kind, c.target) for c in channels] == [
        (ChannelKind.TOPIC, "hemera-tenant-acme-notifications"),
        (ChannelKind.WEBHOOK, "https://a.example/h"),
        (ChannelKind.WEBHOOK, "http://127.0.0.1:8080/h"),
    ]
    assert len({c.channel_id for c in channels}) == 3


@pytest.mark.parametrize(
    "url", ["http://ops.example/h", "ftp://ops.example/h", "https://user:pw@ops.example/h", "not a url"]
)
def test_webhooks_must_be_https_except_to_a_local_receiver(url: str) -> None:
    with pytest.raises(InvalidWebhookTarget):
        delivery_channels("acme", [("webhook", url)])


def test_names_are_tenant_scoped_and_delimited() -> None:
    assert tenant_topic_name("acme") == "hemera-tenant-acme-notifications"
    assert webhook_secret_name("acme") == "hemera/tenants/acme/webhook-signing"
    assert not webhook_secret_name("acme-corp").startswith(webhook_secret_name("acme"))


def test_the_readme_verification_snippet_accepts_our_signatures_and_refuses_tampering() -> None:
    # The snippet receivers copy from the README (## Notifications) must agree with the signer.
    import re
    import time
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Notifications", 1)[1].split("\n## ", 1)[0]
    (snippet,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    namespace: dict[str, object] = {}
    exec(snippet, namespace)
    verify = namespace["verify"]
    body, now = b'{"transition_id":"tr-1"}', int(time.time())
    verify("whsec_k", signature_header("whsec_k", now, body), body)  # type: ignore[operator]
    with pytest.raises(ValueError):
        verify("whsec_k", signature_header("whsec_k", now, body), body + b" ")  # type: ignore[operator]
    with pytest.raises(ValueError):
        verify("whsec_k", signature_header("whsec_k", now - 301, body), body)  # type: ignore[operator]
