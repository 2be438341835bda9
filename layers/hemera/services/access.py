"""API access: API keys to tenants, and the meter ownership check every route makes (BOLA)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hemera.domain.errors import InvalidQuery, InvalidTenantId, MeterNotFound, TenantNotFound, Unauthenticated
from hemera.domain.readings import Channel, IntervalReading
from hemera.domain.registry import Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.ports import ApiKeyStore, ReadingStore, Registry

API_KEY_PREFIX = "hmk_"
# A load-profile request may span at most this many days (≈ 3,000 intervals of 15 min).
MAX_RANGE_DAYS = 31


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def issue_api_key(keys: ApiKeyStore, tenant_id: str, name: str) -> str:
    """Create an API key for a tenant; only its hash is stored, the key is shown once."""
    TenantContext(tenant_id)
    api_key = API_KEY_PREFIX + secrets.token_urlsafe(24)
    keys.store(hash_api_key(api_key), tenant_id, name)
    return api_key


@dataclass(frozen=True, slots=True)
class PortalPorts:
    keys: ApiKeyStore
    registry: Registry
    store: ReadingStore


def authenticate(keys: ApiKeyStore, api_key: str | None, correlation_id: str = "") -> TenantContext:
    if not api_key:
        raise Unauthenticated("missing x-api-key header")
    tenant_id = keys.tenant_for(hash_api_key(api_key))
    if tenant_id is None:
        raise Unauthenticated("unknown API key")
    return TenantContext(tenant_id, correlation_id)


def owned_meter(registry: Registry, ctx: TenantContext, meter_id: str) -> Meter:
    """The caller's tenant's meter, or MeterNotFound (also for another tenant's meter)."""
    try:
        meter = registry.get_meter(ctx, meter_id)
    except InvalidTenantId as exc:  # an id that cannot be a key is simply not found
        raise MeterNotFound(f"meter {meter_id!r} not found") from exc
    if meter is None:
        raise MeterNotFound(f"meter {meter_id!r} not found")
    return meter


@dataclass(frozen=True, slots=True)
class LoadProfile:
    tenant: Tenant
    meter: Meter
    channel: Channel
    start: datetime
    end: datetime
    intervals: list[IntervalReading]


def load_profile(
    ports: PortalPorts, ctx: TenantContext, meter_id: str, channel: str, start: datetime, end: datetime
) -> LoadProfile:
    meter = owned_meter(ports.registry, ctx, meter_id)
    try:
        chan = Channel(channel)
    except ValueError as exc:
        raise InvalidQuery(f"channel must be one of {', '.join(c.value for c in Channel)}") from exc
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidQuery("from and to need a UTC offset, e.g. 2026-11-20T00:00:00-03:00")
    if end <= start:
        raise InvalidQuery("to must be after from")
    if end.astimezone(UTC) - start.astimezone(UTC) > timedelta(days=MAX_RANGE_DAYS):
        raise InvalidQuery(f"a request spans at most {MAX_RANGE_DAYS} days")
    tenant = ports.registry.get_tenant(ctx)
    if tenant is None:
        raise TenantNotFound(f"tenant {ctx.tenant_id} is not registered")
    intervals = ports.store.load_profile(ctx, meter.id, chan, start, end)
    return LoadProfile(tenant, meter, chan, start, end, intervals)
