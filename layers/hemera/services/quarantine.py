"""Replay of quarantined messages after a fix (a meter registered, a new meter model deployed).

A replay sends each record's original bytes through `ingest_message` again, on the topic it was
published on and under its original message id, so it is exactly what the translate function would
do with a redelivery: the archive key is (device, seq) and the store merge is idempotent, so a
replay that runs twice, or a replay of a message that was also delivered again, never counts twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from hemera.adapters.instantaneous_memory import MemoryInstantaneousStore
from hemera.adapters.memory import MemoryChangeEvents, MemoryLedger, MemoryRawArchive, MemoryReadingStore
from hemera.domain.errors import QuarantineNotReplayable, RejectedMessage
from hemera.ports import QuarantineRecord
from hemera.services.ingest import DeviceMessage, IngestPorts, ingest_message


class AllRecords(Enum):
    """Selects every record of the tenant (a typed sentinel, so no key list can mean 'all')."""

    ALL = "all"


ALL = AllRecords.ALL


class ReplayStatus(StrEnum):
    REPLAYED = "replayed"  # ingested; the record is removed
    WOULD_REPLAY = "would_replay"  # dry run: it would be ingested
    STILL_REJECTED = "still_rejected"  # rejected again; kept with the new reason and detail
    TRANSIENT_ERROR = "transient_error"  # not about the message (throttling, network): untouched
    NOT_FOUND = "not_found"  # no such record (already replayed, or a wrong key)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    key: str
    status: ReplayStatus
    reason: str | None = None  # the reason now: the new rejection's, or the record's if untouched
    previous_reason: str | None = None
    detail: str = ""
    intervals: int = 0


@dataclass(slots=True)
class ReplayReport:
    tenant_id: str
    dry_run: bool
    results: list[ReplayResult] = field(default_factory=list)

    def count(self, status: ReplayStatus) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def intervals(self) -> int:
        return sum(r.intervals for r in self.results)


def replay(
    ports: IngestPorts, tenant_id: str | None, keys: Sequence[str] | AllRecords, *, dry_run: bool = False
) -> ReplayReport:
    """Re-ingest quarantined records of one tenant; see `ReplayStatus` for what happens to each.

    A record rejected again is kept and rewritten with the new reason and detail, because the
    quarantine must say why a message is there *now* (after a meter is registered an
    `unknown_meter` record may turn out to be `unknown_meter_model`); the report keeps the previous
    reason. A dry run ingests into throw-away in-memory store and archive, with the real registry,
    so it reports exactly what a replay would do and changes nothing.

    Raises `QuarantineNotReplayable` for the unattributed area (tenant None): without a valid
    device topic there is no authenticated identity to ingest under. Every key is checked against
    the tenant first (`QuarantineKeyOutsideTenant`), before anything is replayed.
    """
    if tenant_id is None:
        raise QuarantineNotReplayable("unattributed messages have no device topic to replay them under")
    quarantine = ports.quarantine
    records: list[tuple[str, QuarantineRecord | None]]
    if isinstance(keys, AllRecords):
        records = [(r.key or "", r) for r in quarantine.list(tenant_id)]
    else:
        # Look every key up first: a key of another tenant refuses the whole command.
        records = [(key, quarantine.get(tenant_id, key)) for key in keys]
    target = (
        dataclasses.replace(
            ports,
            store=MemoryReadingStore(),
            archive=MemoryRawArchive(),
            events=MemoryChangeEvents(),
            ledger=MemoryLedger(),
            instantaneous=MemoryInstantaneousStore(),
        )
        if dry_run
        else ports
    )
    report = ReplayReport(tenant_id, dry_run)
    for key, record in records:
        report.results.append(
            _replay_one(target, key, record, dry_run) if record else ReplayResult(key, ReplayStatus.NOT_FOUND)
        )
    return report


def _replay_one(ports: IngestPorts, key: str, record: QuarantineRecord, dry_run: bool) -> ReplayResult:
    if record.topic is None:  # only unattributed records lack a topic; kept as a guard
        raise QuarantineNotReplayable(f"{key} has no topic to replay it under")
    message = DeviceMessage(record.message_id, record.original, record.topic, record.received_at)
    try:
        outcome = ingest_message(message, ports)
        if not dry_run:
            # Stored first, removed second: if the removal fails the record stays and the next
            # replay re-ingests it with no further effect.
            ports.quarantine.remove(record.tenant_id, key)
    except RejectedMessage as error:
        if not dry_run:
            ports.quarantine.put(dataclasses.replace(record, reason=error.reason, detail=str(error), key=key))
        return ReplayResult(key, ReplayStatus.STILL_REJECTED, error.reason, record.reason, str(error))
    except Exception as error:  # anything not about the message is transient, as in translate
        return ReplayResult(key, ReplayStatus.TRANSIENT_ERROR, record.reason, record.reason, repr(error))
    status = ReplayStatus.WOULD_REPLAY if dry_run else ReplayStatus.REPLAYED
    return ReplayResult(key, status, previous_reason=record.reason, intervals=outcome.intervals)
