"""The settings a request's data access is built from: the tenant-scoped session of the caller's
tenant once `portal_route` has resolved the caller, the function's own settings before that
(authentication: API keys, consents, the Cognito keys) and where no tenant data role is set.

Every chalicelib module builds its ports from `settings()` on each call — never caches ports
built from it — so a warm function serving tenant A then tenant B hands B's request only B's
session (the wiring factories cache per settings, i.e. per tenant session).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from hemera.adapters.tenant_credentials import TenantSessions
from hemera.config import RuntimeSettings
from hemera.wiring import portal_tenant_sessions

_TENANT: ContextVar[str | None] = ContextVar("hemera_portal_tenant", default=None)


def base_settings() -> RuntimeSettings:
    """The function's own settings (parsing them is cheap; the wiring caches what is built from
    them, per settings)."""
    return RuntimeSettings.from_environ(os.environ)


def sessions() -> TenantSessions | None:
    return portal_tenant_sessions(base_settings())


def settings() -> RuntimeSettings:
    """The caller's tenant session inside `acting_for`; the function's own settings outside."""
    tenant = _TENANT.get()
    scoped = sessions()
    if tenant is None or scoped is None:
        return base_settings()
    return scoped.settings_for(tenant)


@contextmanager
def acting_for(tenant_id: str) -> Iterator[None]:
    """Data access inside the block acts for `tenant_id` only."""
    token = _TENANT.set(tenant_id)
    try:
        yield
    finally:
        _TENANT.reset(token)
