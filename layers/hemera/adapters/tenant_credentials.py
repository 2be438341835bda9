"""Tenant-scoped sessions: a function acting for one tenant assumes the tenant data role with that
tenant's session policy (`hemera.domain.policies.session_policy`), so IAM — not only our key
building — keeps it inside the tenant's items (`dynamodb:LeadingKeys` `T#<tenant>#*`) and objects
(`tenants/<tenant>/…`).

Credentials are cached per tenant and renewed a few minutes before they expire. A Lambda role
assuming another role is role chaining, which AWS caps at one hour, so sessions last an hour.
STS limits a session policy's plain text to 2,048 characters: `scoped_policy` refuses a longer
one here, before AWS would (and the unit tests hold the portal's policy to it for the longest
tenant id and CloudFormation-length resource names).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hemera.config import RuntimeSettings, ScopedCredentials
from hemera.domain.policies import session_policy
from hemera.domain.tenancy import validate_id

SESSION_SECONDS = 3600  # the role-chaining maximum
RENEW_BEFORE = timedelta(minutes=5)
MAX_SESSION_POLICY_CHARS = 2048  # STS: plain text of inline + managed session policies


class SessionPolicyTooLarge(ValueError):
    """A session policy STS would refuse: fewer resources must be scoped per function."""


def scoped_policy(
    tenant_id: str, table_arns: Sequence[str], bucket_prefixes: Mapping[str, Sequence[str]]
) -> str:
    """The tenant's session policy as the compact JSON STS receives (within its size limit)."""
    text = json.dumps(session_policy(tenant_id, table_arns, bucket_prefixes), separators=(",", ":"))
    if len(text) > MAX_SESSION_POLICY_CHARS:
        raise SessionPolicyTooLarge(
            f"session policy of {tenant_id} is {len(text)} characters; STS allows {MAX_SESSION_POLICY_CHARS}"
        )
    return text


# What a function's tenant sessions may reach: (table ARNs, bucket ARN → the tenant's prefixes).
Scope = Callable[[str], tuple[Sequence[str], Mapping[str, Sequence[str]]]]


class TenantSessions:
    """Scoped settings per tenant: `settings_for(tenant)` is `settings` whose AWS target carries
    the tenant's temporary credentials, so every client and table wiring builds from it is
    confined to that tenant."""

    def __init__(
        self,
        settings: RuntimeSettings,
        sts: Any,
        scope: Scope,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if settings.tenant_role_arn is None:
            raise ValueError("tenant sessions need the tenant data role (HEMERA_TENANT_ROLE_ARN)")
        self._settings, self._sts, self._scope, self._clock = settings, sts, scope, clock
        self._role_arn = settings.tenant_role_arn
        self._cached: dict[str, ScopedCredentials] = {}
        self._lock = threading.Lock()

    def credentials(self, tenant_id: str) -> ScopedCredentials:
        validate_id(tenant_id, "tenant")
        with self._lock:
            current = self._cached.get(tenant_id)
            if current is None or current.expires_at - RENEW_BEFORE <= self._clock():
                current = self._assume(tenant_id)
                self._cached[tenant_id] = current
            return current

    def _assume(self, tenant_id: str) -> ScopedCredentials:
        tables, buckets = self._scope(tenant_id)
        answer = self._sts.assume_role(
            RoleArn=self._role_arn,
            RoleSessionName=f"hemera-{tenant_id}"[:64],
            Policy=scoped_policy(tenant_id, tables, buckets),
            DurationSeconds=SESSION_SECONDS,
        )
        creds = answer["Credentials"]
        expires = creds["Expiration"]
        if isinstance(expires, str):
            expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
        return ScopedCredentials(
            tenant_id=tenant_id,
            access_key_id=creds["AccessKeyId"],
            secret_access_key=creds["SecretAccessKey"],
            session_token=creds["SessionToken"],
            expires_at=expires.astimezone(UTC),
        )

    def settings_for(self, tenant_id: str) -> RuntimeSettings:
        scoped = self._settings.aws.model_copy(update={"credentials": self.credentials(tenant_id)})
        return self._settings.model_copy(update={"aws": scoped})


def portal_scope(settings: RuntimeSettings, account: str, partition: str = "aws") -> Scope:
    """What the portal API touches for a tenant: its items in the readings table and its objects
    in the exports bucket (downloads are pre-signed with the tenant's session). The other buckets
    stay out of the portal's policy (and keep it far below the size limit)."""
    table = f"arn:{partition}:dynamodb:{settings.aws.region}:{account}:table/{settings.readings_table}"
    exports = f"arn:{partition}:s3:::{settings.exports_bucket}"

    def scope(tenant_id: str) -> tuple[Sequence[str], Mapping[str, Sequence[str]]]:
        return [table], {exports: [f"tenants/{validate_id(tenant_id, 'tenant')}/"]}

    return scope
