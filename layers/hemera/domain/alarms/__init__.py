"""Alarms: the catalogue of alarm types, their thresholds (PRODIST Módulo 8, ANEEL REN 1000/2021
defaults), the rules that observe conditions, the lifecycle (open → acknowledged → closed, no
duplicate open alarm, flapping suppressed) and the theft/tamper suspicion score. Pure: no AWS."""

from hemera.domain.alarms.catalog import CATALOG, AlarmSpec, AlarmType, Closing, Feed, Severity, spec_of
from hemera.domain.alarms.lifecycle import (
    ACTIVE_STATES,
    Alarm,
    AlarmConflict,
    AlarmForbidden,
    AlarmKey,
    AlarmNotFound,
    AlarmState,
    Observation,
    Step,
    acknowledge,
    apply_observation,
    close,
    close_if_quiet,
    new_alarm_id,
)
from hemera.domain.alarms.theft import TheftFact, TheftScore, theft_score
from hemera.domain.alarms.thresholds import AlarmSettings, AlarmThresholds

__all__ = [
    "ACTIVE_STATES",
    "CATALOG",
    "Alarm",
    "AlarmConflict",
    "AlarmForbidden",
    "AlarmKey",
    "AlarmNotFound",
    "AlarmSettings",
    "AlarmSpec",
    "AlarmState",
    "AlarmThresholds",
    "AlarmType",
    "Closing",
    "Feed",
    "Observation",
    "Severity",
    "Step",
    "TheftFact",
    "TheftScore",
    "acknowledge",
    "apply_observation",
    "close",
    "close_if_quiet",
    "new_alarm_id",
    "spec_of",
    "theft_score",
]
