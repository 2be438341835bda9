"""Each tenant's VEE overrides in the readings table: one item `T#<tenant>#VEE` / `SETTINGS`
holding the `vee:` section of its tenant file as JSON (absent: the defaults)."""

from __future__ import annotations

import json
from functools import cache

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from hemera.adapters.dynamodb import bind_model
from hemera.config import AwsTarget
from hemera.domain.tenancy import TenantContext
from hemera.tenants import VeeOverrides

_SETTINGS_SK = "SETTINGS"


class VeeSettingsRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant = UnicodeAttribute()
    overrides = UnicodeAttribute()  # JSON of VeeOverrides (only the values the file sets)


@cache
def vee_settings_model(table_name: str, target: AwsTarget, host: str | None) -> type[VeeSettingsRecord]:
    return bind_model(VeeSettingsRecord, table_name, target, host)


class DynamoVeeSettings:
    def __init__(self, model: type[VeeSettingsRecord]) -> None:
        self._model = model

    @staticmethod
    def _pk(ctx: TenantContext) -> str:
        return ctx.key_prefix + "VEE"

    def put_overrides(self, ctx: TenantContext, overrides: VeeOverrides | None) -> None:
        if overrides is None:
            self._model(self._pk(ctx), _SETTINGS_SK).delete()
            return
        document = overrides.model_dump(mode="json", exclude_none=True)
        self._model(
            self._pk(ctx),
            _SETTINGS_SK,
            tenant=ctx.tenant_id,
            overrides=json.dumps(document, separators=(",", ":"), sort_keys=True),
        ).save()

    def overrides(self, ctx: TenantContext) -> VeeOverrides | None:
        try:
            record = self._model.get(self._pk(ctx), _SETTINGS_SK, consistent_read=True)
        except self._model.DoesNotExist:
            return None
        return VeeOverrides.model_validate(json.loads(record.overrides))
