"""alarms: evaluate the alarm rules and announce every alarm transition (`AlarmChanged`).

Two ways in, one function:
- an SQS batch of platform events (EventBridge rules → SQS): MeterEventsRecorded (device events),
  MeterDaysChanged (power factor and demand on the changed days), FinalDaysChanged (repeated VEE
  failures) and MeterReadsExhausted; a record that cannot be read or evaluated fails alone and SQS
  delivers it again (after 3 receives, the DLQ);
- the sweep schedule (`{"job": "alarm_sweep"}`; the local scheduler sends it as the event's
  `detail`): communication failures, the instantaneous rules, quiet one-shot alarms closed.

Thin entry point: unwrap the events, call the alarms service, shape the partial-batch response.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from hemera.config import RuntimeSettings
from hemera.definitions import (
    ALARM_EVENT_RULES,
    ALARM_SWEEP,
    ALARM_SWEEP_JOB,
    METER_EVENTS_RECORDED,
    READS_EXHAUSTED,
    SERIES_CHANGED,
    SERIES_VALIDATED,
)
from hemera.domain.alarm_transition import AlarmTransition
from hemera.domain.alarms import AlarmConflict
from hemera.domain.alarms.rules import ReadsExhausted
from hemera.domain.errors import HemeraError
from hemera.domain.final_series import FinalDayChange
from hemera.domain.meter_events import event_from_detail
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.observability import logger, metrics, tracer
from hemera.services.alarms import (
    AlarmPorts,
    ChangedDay,
    on_final_days,
    on_meter_events,
    on_reads_exhausted,
    on_series_changed,
    sweep,
)
from hemera.wiring import alarm_ports

_ACCEPTED = {(rule.source, rule.detail_type) for rule in ALARM_EVENT_RULES}
# The interval rules read these channels; changes of the others cannot change an alarm.
_INTERVAL_CHANNELS = {Channel.ACTIVE_IMPORT.value, Channel.REACTIVE_IMPORT.value}


class MalformedAlarmInput(HemeraError):
    reason = "malformed_alarm_input"


@cache
def _ports() -> AlarmPorts:
    return alarm_ports(RuntimeSettings.from_environ(os.environ))


def evaluate(body: str, ports: AlarmPorts, now: datetime) -> tuple[str, list[AlarmTransition]]:
    """Evaluate the platform event one SQS body carries; returns (tenant, transitions)."""
    try:
        event = EventBridgeEvent(json.loads(body))
        kind = (event.source, event.detail_type)
        detail = event.detail
        if kind not in _ACCEPTED:
            raise MalformedAlarmInput(f"unexpected event {event.source}/{event.detail_type}")
        ctx = TenantContext(str(detail["tenant"]), str(detail.get("correlation_id") or event.get_id))
        if event.detail_type == METER_EVENTS_RECORDED:
            events = [event_from_detail(e) for e in detail["events"]]
            return ctx.tenant_id, on_meter_events(ports, ctx, events)
        if event.detail_type == SERIES_CHANGED:
            days = [
                ChangedDay(str(c["meter"]), date.fromisoformat(str(c["day"])))
                for c in detail["changes"]
                if c["channel"] in _INTERVAL_CHANNELS
            ]
            return ctx.tenant_id, on_series_changed(ports, ctx, days)
        if event.detail_type == SERIES_VALIDATED:
            changes = [FinalDayChange.from_detail(d) for d in detail["days"]]
            return ctx.tenant_id, on_final_days(ports, ctx, changes, now)
        assert event.detail_type == READS_EXHAUSTED
        exhausted = ReadsExhausted(
            meter_id=str(detail["meter_id"]),
            device_id=str(detail["device_id"]),
            channel=str(detail["channel"]),
            gap_start=datetime.fromisoformat(str(detail["gap_start"])),
            gap_end=datetime.fromisoformat(str(detail["gap_end"])),
            attempts=int(detail["attempts"]),
        )
        return ctx.tenant_id, on_reads_exhausted(ports, ctx, exhausted, now)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedAlarmInput(f"not an alarm input: {type(exc).__name__}: {exc}") from exc


def _log_transitions(transitions: list[AlarmTransition]) -> None:
    for t in transitions:
        logger.info(
            "alarm transition",
            extra={
                "alarm": t.alarm_id,
                "type": t.alarm_type,
                "subject": f"{t.subject}:{t.subject_id}",
                "state": t.state,
                "previous_state": t.previous_state,
            },
        )
    metrics.add_metric(name="AlarmTransitions", unit="Count", value=len(transitions))


def _sweep() -> dict[str, Any]:
    outcome = sweep(_ports(), datetime.now(UTC), timedelta(minutes=ALARM_SWEEP.rate_minutes))
    _log_transitions(outcome.transitions)
    logger.info("alarm sweep", extra={"tenants": outcome.tenants, "observations": outcome.observations})
    return {
        "tenants": outcome.tenants,
        "observations": outcome.observations,
        "transitions": len(outcome.transitions),
    }


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The EventBridge schedule sends its payload as the event; the local scheduler as `detail`.
    if ALARM_SWEEP_JOB in (event.get("job"), (event.get("detail") or {}).get("job")):
        return _sweep()
    failed: list[str] = []
    transitions: list[AlarmTransition] = []
    for record in SQSEvent(event).records:
        try:
            tenant, caused = evaluate(record.body, _ports(), datetime.now(UTC))
            logger.append_keys(tenant=tenant, correlation_id=record.message_id)
            transitions += caused
        except (MalformedAlarmInput, AlarmConflict) as error:
            # Retried like any failure, then kept in the DLQ for a person to look at.
            logger.warning(
                "alarm input not evaluated, will be retried",
                extra={"reason": error.reason, "detail": str(error), "message_id": record.message_id},
            )
            failed.append(record.message_id)
        except Exception:  # storage or bus failure: this record alone is retried
            logger.exception(
                "alarm evaluation failed, will be retried", extra={"message_id": record.message_id}
            )
            failed.append(record.message_id)
    logger.remove_keys(["tenant", "correlation_id"])
    _log_transitions(transitions)
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}
