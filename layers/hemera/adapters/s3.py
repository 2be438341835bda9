"""S3 adapters: the raw envelope archive and the quarantine, each under the tenant's prefix."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from hemera.domain.errors import QuarantineKeyOutsideTenant
from hemera.domain.tenancy import TenantContext
from hemera.ports import ArchivedEnvelope, QuarantineRecord

# Messages whose topic names no valid tenant cannot go under a tenant prefix.
UNATTRIBUTED_PREFIX = "unattributed/quarantine/"


def quarantine_prefix(tenant_id: str | None) -> str:
    return TenantContext(tenant_id).s3_prefix("quarantine") if tenant_id else UNATTRIBUTED_PREFIX


def quarantine_key(record: QuarantineRecord) -> str:
    """Where a record goes: its own key if it has one (an update), else from day and message id."""
    if record.key is not None:
        return checked_quarantine_key(record.tenant_id, record.key)
    return f"{quarantine_prefix(record.tenant_id)}{record.received_at:%Y-%m-%d}/{record.message_id}.json"


def checked_quarantine_key(tenant_id: str | None, key: str) -> str:
    """`key` if it lies under the tenant's quarantine prefix; an operator's key never reaches
    another tenant's records (the prefix ends in '/', so `acme` never matches `acme-corp`)."""
    prefix = quarantine_prefix(tenant_id)
    if not key.startswith(prefix) or len(key) == len(prefix) or "/../" in f"/{key}/":
        raise QuarantineKeyOutsideTenant(f"{key!r} is not a quarantine key of {tenant_id or 'unattributed'}")
    return key


def quarantine_document(record: QuarantineRecord) -> bytes:
    return json.dumps(
        {
            "tenant": record.tenant_id,
            "reason": record.reason,
            "detail": record.detail,
            "topic": record.topic,
            "message_id": record.message_id,
            "received_at": record.received_at.isoformat(),
            "original_base64": base64.b64encode(record.original).decode(),
        }
    ).encode()


def record_of_document(key: str, body: bytes) -> QuarantineRecord:
    doc = json.loads(body)
    return QuarantineRecord(
        tenant_id=doc["tenant"],
        reason=doc["reason"],
        detail=doc["detail"],
        topic=doc["topic"],
        message_id=doc["message_id"],
        received_at=datetime.fromisoformat(doc["received_at"]),
        original=base64.b64decode(doc["original_base64"]),
        key=key,
    )


def archive_document(envelopes: Sequence[ArchivedEnvelope]) -> bytes:
    """Gzip-compressed JSON Lines, one accepted envelope a line. The payload is the device's JSON
    text (it parsed as an envelope, so it is UTF-8): encoding it again gives its exact bytes."""
    lines = (
        json.dumps(
            {
                "message_id": e.message_id,
                "topic": e.topic,
                "received_at": e.received_at.isoformat(),
                "device": e.device_id,
                "meter": e.meter_id,
                "seq": e.seq,
                "sha256": e.sha256,
                "payload": e.payload.decode(),
            },
            separators=(",", ":"),
        )
        for e in envelopes
    )
    # mtime=0: the same envelopes give the same bytes, so a retried batch rewrites an equal object.
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def envelopes_of_document(body: bytes) -> list[ArchivedEnvelope]:
    return [
        ArchivedEnvelope(
            message_id=doc["message_id"],
            topic=doc["topic"],
            received_at=datetime.fromisoformat(doc["received_at"]),
            device_id=doc["device"],
            meter_id=doc["meter"],
            seq=doc["seq"],
            sha256=doc["sha256"],
            payload=doc["payload"].encode(),
        )
        for doc in map(json.loads, gzip.decompress(body).decode().splitlines())
    ]


def checked_archive_key(ctx: TenantContext, full_key: str) -> str:
    prefix = ctx.s3_prefix("raw")
    if not full_key.startswith(prefix) or "/../" in f"/{full_key}/":
        raise ValueError(f"{full_key!r} is not a raw archive key of {ctx.tenant_id}")
    return full_key


class S3RawArchive:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3, self._bucket = s3, bucket

    def put_batch(self, ctx: TenantContext, key: str, envelopes: Sequence[ArchivedEnvelope]) -> str:
        full_key = ctx.s3_prefix("raw") + key
        self._s3.put_object(
            Bucket=self._bucket,
            Key=full_key,
            Body=archive_document(envelopes),
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
        )
        return full_key

    def read_batch(self, ctx: TenantContext, full_key: str) -> list[ArchivedEnvelope]:
        body = self._s3.get_object(Bucket=self._bucket, Key=checked_archive_key(ctx, full_key))["Body"].read()
        return envelopes_of_document(body)


class S3Quarantine:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3, self._bucket = s3, bucket

    def put(self, record: QuarantineRecord) -> str:
        key = quarantine_key(record)
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=quarantine_document(dataclasses.replace(record, key=key)),
            ContentType="application/json",
        )
        return key

    def list(self, tenant_id: str | None) -> Iterator[QuarantineRecord]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=quarantine_prefix(tenant_id)):
            for obj in page.get("Contents", []):
                record = self.get(tenant_id, obj["Key"])
                if record is not None:  # removed between the listing and the read
                    yield record

    def get(self, tenant_id: str | None, key: str) -> QuarantineRecord | None:
        key = checked_quarantine_key(tenant_id, key)
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return record_of_document(key, body)

    def remove(self, tenant_id: str | None, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=checked_quarantine_key(tenant_id, key))

    def tenants(self) -> tuple[str | None, ...]:
        # The quarantine bucket holds quarantine objects only, so every `tenants/<t>/` prefix in
        # it is a tenant with records.
        paginator = self._s3.get_paginator("list_objects_v2")
        named = sorted(
            common["Prefix"].split("/")[1]
            for page in paginator.paginate(Bucket=self._bucket, Prefix="tenants/", Delimiter="/")
            for common in page.get("CommonPrefixes", [])
        )
        unattributed = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=UNATTRIBUTED_PREFIX, MaxKeys=1)
        return (*named, None) if unattributed.get("KeyCount", 0) else tuple(named)
