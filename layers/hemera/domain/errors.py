"""Typed errors of the domain.

Each error that can reject an incoming message carries a stable, machine-readable `reason` that the
quarantine records; the API maps the access errors to HTTP status codes in one place
(`functions/portal_api`). Never match on message text.
"""

from __future__ import annotations


class HemeraError(Exception):
    """Base of every error the platform raises on purpose."""

    reason = "error"


# --- ingest: a message that cannot be accepted is quarantined with `reason` -------------------
class RejectedMessage(HemeraError):
    """A device message that must go to quarantine instead of the store."""

    reason = "rejected"


class MalformedEnvelope(RejectedMessage):
    reason = "malformed_envelope"


class TopicMismatch(RejectedMessage):
    """The envelope claims a tenant/device other than the MQTT topic it was published on."""

    reason = "topic_mismatch"


class UnknownMeterModel(RejectedMessage):
    reason = "unknown_meter_model"


class MalformedFrame(RejectedMessage):
    """A raw frame (register block, DLMS data) that the model's map cannot decode."""

    reason = "malformed_frame"


class UnsupportedProtocol(RejectedMessage):
    reason = "unsupported_protocol"


class UnknownMeter(RejectedMessage):
    """The envelope names a meter that the tenant has not registered."""

    reason = "unknown_meter"


# --- transient: the message is delivered again ---------------------------------------------------
class ConcurrentUpdate(HemeraError):
    """Other writers kept changing the same meter-days during a merge; retrying is safe."""

    reason = "concurrent_update"


# --- quarantine operations ---------------------------------------------------------------------
class QuarantineKeyOutsideTenant(HemeraError, ValueError):
    """A quarantine key that is not under the named tenant's prefix: keys never cross tenants."""

    reason = "quarantine_key_outside_tenant"


class QuarantineNotReplayable(HemeraError):
    """An unattributed record (no valid device topic): there is no identity to replay it under."""

    reason = "quarantine_not_replayable"


# --- access ------------------------------------------------------------------------------------
class InvalidTenantId(HemeraError, ValueError):
    """An id that cannot be embedded in keys, prefixes and topics (a ValueError for validators)."""

    reason = "invalid_tenant_id"


class Unauthenticated(HemeraError):
    reason = "unauthenticated"


class InvalidToken(Unauthenticated):
    """A bearer token that is malformed, forged, expired, for another pool or client, or that
    names no tenant (or a role we do not know)."""

    reason = "invalid_token"


class ConsentNotValid(Unauthenticated):
    """A third party's key whose customer consent expired, was revoked or never existed."""

    reason = "consent_not_valid"


class TenantNotFound(HemeraError):
    reason = "tenant_not_found"


class MeterNotFound(HemeraError):
    """Unknown meter, or a meter of another tenant: callers cannot tell the two apart (BOLA)."""

    reason = "meter_not_found"


class CustomerNotFound(HemeraError):
    """Unknown customer, another tenant's, or outside a customer-scoped caller's reach (BOLA)."""

    reason = "customer_not_found"


class InvalidQuery(HemeraError):
    reason = "invalid_query"


# --- final (VEE'd) series ----------------------------------------------------------------------
class VersionConflict(HemeraError):
    """Another writer stored a version of the same final day first: re-read and compute again."""

    reason = "version_conflict"
