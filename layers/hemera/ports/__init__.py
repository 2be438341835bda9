"""Ports: what the services need from storage, as protocols. Adapters live in `hemera.adapters`:
DynamoDB/S3 for AWS and the local cloud, in-memory fakes for tests (`hemera.adapters.memory`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, Protocol, TypeVar

from hemera.domain.readings import Channel, IntervalReading
from hemera.domain.registry import Customer, Meter, Tenant
from hemera.domain.tenancy import TenantContext


@dataclass(frozen=True, slots=True)
class SeriesChange:
    """A meter-channel-day whose content changed, and the data version it changed to."""

    meter_id: str
    channel: Channel
    day: date
    version: int


# Called with the changes about to be written, *before* they are: a failure stops the write (the
# message is retried), so no change is ever stored unannounced; a write that then fails leaves a
# harmless "may have changed" announcement (listeners re-read the day).
Announce = Callable[[Sequence[SeriesChange]], None]


@dataclass(frozen=True, slots=True)
class MergeStats:
    """Outcome of merging intervals into meter-channel-day items."""

    items_written: int = 0
    intervals_new: int = 0
    intervals_changed: int = 0
    intervals_unchanged: int = 0
    changes: tuple[SeriesChange, ...] = ()

    def __add__(self, other: MergeStats) -> MergeStats:
        return MergeStats(
            self.items_written + other.items_written,
            self.intervals_new + other.intervals_new,
            self.intervals_changed + other.intervals_changed,
            self.intervals_unchanged + other.intervals_unchanged,
            self.changes + other.changes,
        )


@dataclass(frozen=True, slots=True)
class SeriesDay:
    """One stored meter-channel-day: its data version and its intervals in time order."""

    version: int
    readings: list[IntervalReading]


class ReadingStore(Protocol):
    def merge_intervals(
        self, ctx: TenantContext, readings: Sequence[IntervalReading], announce: Announce | None = None
    ) -> MergeStats:
        """Idempotently merge readings into their meter-channel-day items; `announce` hears of
        every day whose content is about to change."""
        ...

    def load_profile(
        self, ctx: TenantContext, meter_id: str, channel: Channel, start: datetime, end: datetime
    ) -> list[IntervalReading]:
        """Intervals of one meter and channel starting in [start, end), in time order."""
        ...

    def series_version(self, ctx: TenantContext, meter_id: str, channel: Channel, day: date) -> int | None:
        """The data version of one meter-channel-day (UTC day), None if nothing is stored."""
        ...

    def read_series(
        self, ctx: TenantContext, keys: Sequence[tuple[str, Channel, date]]
    ) -> dict[tuple[str, Channel, date], SeriesDay]:
        """Many meter-channel-days at once (meter, channel, UTC day); days not stored are left out."""
        ...


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing in id order; `next_cursor` (the last id of the page) is None on the
    last page. Pass it back as `cursor` for the page after it."""

    items: list[T]
    next_cursor: str | None = None


class Registry(Protocol):
    def put_tenant(self, tenant: Tenant) -> None: ...

    def put_customers(self, ctx: TenantContext, customers: Sequence[Customer]) -> None:
        """Register (or update) customers of the tenant; each must belong to `ctx`'s tenant."""
        ...

    def get_customer(self, ctx: TenantContext, customer_id: str) -> Customer | None: ...

    def list_customers(self, ctx: TenantContext, cursor: str | None, limit: int) -> Page[Customer]:
        """The tenant's customers in id order, after `cursor`, at most `limit` of them."""
        ...

    def list_meters(
        self, ctx: TenantContext, cursor: str | None, limit: int, customer_id: str | None = None
    ) -> Page[Meter]:
        """The tenant's meters (only those of `customer_id` when given) in id order, after
        `cursor`, at most `limit` of them."""
        ...

    def get_tenant(self, ctx: TenantContext) -> Tenant | None: ...

    def list_tenants(self) -> list[Tenant]:
        """Every registered tenant, in id order (for the scheduled sweeps that visit each)."""
        ...

    def put_meter(self, ctx: TenantContext, meter: Meter) -> None: ...

    def put_meters(self, ctx: TenantContext, meters: Sequence[Meter]) -> None:
        """Register many meters at once (onboarding a fleet); same rules as `put_meter`."""
        ...

    def get_meter(self, ctx: TenantContext, meter_id: str) -> Meter | None: ...

    def get_meters(self, ctx: TenantContext, meter_ids: Iterable[str]) -> dict[str, Meter]:
        """The registered meters among `meter_ids`, by id (unknown ids are left out)."""
        ...


@dataclass(frozen=True, slots=True)
class ApiKeyGrant:
    """What a live API key grants: a tenant, and within it one customer when the key is scoped
    (`customer:<id>`, a customer user's portal); None = the whole tenant."""

    tenant_id: str
    customer_id: str | None = None
    # A third party's key is bound to a customer's consent; its scopes come from that consent.
    consent_id: str | None = None
    scopes: frozenset[str] = frozenset({"read"})


class ApiKeyStore(Protocol):
    def store(
        self,
        key_hash: str,
        tenant_id: str,
        name: str,
        customer_id: str | None = None,
        *,
        consent_id: str | None = None,
        scopes: frozenset[str] = frozenset({"read"}),
    ) -> None: ...

    def grant_for(self, key_hash: str) -> ApiKeyGrant | None:
        """The grant of a stored, unrevoked key; None for unknown or revoked keys."""
        ...

    def revoke(self, key_hash: str) -> bool:
        """Revoke a key for good (the record stays, marked, for audit); False if unknown."""
        ...


@dataclass(frozen=True, slots=True)
class ArchivedEnvelope:
    """One accepted device message as the raw archive keeps it: the device's own bytes and where
    and when they arrived."""

    message_id: str
    topic: str
    received_at: datetime
    device_id: str
    meter_id: str
    seq: int
    sha256: str
    payload: bytes


class RawArchive(Protocol):
    def put_batch(self, ctx: TenantContext, key: str, envelopes: Sequence[ArchivedEnvelope]) -> str:
        """Store the envelopes as one compressed JSON Lines object under the tenant's raw prefix
        + `key` (writing the same key again replaces it); returns the full object key."""
        ...

    def read_batch(self, ctx: TenantContext, full_key: str) -> list[ArchivedEnvelope]:
        """The envelopes of one archive object of this tenant."""
        ...


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """An envelope the platform has stored: the device's sequence number and a digest of its
    bytes (a device whose sequence restarted sends a different envelope under an old number)."""

    device_id: str
    seq: int
    sha256: str


class EnvelopeLedger(Protocol):
    """(device, seq) of every stored envelope, kept for the redelivery horizon."""

    def seen(self, ctx: TenantContext, entries: Sequence[LedgerEntry]) -> set[LedgerEntry]:
        """Those of `entries` already recorded with the same digest."""
        ...

    def record(self, ctx: TenantContext, entries: Sequence[LedgerEntry]) -> None: ...


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """A rejected message: its machine-readable reason, the detail and the original bytes.

    `tenant_id` is None for an unattributed message (no valid device topic). `key` is where the
    quarantine keeps the record: None for a new record, set on records read back.
    """

    tenant_id: str | None
    reason: str
    detail: str
    topic: str | None
    message_id: str
    received_at: datetime
    original: bytes
    key: str | None = None


class Quarantine(Protocol):
    """Per-tenant store of rejected messages. Every key-taking method refuses a key outside the
    tenant's prefix with `QuarantineKeyOutsideTenant` (None = the unattributed area)."""

    def put(self, record: QuarantineRecord) -> str:
        """Store the record (overwriting it when `record.key` is set); returns its key."""
        ...

    def list(self, tenant_id: str | None) -> Iterable[QuarantineRecord]:
        """The tenant's records, each with its key, in key order (day, then message id)."""
        ...

    def get(self, tenant_id: str | None, key: str) -> QuarantineRecord | None: ...

    def remove(self, tenant_id: str | None, key: str) -> None:
        """Delete the record; removing a key that is already gone is not an error."""
        ...

    def tenants(self) -> Iterable[str | None]:
        """Tenants that have records (None for the unattributed area), sorted, None last."""
        ...


class ChangeEvents(Protocol):
    def announce(self, ctx: TenantContext, changes: Sequence[SeriesChange]) -> None:
        """Tell listeners (VEE, billing) that these meter-days have new data versions."""
        ...


@dataclass(frozen=True, slots=True)
class Consent:
    """A customer's consent for a third party to read its data (Green Button Connect-style
    authorization): what it may do (`scopes`), until when, and whether the customer revoked it."""

    tenant_id: str
    customer_id: str
    consent_id: str
    third_party_id: str
    scopes: frozenset[str]
    expires_at: datetime
    revoked_at: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class ConsentStore(Protocol):
    def save(self, consent: Consent) -> None: ...

    def get(self, tenant_id: str, consent_id: str) -> Consent | None: ...

    def revoke(self, tenant_id: str, consent_id: str, at: datetime) -> bool:
        """Mark a consent revoked (kept for audit); False if unknown."""
        ...


class TokenVerifier(Protocol):
    def claims(self, token: str) -> dict[str, Any]:
        """The claims of a bearer token whose signature, issuer, audience and expiry hold;
        raises InvalidToken otherwise."""
        ...


class PlatformEvents(Protocol):
    """Platform events on the bus (`hemera.adapters.eventbridge.EventBridgePublisher`): one event
    per detail, every detail naming its tenant."""

    def put(self, detail_type: str, details: Sequence[dict[str, Any]]) -> None: ...
