"""A tenant's settings documents in the readings table: one item `T#<tenant>#<NAME>` / `SETTINGS`
per kind of setting, holding the tenant file's section as JSON — what onboarding writes and the
functions read at run time instead of carrying every tenant's settings in their environment.
`MemoryTenantDocuments` is the fake the contract tests hold to `DynamoTenantDocuments`."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from hemera.adapters.dynamodb import bind_model
from hemera.config import AwsTarget
from hemera.domain.tenancy import TenantContext

_SETTINGS_SK = "SETTINGS"


class TenantDocumentRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    doc = UnicodeAttribute()  # JSON


@cache
def tenant_document_model(table_name: str, target: AwsTarget, host: str | None) -> type[TenantDocumentRecord]:
    return bind_model(TenantDocumentRecord, table_name, target, host)


class DynamoTenantDocuments:
    """The `name` document of each tenant (e.g. "VEE", "APILIMITS")."""

    def __init__(self, model: type[TenantDocumentRecord], name: str) -> None:
        self._model, self._name = model, name

    def _pk(self, ctx: TenantContext) -> str:
        return ctx.key_prefix + self._name

    def put(self, ctx: TenantContext, document: Any | None) -> None:
        """Store the tenant's document; None removes it."""
        if document is None:
            self._model(self._pk(ctx), _SETTINGS_SK).delete()
            return
        text = json.dumps(document, separators=(",", ":"), sort_keys=True)
        self._model(self._pk(ctx), _SETTINGS_SK, tenant=ctx.tenant_id, doc=text).save()

    def get(self, ctx: TenantContext) -> Any | None:
        try:
            record = self._model.get(self._pk(ctx), _SETTINGS_SK, consistent_read=True)
        except self._model.DoesNotExist:
            return None
        return json.loads(record.doc)


class MemoryTenantDocuments:
    def __init__(self) -> None:
        self._documents: dict[str, Any] = {}

    def put(self, ctx: TenantContext, document: Any | None) -> None:
        if document is None:
            self._documents.pop(ctx.tenant_id, None)
        else:
            self._documents[ctx.tenant_id] = json.loads(json.dumps(document))

    def get(self, ctx: TenantContext) -> Any | None:
        return self._documents.get(ctx.tenant_id)
