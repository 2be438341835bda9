"""S3 adapters: the raw envelope archive and the quarantine, each under the tenant's prefix."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from hemera.domain.tenancy import TenantContext
from hemera.ports import QuarantineRecord

# Messages whose topic names no valid tenant cannot go under a tenant prefix.
UNATTRIBUTED_PREFIX = "unattributed/quarantine/"


def quarantine_prefix(tenant_id: str | None) -> str:
    return TenantContext(tenant_id).s3_prefix("quarantine") if tenant_id else UNATTRIBUTED_PREFIX


def quarantine_key(record: QuarantineRecord) -> str:
    return f"{quarantine_prefix(record.tenant_id)}{record.received_at:%Y-%m-%d}/{record.message_id}.json"


class S3RawArchive:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3, self._bucket = s3, bucket

    def put(self, ctx: TenantContext, key: str, body: bytes) -> str:
        full_key = ctx.s3_prefix("raw") + key
        self._s3.put_object(Bucket=self._bucket, Key=full_key, Body=body, ContentType="application/json")
        return full_key


class S3Quarantine:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3, self._bucket = s3, bucket

    def put(self, record: QuarantineRecord) -> str:
        key = quarantine_key(record)
        document = {
            "tenant": record.tenant_id,
            "reason": record.reason,
            "detail": record.detail,
            "topic": record.topic,
            "message_id": record.message_id,
            "received_at": record.received_at.isoformat(),
            "original_base64": base64.b64encode(record.original).decode(),
        }
        self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json"
        )
        return key

    def list(self, tenant_id: str | None) -> Iterator[QuarantineRecord]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=quarantine_prefix(tenant_id)):
            for obj in page.get("Contents", []):
                body = self._s3.get_object(Bucket=self._bucket, Key=obj["Key"])["Body"].read()
                doc = json.loads(body)
                yield QuarantineRecord(
                    tenant_id=doc["tenant"],
                    reason=doc["reason"],
                    detail=doc["detail"],
                    topic=doc["topic"],
                    message_id=doc["message_id"],
                    received_at=datetime.fromisoformat(doc["received_at"]),
                    original=base64.b64decode(doc["original_base64"]),
                )
