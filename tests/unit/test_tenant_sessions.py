"""Tenant-scoped sessions: each tenant's credentials come from AssumeRole with that tenant's
session policy, within STS's size limit, renewed before they expire, never shared by tenants."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hemera.adapters.tenant_credentials import (
    MAX_SESSION_POLICY_CHARS,
    SessionPolicyTooLarge,
    TenantSessions,
    portal_scope,
    scoped_policy,
)
from hemera.config import AwsTarget, RuntimeSettings
from hemera.domain.policies import tenant_object_prefixes

LONGEST_TENANT = "t" + "-x" * 31  # 63 characters, the longest id validate_id accepts
# Physical names as CloudFormation makes them (stack-construct-hash-suffix), at their longest.
READINGS = "HemeraCloud-StorageReadings0123ABCD-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
EXPORTS = "hemeracloud-storageexports0123abcd-0123456789abcdefghijklmnopqr"[:63]


def settings() -> RuntimeSettings:
    base = RuntimeSettings.local(AwsTarget(mode="local", endpoint_url="http://127.0.0.1:5000"))
    return base.model_copy(update={"readings_table": READINGS, "exports_bucket": EXPORTS})


class FakeSts:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def assume_role(self, **request):
        self.calls.append(request)
        n = len(self.calls)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{n:016d}",
                "SecretAccessKey": f"secret-{n}",
                "SessionToken": f"token-{n}",
                "Expiration": datetime(2026, 11, 22, 13, tzinfo=UTC) + timedelta(hours=n - 1),
            }
        }


def test_the_portals_policy_for_the_longest_tenant_id_fits_the_sts_limit():
    scope = portal_scope(settings(), "123456789012")
    tables, buckets = scope(LONGEST_TENANT)
    text = scoped_policy(LONGEST_TENANT, tables, buckets)
    assert len(text) <= MAX_SESSION_POLICY_CHARS
    policy = json.loads(text)
    items = policy["Statement"][0]
    assert items["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"T#{LONGEST_TENANT}#*"]}
    }
    assert items["Resource"] == [f"arn:aws:dynamodb:us-east-1:123456789012:table/{READINGS}"]
    assert policy["Statement"][1]["Resource"] == [f"arn:aws:s3:::{EXPORTS}/tenants/{LONGEST_TENANT}/*"]


def test_a_policy_over_the_sts_limit_is_refused_before_aws_would():
    # Every bucket with both prefixes is too much for one session policy: a function must scope
    # only what it touches.
    buckets = {
        f"arn:aws:s3:::{EXPORTS[:-1]}{i}": tenant_object_prefixes(LONGEST_TENANT, "curated/intervals/")
        for i in range(4)
    }
    with pytest.raises(SessionPolicyTooLarge):
        scoped_policy(LONGEST_TENANT, [f"arn:aws:dynamodb:us-east-1:123456789012:table/{READINGS}"], buckets)


def test_each_tenant_gets_its_own_session_reused_until_shortly_before_it_expires():
    sts, now = FakeSts(), [datetime(2026, 11, 22, 12, tzinfo=UTC)]
    sessions = TenantSessions(settings(), sts, portal_scope(settings(), "123456789012"), clock=lambda: now[0])
    acme, corp = sessions.credentials("acme"), sessions.credentials("acme-corp")
    # Then two AssumeRole calls, each with its own tenant's policy
    assert acme.access_key_id != corp.access_key_id
    policies = [json.loads(c["Policy"]) for c in sts.calls]
    assert [
        p["Statement"][0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] for p in policies
    ] == [
        ["T#acme#*"],
        ["T#acme-corp#*"],
    ]
    assert {c["RoleArn"] for c in sts.calls} == {settings().tenant_role_arn}
    # A later request of acme reuses its session …
    now[0] += timedelta(minutes=50)
    assert sessions.credentials("acme") == acme and len(sts.calls) == 2
    # … until 5 minutes before it expires
    now[0] += timedelta(minutes=6)
    renewed = sessions.credentials("acme")
    assert renewed != acme and len(sts.calls) == 3


def test_scoped_settings_carry_the_tenants_credentials_and_nothing_else_changes():
    sessions = TenantSessions(settings(), FakeSts(), portal_scope(settings(), "123456789012"))
    scoped = sessions.settings_for("acme")
    assert scoped.aws.credentials is not None and scoped.aws.credentials.tenant_id == "acme"
    assert scoped.model_copy(update={"aws": settings().aws}) == settings()
    # and the environment a child process gets never carries the session
    assert not any("ASIA" in v for v in scoped.environ().values())
