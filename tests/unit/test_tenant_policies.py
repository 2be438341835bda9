"""The generated policy documents keep a tenant inside its own keys, prefixes and topics."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from hemera.domain.policies import (
    THING_DEVICE,
    device_policy,
    iot_arn_builder,
    session_policy,
    tenant_iot_policy_name,
    tenant_object_prefixes,
)

ARN = iot_arn_builder("us-east-1", "123456789012")
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/hemera-readings"
BUCKETS = ("arn:aws:s3:::hemera-raw", "arn:aws:s3:::hemera-curated")


def _session(tenant: str) -> dict[str, Any]:
    prefixes = tenant_object_prefixes(tenant, "curated/intervals/")
    return session_policy(tenant, [TABLE], {bucket: prefixes for bucket in BUCKETS})


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    assert document["Version"] == "2012-10-17"
    json.loads(json.dumps(document))  # plain JSON, no objects
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Action"] and statement["Resource"]
    return list(document["Statement"])


def _patterns(document: dict[str, Any]) -> list[str]:
    """Every resource and condition value: what a request is matched against."""
    values: list[str] = []
    for statement in document["Statement"]:
        resources = statement["Resource"]
        values += [resources] if isinstance(resources, str) else resources
        for operator in statement.get("Condition", {}).values():
            for value in operator.values():
                values += [value] if isinstance(value, str) else value
    return values


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def test_session_policy_scopes_items_and_objects_to_the_tenant():
    # Given the session policy of acme
    document = _session("acme")
    statements = _statements(document)
    items = next(s for s in statements if s["Sid"] == "TenantItems")
    # Then its items are those whose partition key starts T#acme#
    assert items["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["T#acme#*"]}}
    objects = next(s for s in statements if s["Sid"] == "TenantObjects")
    assert "arn:aws:s3:::hemera-raw/tenants/acme/*" in objects["Resource"]
    assert "arn:aws:s3:::hemera-curated/curated/intervals/tenant=acme/*" in objects["Resource"]
    listing = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert {s["Resource"] for s in listing} == set(BUCKETS)
    assert all("tenants/acme/*" in s["Condition"]["StringLike"]["s3:prefix"] for s in listing)


@pytest.mark.parametrize(
    "foreign",
    [
        "T#acme-corp#M#m-1",
        "arn:aws:s3:::hemera-raw/tenants/acme-corp/raw/x.jsonl.gz",
        "arn:aws:s3:::hemera-curated/curated/intervals/tenant=acme-corp/date=2026-01-01/a.parquet",
        "tenants/acme-corp/raw/",
    ],
)
def test_acme_documents_never_match_acme_corp(foreign):
    patterns = _patterns(_session("acme")) + _patterns(device_policy(ARN, "acme"))
    assert not any(_matches(p, foreign) for p in patterns)
    # while the same resource of acme is matched
    own = foreign.replace("acme-corp", "acme")
    assert any(_matches(p, own) for p in _patterns(_session("acme")))


def test_acme_device_policy_never_reaches_acme_corp_topics():
    patterns = _patterns(device_policy(ARN, "acme"))
    device = "rtu-1"  # what IoT Core substitutes for the device attribute
    resolved = [p.replace(THING_DEVICE, device) for p in patterns]
    assert any(_matches(p, ARN("topic", "hemera/acme/rtu-1/up/telemetry")) for p in resolved)
    assert not any(_matches(p, ARN("topic", "hemera/acme-corp/rtu-1/up/telemetry")) for p in resolved)
    assert not any(_matches(p, ARN("topic", "hemera/acme/rtu-2/up/telemetry")) for p in resolved)


@pytest.mark.parametrize("tenant", ["acme", "acme-corp", "sul-energia"])
def test_no_generated_document_holds_a_cross_tenant_wildcard(tenant):
    for document in (_session(tenant), device_policy(ARN, tenant), device_policy(ARN)):
        _statements(document)
        text = json.dumps(document)
        for forbidden in ("T#*", "tenants/*", "tenant=*", "hemera/+/", "hemera/*", "hemera/#", '"*"'):
            assert forbidden not in text, (forbidden, text)


def test_device_policy_connects_only_as_its_own_attached_thing_of_its_tenant():
    (connect, publish, subscribe) = _statements(device_policy(ARN, "acme"))
    assert connect["Action"] == "iot:Connect"
    assert connect["Resource"] == ARN("client", "${iot:Connection.Thing.ThingName}")
    assert connect["Condition"]["Bool"] == {"iot:Connection.Thing.IsAttached": "true"}
    assert connect["Condition"]["StringEquals"] == {"iot:Connection.Thing.Attributes[tenant]": "acme"}
    prefix = "hemera/acme/${iot:Connection.Thing.Attributes[device]}/*"
    assert publish["Resource"] == ARN("topic", prefix)
    assert set(publish["Action"]) == {"iot:Publish", "iot:Receive"}
    assert subscribe == {**subscribe, "Action": "iot:Subscribe", "Resource": ARN("topicfilter", prefix)}


def test_a_prefix_not_delimited_by_the_tenant_is_refused():
    with pytest.raises(ValueError, match="not delimited"):
        session_policy("acme", [TABLE], {BUCKETS[0]: ["tenants/"]})


def test_ids_that_could_break_a_pattern_are_refused():
    for bad in ("acme*", "acme/x", "ac#me", ""):
        with pytest.raises(ValueError):
            tenant_iot_policy_name(bad)
        with pytest.raises(ValueError):
            _session(bad)
