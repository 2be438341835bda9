"""The re-read log in the readings table, tenant-first like every item there:

- one item per gap acted on: `T#<tenant>#REREAD` / `G#<meter>#<gap start, ISO UTC>`;
- the meter scan's position: `T#<tenant>#REREAD` / `CURSOR`.
A tenant has few open gaps (each is forgotten once data closes it), so one Query reads them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from hemera.adapters.dynamodb import bind_model
from hemera.config import AwsTarget
from hemera.domain.rereads import RereadAttempt
from hemera.domain.tenancy import TenantContext, validate_id

_GAP = "G#"
_CURSOR = "CURSOR"


class RereadRecord(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#REREAD
    sk = UnicodeAttribute(range_key=True)  # G#<meter>#<start> | CURSOR
    meter = UnicodeAttribute(null=True)
    device = UnicodeAttribute(null=True)
    start = UnicodeAttribute(null=True)
    end = UnicodeAttribute(null=True)
    attempts = NumberAttribute(null=True)
    last_sent_at = UnicodeAttribute(null=True)
    last_command = UnicodeAttribute(null=True)
    exhausted = NumberAttribute(null=True)
    cursor = UnicodeAttribute(null=True)


@cache
def reread_model(table_name: str, target: AwsTarget, host: str | None) -> type[RereadRecord]:
    return bind_model(RereadRecord, table_name, target, host)


def _pk(ctx: TenantContext) -> str:
    return ctx.key_prefix + "REREAD"


def _sk(attempt: RereadAttempt) -> str:
    return f"{_GAP}{validate_id(attempt.meter_id, 'meter')}#{attempt.start.isoformat()}"


class DynamoRereadLog:
    def __init__(self, model: type[RereadRecord]) -> None:
        self._model = model

    def attempts(self, ctx: TenantContext) -> dict[tuple[str, datetime], RereadAttempt]:
        found = {}
        for r in self._model.query(_pk(ctx), self._model.sk.startswith(_GAP), consistent_read=True):
            assert r.meter and r.device and r.start and r.end and r.last_sent_at and r.attempts is not None
            attempt = RereadAttempt(
                meter_id=r.meter,
                device_id=r.device,
                start=datetime.fromisoformat(r.start),
                end=datetime.fromisoformat(r.end),
                attempts=int(r.attempts),
                last_sent_at=datetime.fromisoformat(r.last_sent_at),
                last_command_id=r.last_command,
                exhausted=bool(r.exhausted),
            )
            found[attempt.key] = attempt
        return found

    def save(self, ctx: TenantContext, attempts: Sequence[RereadAttempt]) -> None:
        with self._model.batch_write() as batch:
            for a in attempts:
                batch.save(
                    self._model(
                        _pk(ctx),
                        _sk(a),
                        meter=a.meter_id,
                        device=a.device_id,
                        start=a.start.isoformat(),
                        end=a.end.isoformat(),
                        attempts=a.attempts,
                        last_sent_at=a.last_sent_at.isoformat(),
                        last_command=a.last_command_id,
                        exhausted=int(a.exhausted),
                    )
                )

    def forget(self, ctx: TenantContext, attempts: Sequence[RereadAttempt]) -> None:
        with self._model.batch_write() as batch:
            for a in attempts:
                batch.delete(self._model(_pk(ctx), _sk(a)))

    def scan_cursor(self, ctx: TenantContext) -> str | None:
        try:
            return self._model.get(_pk(ctx), _CURSOR, consistent_read=True).cursor
        except self._model.DoesNotExist:
            return None

    def set_scan_cursor(self, ctx: TenantContext, meter_id: str | None) -> None:
        self._model(_pk(ctx), _CURSOR, cursor=meter_id).save()
