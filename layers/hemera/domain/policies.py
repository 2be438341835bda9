"""Tenant-scoped policy documents, generated in one place.

Two kinds of document keep one tenant's callers inside that tenant:
- the STS *session policy* a function assumes for one tenant: DynamoDB only on items whose
  partition key starts `T#<tenant>#` (`dynamodb:LeadingKeys`), S3 only under the tenant's object
  prefixes (and ListBucket only with an `s3:prefix` condition on them);
- the *IoT policy* of a device: it connects only as its own thing (client id = thing name, with
  its certificate attached to that thing) and uses only `hemera/<tenant>/<device>/…`, the device
  part taken from the thing's registry attribute by an IoT policy variable.

Every tenant segment ends with its delimiter (`#`, `/`) before any wildcard, so a document for
`acme` never matches `acme-corp`. The functions are pure: the CDK app, `hemera tenant apply` and
the tests all call them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hemera.domain.tenancy import TenantContext, validate_id

POLICY_VERSION = "2012-10-17"
# MQTT topics of a device: `hemera/<tenant>/<device>/...`; the thing name is `<tenant>:<device>`
# and the thing carries both parts as attributes, which the IoT policy reads as policy variables.
DEVICE_TOPIC_ROOT = "hemera"
DEVICE_TENANT_ATTRIBUTE = "tenant"
DEVICE_ID_ATTRIBUTE = "device"
# IoT policy variables: resolved by IoT Core per connection from the device's registry entry.
THING_NAME = "${iot:Connection.Thing.ThingName}"
THING_TENANT = f"${{iot:Connection.Thing.Attributes[{DEVICE_TENANT_ATTRIBUTE}]}}"
THING_DEVICE = f"${{iot:Connection.Thing.Attributes[{DEVICE_ID_ATTRIBUTE}]}}"

# What a tenant-scoped function may do with its tenant's items and objects.
TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
)
OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")

# Builds the ARN of an IoT resource (`client`, `topic`, `topicfilter`) from its type and name;
# the CDK app passes `Stack.format_arn`, plain callers `iot_arn_builder(region, account)`.
IotArn = Callable[[str, str], str]


def iot_arn_builder(region: str, account: str, partition: str = "aws") -> IotArn:
    """An `IotArn` for one account and region (`arn:aws:iot:<region>:<account>:<type>/<name>`)."""

    def arn(resource_type: str, name: str) -> str:
        return f"arn:{partition}:iot:{region}:{account}:{resource_type}/{name}"

    return arn


def device_topic_prefix(tenant_segment: str = THING_TENANT) -> str:
    """`hemera/<tenant>/<device>/` with the device taken from the thing's attribute; the tenant is
    a literal id (a tenant's policy) or the thing's tenant attribute (the platform-wide policy)."""
    return f"{DEVICE_TOPIC_ROOT}/{tenant_segment}/{THING_DEVICE}/"


def device_policy(iot_arn: IotArn, tenant_id: str | None = None) -> dict[str, Any]:
    """The IoT policy of a device: connect only as its own attached thing, publish, receive and
    subscribe only under its own topic prefix.

    With `tenant_id` the document is that tenant's policy (`hemera tenant apply`): the tenant is a
    literal in every topic, and a connection is only allowed when the thing's tenant attribute
    names that tenant. Without it, the tenant comes from the thing's attribute (the CDK app's
    platform-wide policy)."""
    tenant_segment = THING_TENANT if tenant_id is None else validate_id(tenant_id, "tenant")
    prefix = device_topic_prefix(tenant_segment)
    # The thing-name variable is only trustworthy for a certificate attached to that thing.
    condition: dict[str, dict[str, str]] = {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}
    if tenant_id is not None:
        condition["StringEquals"] = {f"iot:Connection.Thing.Attributes[{DEVICE_TENANT_ATTRIBUTE}]": tenant_id}
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "ConnectAsOwnThing",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": iot_arn("client", THING_NAME),
                "Condition": condition,
            },
            {
                "Sid": "PublishAndReceiveOwnTopics",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": iot_arn("topic", f"{prefix}*"),
            },
            {
                "Sid": "SubscribeOwnTopics",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": iot_arn("topicfilter", f"{prefix}*"),
            },
        ],
    }


def tenant_iot_policy_name(tenant_id: str) -> str:
    """Name of a tenant's IoT policy (one per tenant, attached to each of its certificates)."""
    return f"hemera-tenant-{validate_id(tenant_id, 'tenant')}-devices"


def tenant_object_prefixes(tenant_id: str, curated_prefix: str) -> tuple[str, ...]:
    """Every object prefix that holds the tenant's data in the platform buckets: `tenants/<t>/`
    (raw archive, quarantine, exports) and the curated dataset's Hive partition `tenant=<t>/`."""
    ctx = TenantContext(tenant_id)
    return (f"tenants/{ctx.tenant_id}/", f"{curated_prefix}tenant={ctx.tenant_id}/")


def session_policy(
    tenant_id: str, table_arns: Sequence[str], bucket_prefixes: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The STS session policy of a function acting for one tenant (AssumeRole `Policy`).

    `table_arns`: tables keyed tenant-first (`T#<tenant>#…`); `bucket_prefixes`: bucket ARN →
    the tenant's object prefixes in it (each ending in '/', see `tenant_object_prefixes`)."""
    ctx = TenantContext(tenant_id)
    for prefixes in bucket_prefixes.values():
        for prefix in prefixes:
            if not prefix.endswith("/") or f"{ctx.tenant_id}/" not in prefix:
                raise ValueError(f"object prefix {prefix!r} is not delimited by tenant {ctx.tenant_id}")
    statements: list[dict[str, Any]] = []
    if table_arns:
        statements.append(
            {
                "Sid": "TenantItems",
                "Effect": "Allow",
                "Action": list(TABLE_ACTIONS),
                "Resource": list(table_arns),
                "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{ctx.key_prefix}*"]}},
            }
        )
    buckets = [arn for arn, prefixes in bucket_prefixes.items() if prefixes]
    if buckets:
        statements.append(
            {
                "Sid": "TenantObjects",
                "Effect": "Allow",
                "Action": list(OBJECT_ACTIONS),
                "Resource": [f"{arn}/{p}*" for arn in buckets for p in bucket_prefixes[arn]],
            }
        )
        statements.extend(
            {
                "Sid": f"ListTenantObjects{index}",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in bucket_prefixes[arn]]}},
            }
            for index, arn in enumerate(buckets)
        )
    return {"Version": POLICY_VERSION, "Statement": statements}
