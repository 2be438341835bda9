"""Billing export files in S3 (under `tenants/<tenant>/exports/`, versioned bucket) with pre-signed
download URLs, and `ExportWritten` / `ExportRequested` events on the platform bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hemera.definitions import BILLING_SOURCE, EXPORT_REQUESTED, EXPORT_WRITTEN
from hemera.domain.tenancy import TenantContext
from hemera.ports.exports import EXPORTS_AREA


def checked_export_key(ctx: TenantContext, key: str) -> str:
    """`key` if it lies under the tenant's exports prefix (which ends in '/', so `acme` never
    reaches `acme-corp`)."""
    prefix = ctx.s3_prefix(EXPORTS_AREA)
    if not key.startswith(prefix) or len(key) == len(prefix) or "/../" in f"/{key}/":
        raise ValueError(f"{key!r} is not an export key of {ctx.tenant_id}")
    return key


class S3ExportFiles:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3, self._bucket = s3, bucket

    def put(self, ctx: TenantContext, key: str, content: bytes, content_type: str) -> None:
        self._s3.put_object(
            Bucket=self._bucket, Key=checked_export_key(ctx, key), Body=content, ContentType=content_type
        )

    def get(self, ctx: TenantContext, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=self._bucket, Key=checked_export_key(ctx, key))[
            "Body"
        ].read()
        return body

    def download_url(self, ctx: TenantContext, key: str, filename: str, expires_s: int) -> str:
        # Signed here with the caller's (the API's) credentials: the role may GetObject under
        # `tenants/*/exports/*` only; the URL names one object of the caller's tenant.
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": checked_export_key(ctx, key),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_s,
        )
        return url


# PutEvents takes at most ten entries a call.
PUT_EVENTS_ENTRIES = 10


def _put_billing_events(
    events: Any, bus: str, ctx: TenantContext, detail_type: str, details: Sequence[dict[str, Any]]
) -> None:
    if any(detail.get("tenant") != ctx.tenant_id for detail in details):
        raise ValueError("an event carries its own tenant")
    for start in range(0, len(details), PUT_EVENTS_ENTRIES):
        response = events.put_events(
            Entries=[
                {
                    "EventBusName": bus,
                    "Source": BILLING_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                }
                for detail in details[start : start + PUT_EVENTS_ENTRIES]
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused {response['FailedEntryCount']} {detail_type} event(s)")


def _put_billing_event(
    events: Any, bus: str, ctx: TenantContext, detail_type: str, detail: dict[str, Any]
) -> None:
    _put_billing_events(events, bus, ctx, detail_type, [detail])


class EventBridgeExportEvents:
    def __init__(self, events: Any, bus_name: str) -> None:
        self._events, self._bus = events, bus_name

    def written(self, ctx: TenantContext, detail: dict[str, Any]) -> None:
        _put_billing_event(self._events, self._bus, ctx, EXPORT_WRITTEN, detail)


class EventBridgeExportRequests:
    """`ExportRequested` on the platform bus; the billing rule forwards it to the requests queue.
    The portal puts it with its own role (its tenant sessions reach only items and objects)."""

    def __init__(self, events: Any, bus_name: str) -> None:
        self._events, self._bus = events, bus_name

    def requested(self, ctx: TenantContext, detail: dict[str, Any]) -> None:
        _put_billing_event(self._events, self._bus, ctx, EXPORT_REQUESTED, detail)

    def parts_requested(self, ctx: TenantContext, details: Sequence[dict[str, Any]]) -> None:
        # Put by the billing function (its role may put any event on the bus); a refused entry
        # fails the call, and the caller marks the export failed (parts are idempotent, so
        # queueing all of them again would be safe too).
        _put_billing_events(self._events, self._bus, ctx, EXPORT_REQUESTED, details)
