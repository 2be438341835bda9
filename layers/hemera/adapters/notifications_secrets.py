"""Webhook signing secrets in AWS Secrets Manager, one per tenant (`webhook_secret_name`).

The secret is created by `hemera tenant apply` (shown once to the operator), read by the deliver
function (cached a few minutes, so a rotation reaches warm functions soon) and deleted, without
recovery window, by `hemera tenant offboard`. It is never in the tenant file or in DynamoDB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from hemera.domain.notifications import new_signing_secret, webhook_secret_name
from hemera.domain.tenancy import TenantContext


class SecretsManagerSigningSecrets:
    def __init__(
        self, secretsmanager: Any, cache_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._sm = secretsmanager
        self._cache_s = cache_s
        self._clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def current(self, ctx: TenantContext) -> str | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(ctx.tenant_id)
        if cached is not None and now - cached[0] < self._cache_s:
            return cached[1]
        try:
            value: str | None = str(
                self._sm.get_secret_value(SecretId=webhook_secret_name(ctx.tenant_id))["SecretString"]
            )
        except self._sm.exceptions.ResourceNotFoundException:
            value = None
        with self._lock:
            self._cache[ctx.tenant_id] = (now, value)
        return value

    # --- tenant apply / offboard ----------------------------------------------------------------
    def exists(self, ctx: TenantContext) -> bool:
        try:
            self._sm.describe_secret(SecretId=webhook_secret_name(ctx.tenant_id))
        except self._sm.exceptions.ResourceNotFoundException:
            return False
        return True

    def create(self, ctx: TenantContext) -> str | None:
        """A new secret for the tenant, returned once; None (nothing changed) if it has one."""
        if self.exists(ctx):
            return None
        secret = new_signing_secret()
        self._sm.create_secret(
            Name=webhook_secret_name(ctx.tenant_id),
            Description=f"Hemera webhook signing secret of tenant {ctx.tenant_id}",
            SecretString=secret,
            Tags=[{"Key": "tenant", "Value": ctx.tenant_id}],
        )
        return secret

    def delete(self, ctx: TenantContext) -> bool:
        if not self.exists(ctx):
            return False
        self._sm.delete_secret(SecretId=webhook_secret_name(ctx.tenant_id), ForceDeleteWithoutRecovery=True)
        with self._lock:
            self._cache.pop(ctx.tenant_id, None)
        return True
