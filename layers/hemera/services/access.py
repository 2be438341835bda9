"""API access: API keys to callers (a tenant, or one customer of it), and the ownership check
every route makes before it returns an object (OWASP API1, BOLA): an object of another tenant, or
of another customer for a customer-scoped caller, is not found, exactly like an unknown one."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from hemera.domain.errors import (
    ConsentNotValid,
    CustomerNotFound,
    InvalidQuery,
    InvalidTenantId,
    MeterNotFound,
    TenantNotFound,
    Unauthenticated,
)
from hemera.domain.readings import Channel, IntervalReading
from hemera.domain.registry import Customer, Meter, Tenant
from hemera.domain.tenancy import TenantContext, validate_id
from hemera.ports import ApiKeyStore, Consent, ConsentStore, Page, ReadingStore, Registry, TokenVerifier

API_KEY_PREFIX = "hmk_"
# A load-profile request may span at most this many days (≈ 3,000 intervals of 15 min).
MAX_RANGE_DAYS = 31
# Page sizes of listings: a portal page, not a bulk export.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def issue_api_key(keys: ApiKeyStore, tenant_id: str, name: str, customer_id: str | None = None) -> str:
    """Create an API key for a tenant (or, with `customer_id`, for one customer of it: scope
    `customer:<id>`); only its hash is stored, the key is shown once."""
    TenantContext(tenant_id)
    if customer_id is not None:
        validate_id(customer_id, "customer")
    api_key = API_KEY_PREFIX + secrets.token_urlsafe(24)
    keys.store(hash_api_key(api_key), tenant_id, name, customer_id)
    return api_key


def revoke_api_key(keys: ApiKeyStore, api_key: str) -> bool:
    """Revoke a key at once (its next request is 401); False if it was never issued."""
    return keys.revoke(hash_api_key(api_key))


class Role(StrEnum):
    """Who a caller is. Admins and operators (Cognito groups) and machine clients (API keys) see
    the whole tenant; a customer user and a third party with consent see one customer."""

    ADMIN = "admin"
    OPERATOR = "operator"
    CUSTOMER = "customer"
    MACHINE = "machine"
    THIRD_PARTY = "third_party"


# Every route today reads; `commands` will guard connect/disconnect when those routes come.
READ = "read"
DEFAULT_SCOPES = frozenset({READ})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the tenant context every repository takes, and the customer the caller is
    confined to (None = tenant-wide: an operator's or a machine client's key)."""

    ctx: TenantContext
    customer_id: str | None = None
    role: Role = Role.MACHINE
    scopes: frozenset[str] = DEFAULT_SCOPES

    @property
    def tenant_id(self) -> str:
        return self.ctx.tenant_id

    def reaches(self, customer_id: str) -> bool:
        return self.customer_id is None or self.customer_id == customer_id


@dataclass(frozen=True, slots=True)
class PortalPorts:
    keys: ApiKeyStore
    registry: Registry
    store: ReadingStore
    consents: ConsentStore | None = None
    tokens: TokenVerifier | None = None  # None: no user pool configured, bearer tokens refused


def authenticate(
    keys: ApiKeyStore,
    api_key: str | None,
    correlation_id: str = "",
    consents: ConsentStore | None = None,
    now: datetime | None = None,
) -> Caller:
    if not api_key:
        raise Unauthenticated("missing x-api-key header")
    grant = keys.grant_for(hash_api_key(api_key))
    if grant is None:
        raise Unauthenticated("unknown or revoked API key")
    ctx = TenantContext(grant.tenant_id, correlation_id)
    if grant.consent_id is None:
        return Caller(ctx, grant.customer_id, Role.MACHINE, grant.scopes)
    # A third party reaches only what the customer's consent allows, only while it is valid.
    consent = consents.get(grant.tenant_id, grant.consent_id) if consents is not None else None
    if consent is None or consent.customer_id != grant.customer_id:
        raise ConsentNotValid("the consent this key is bound to does not exist")
    if not consent.valid_at(now or datetime.now(UTC)):
        raise ConsentNotValid("the customer's consent for this key expired or was revoked")
    return Caller(ctx, consent.customer_id, Role.THIRD_PARTY, consent.scopes)


def grant_consent(
    consents: ConsentStore,
    keys: ApiKeyStore,
    tenant_id: str,
    customer_id: str,
    third_party_id: str,
    expires_at: datetime,
    scopes: frozenset[str] = DEFAULT_SCOPES,
) -> tuple[Consent, str]:
    """Record a customer's consent for a third party and issue the API key bound to it (shown
    once). The key lives as long as the consent: expiry or revocation makes it 401."""
    TenantContext(tenant_id)
    validate_id(customer_id, "customer")
    validate_id(third_party_id, "third party")
    if expires_at.tzinfo is None:
        raise InvalidQuery("a consent's expiry needs a UTC offset")
    consent = Consent(
        tenant_id, customer_id, "c-" + secrets.token_hex(8), third_party_id, frozenset(scopes), expires_at
    )
    consents.save(consent)
    api_key = API_KEY_PREFIX + secrets.token_urlsafe(24)
    keys.store(
        hash_api_key(api_key),
        tenant_id,
        f"third party {third_party_id}",
        customer_id,
        consent_id=consent.consent_id,
        scopes=consent.scopes,
    )
    return consent, api_key


def revoke_consent(
    consents: ConsentStore, tenant_id: str, consent_id: str, at: datetime | None = None
) -> bool:
    """The customer withdraws its consent: the third party's next request is 401."""
    return consents.revoke(tenant_id, consent_id, at or datetime.now(UTC))


def owned_meter(registry: Registry, caller: Caller, meter_id: str) -> Meter:
    """The caller's meter, or MeterNotFound (also for another tenant's or customer's meter)."""
    try:
        meter = registry.get_meter(caller.ctx, meter_id)
    except InvalidTenantId as exc:  # an id that cannot be a key is simply not found
        raise MeterNotFound(f"meter {meter_id!r} not found") from exc
    if meter is None or not caller.reaches(meter.customer_id):
        raise MeterNotFound(f"meter {meter_id!r} not found")
    return meter


def owned_customer(registry: Registry, caller: Caller, customer_id: str) -> Customer:
    """The caller's customer, or CustomerNotFound (another tenant's or customer's included)."""
    try:
        customer = registry.get_customer(caller.ctx, customer_id) if caller.reaches(customer_id) else None
    except InvalidTenantId as exc:
        raise CustomerNotFound(f"customer {customer_id!r} not found") from exc
    if customer is None:
        raise CustomerNotFound(f"customer {customer_id!r} not found")
    return customer


# Cursors are opaque to clients (we may change what they hold); inside they are the last id of
# the previous page, which the registry checks like any id.
_CURSOR_PREFIX = "v1:"


def encode_cursor(last_id: str | None) -> str | None:
    if last_id is None:
        return None
    return base64.urlsafe_b64encode((_CURSOR_PREFIX + last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(text)
        return validate_id(text[len(_CURSOR_PREFIX) :], "cursor")
    except (ValueError, binascii.Error) as exc:
        raise InvalidQuery("cursor is not one this API returned (use next_cursor as given)") from exc


def page_size(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidQuery(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    return limit


def list_customers(
    registry: Registry, caller: Caller, cursor: str | None, limit: int | None
) -> Page[Customer]:
    """The caller's customers in id order (a customer user sees its own customer only)."""
    after, size = decode_cursor(cursor), page_size(limit)
    if caller.customer_id is not None:
        own = registry.get_customer(caller.ctx, caller.customer_id)
        return Page([own] if own is not None and (after is None or own.id > after) else [])
    page = registry.list_customers(caller.ctx, after, size)
    return Page(page.items, encode_cursor(page.next_cursor))


def list_meters(
    registry: Registry, caller: Caller, cursor: str | None, limit: int | None, customer_id: str | None = None
) -> Page[Meter]:
    """The caller's meters in id order, optionally of one customer (a customer user's filter is
    always its own customer; asking for another one finds nothing)."""
    after, size = decode_cursor(cursor), page_size(limit)
    if customer_id is not None:
        try:
            validate_id(customer_id, "customer")
        except InvalidTenantId as exc:
            raise InvalidQuery(f"customer_id {customer_id!r} is not a valid id") from exc
        if not caller.reaches(customer_id):
            return Page([])
    page = registry.list_meters(caller.ctx, after, size, customer_id or caller.customer_id)
    return Page(page.items, encode_cursor(page.next_cursor))


@dataclass(frozen=True, slots=True)
class LoadProfile:
    tenant: Tenant
    meter: Meter
    channel: Channel
    start: datetime
    end: datetime
    intervals: list[IntervalReading]


def load_profile(
    ports: PortalPorts, caller: Caller, meter_id: str, channel: str, start: datetime, end: datetime
) -> LoadProfile:
    meter = owned_meter(ports.registry, caller, meter_id)
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
    tenant = ports.registry.get_tenant(caller.ctx)
    if tenant is None:
        raise TenantNotFound(f"tenant {caller.tenant_id} is not registered")
    intervals = ports.store.load_profile(caller.ctx, meter.id, chan, start, end)
    return LoadProfile(tenant, meter, chan, start, end, intervals)
