"""Tenant context and the tenant-first keys built from it.

Every DynamoDB key, S3 prefix and MQTT topic starts with the tenant and ends that segment with a
delimiter, so that no prefix match on `acme` can ever reach `acme-corp` (see REFERENCE.md, tenant
isolation pitfalls). Keys are only built from a `TenantContext`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from hemera.domain.errors import InvalidTenantId

# Lower-case letters, digits and single hyphens; no '#', '/', ':' or '*' so ids can be embedded in
# keys, prefixes, topics and IoT thing names without escaping.
_ID = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,62}$")


def validate_id(value: str, what: str = "id") -> str:
    """Return `value` if it is a valid tenant/device/meter id, else raise `InvalidTenantId`."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidTenantId(f"{what} {value!r} must be 1-63 lower-case letters, digits or single hyphens")
    return value


@dataclass(frozen=True, slots=True)
class TenantContext:
    """Who the current work is for. Repositories take one and cannot build a key without it."""

    tenant_id: str
    correlation_id: str = ""

    def __post_init__(self) -> None:
        validate_id(self.tenant_id, "tenant")

    @property
    def key_prefix(self) -> str:
        return f"T#{self.tenant_id}#"

    def tenant_pk(self) -> str:
        return f"{self.key_prefix}TENANT"

    def meter_pk(self, meter_id: str) -> str:
        return f"{self.key_prefix}M#{validate_id(meter_id, 'meter')}"

    def customer_pk(self, customer_id: str) -> str:
        return f"{self.key_prefix}C#{validate_id(customer_id, 'customer')}"

    def index_pk(self) -> str:
        """The tenant's listing partition: one small item per customer and meter (no GSI needed)."""
        return f"{self.key_prefix}INDEX"

    def device_pk(self, device_id: str) -> str:
        return f"{self.key_prefix}D#{validate_id(device_id, 'device')}"

    def s3_prefix(self, area: str) -> str:
        """Object prefix of one area (raw, quarantine, exports) of this tenant, ending in '/'."""
        return f"tenants/{self.tenant_id}/{area}/"

    def device_topic_root(self, device_id: str) -> str:
        return f"hemera/{self.tenant_id}/{validate_id(device_id, 'device')}/"


def series_sk(channel: str, day: date) -> str:
    """Sort key of one meter-channel-day item (the day is a UTC calendar day)."""
    return f"LP#{channel}#{day.isoformat()}"


def series_sk_prefix(channel: str) -> str:
    return f"LP#{channel}#"


META_SK = "META"
# The platform's list of tenants (one item per tenant: pk TENANTS_PK, sk `T#<tenant>#`), for the
# scheduled sweeps that visit every tenant. Not under a tenant's prefix, so offboarding deletes it
# by name.
TENANTS_PK = "PLATFORM#TENANTS"


def tenant_listing_sk(tenant_id: str) -> str:
    return TenantContext(tenant_id).key_prefix


def thing_name(tenant_id: str, device_id: str) -> str:
    """IoT thing name / MQTT client id / certificate CN of a device: unique across tenants."""
    return f"{validate_id(tenant_id, 'tenant')}:{validate_id(device_id, 'device')}"


def parse_device_topic(topic: str) -> tuple[str, str, str]:
    """Split `hemera/<tenant>/<device>/<rest>` into (tenant, device, rest); ValueError otherwise."""
    parts = topic.split("/", 3)
    if len(parts) != 4 or parts[0] != "hemera":
        raise ValueError(f"not a device topic: {topic!r}")
    return validate_id(parts[1], "tenant"), validate_id(parts[2], "device"), parts[3]


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching (MQTT 5.0 §4.7): `+` matches one level, `#` the rest."""
    filter_levels, topic_levels = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True
        if i >= len(topic_levels) or (level != "+" and level != topic_levels[i]):
            return False
    return len(filter_levels) == len(topic_levels)
