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


# --- notifications (alarm transitions and exports to tenant topics and webhooks) ---------------
class MalformedNotification(HemeraError):
    """A platform event or delivery message the notification functions cannot read."""

    reason = "malformed_notification"


class InvalidWebhookTarget(HemeraError, ValueError):
    """A webhook URL that is not https (http only to a loopback receiver) or carries credentials."""

    reason = "invalid_webhook_target"


class WebhookSignatureInvalid(HemeraError):
    """A received webhook whose `Hemera-Signature` does not hold (receiver side)."""

    reason = "webhook_signature_invalid"


class WebhookSignatureMalformed(WebhookSignatureInvalid):
    reason = "webhook_signature_malformed"


class WebhookSignatureExpired(WebhookSignatureInvalid):
    """The signed timestamp is outside the receiver's window: a replayed or delayed request."""

    reason = "webhook_signature_expired"


class WebhookSignatureMismatch(WebhookSignatureInvalid):
    reason = "webhook_signature_mismatch"


class DeliveryFailed(HemeraError):
    """One delivery attempt to a channel failed (refused, timed out, non-2xx answer)."""

    reason = "delivery_failed"


# --- billing exports -----------------------------------------------------------------------------
class ExportNotRenderable(HemeraError, ValueError):
    """Final data that a billing export format cannot carry as it is (an interval length the format
    does not allow, an identifier too long for a fixed field, a file that fails its own schema)."""

    reason = "export_not_renderable"


# --- billing exports ---------------------------------------------------------------------------
class ExportNotFound(HemeraError):
    """Unknown export, another tenant's, or asked for by a customer-scoped caller (BOLA)."""

    reason = "export_not_found"


class ExportForbidden(HemeraError):
    """A caller of the tenant who may read exports but not request one (only admins/operators)."""

    reason = "export_forbidden"


# --- VEE edits -----------------------------------------------------------------------------------
class EditForbidden(HemeraError):
    """The caller reaches the meter but its role may not edit its data (a 403: its own meter)."""

    reason = "edit_forbidden"


class InvalidEdit(InvalidQuery):
    """An edit request that is not well formed (a 400, like any invalid query)."""

    reason = "invalid_edit"


# --- billing ---------------------------------------------------------------------------------
class TariffNotConfigured(HemeraError):
    """Billing determinants of a meter that the tenant file gives no tariff (nothing to bill by)."""

    reason = "tariff_not_configured"


# --- registry: meter identities ----------------------------------------------------------------
class InvalidMeterIdentity(HemeraError, ValueError):
    """A meter's NMI or serial that the market would not accept (length, characters, NMI
    checksum): the message names the meter."""

    reason = "invalid_meter_identity"
