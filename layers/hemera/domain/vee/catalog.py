"""Ids and versions of the VEE rules and estimators, and the AEMO codes they set.

A rule's version goes up whenever its logic changes, so a stored interval says which logic made
it (`FinalInterval.rule_id`/`rule_version`). Codes: AEMO MDFF (NEM12) method flags and reason
codes from the Metrology Procedure Part B, ESPI `qualityOfReading` (NAESB REQ.21), REFERENCE.md.
"""

from __future__ import annotations

from typing import Literal

# Validation rules (README "VEE: validation, estimation, editing" describes each).
INTERVAL_COUNT = "interval_count"
MISSING_INTERVAL = "missing_interval"
NEGATIVE_VALUE = "negative_value"
IMPLAUSIBLE_VALUE = "implausible_value"
SPIKE = "spike"
ZERO_WITH_REGISTER_ADVANCE = "zero_with_register_advance"
MAX_DEMAND = "max_demand"
CLOCK_EVENT = "clock_event"
OUTAGE = "outage"
REGISTER_SUM = "register_sum"
USAGE_VS_HISTORY = "usage_vs_history"
# Estimators of the ladder and the final reconciliation.
LINEAR = "estimate.linear"
LIKE_DAY = "estimate.like_day"
AVERAGE_LIKE_DAY = "estimate.average_like_day"
PREVIOUS_YEAR = "estimate.previous_year"
OUTAGE_ZERO = "estimate.outage_zero"
SCALE_TO_REGISTER = "estimate.scale_to_register"
EDIT = "edit"

RULE_VERSIONS: dict[str, int] = {
    INTERVAL_COUNT: 1,
    MISSING_INTERVAL: 1,
    NEGATIVE_VALUE: 1,
    IMPLAUSIBLE_VALUE: 1,
    SPIKE: 1,
    ZERO_WITH_REGISTER_ADVANCE: 1,
    MAX_DEMAND: 1,
    CLOCK_EVENT: 1,
    OUTAGE: 1,
    REGISTER_SUM: 1,
    USAGE_VS_HISTORY: 1,
    LINEAR: 1,
    LIKE_DAY: 1,
    AVERAGE_LIKE_DAY: 1,
    PREVIOUS_YEAR: 1,
    OUTAGE_ZERO: 1,
    SCALE_TO_REGISTER: 1,
    EDIT: 1,
}

# Rules a tenant may switch off (`vee.disabled_rules`); missing intervals are always reported.
DisableableRule = Literal[
    "interval_count",
    "negative_value",
    "implausible_value",
    "spike",
    "zero_with_register_advance",
    "max_demand",
    "clock_event",
    "outage",
    "register_sum",
    "usage_vs_history",
]
# The estimation ladder's steps, tried in the configured order.
EstimatorName = Literal["linear", "like_day", "average_like_day", "previous_year"]

# AEMO interval method flags (Metrology Procedure Part B).
METHOD_LIKE_DAY = 14
METHOD_AVERAGE_LIKE_DAY = 15
METHOD_LINEAR = 17
METHOD_ZERO = 19
METHOD_PREVIOUS_YEAR = 23
METHOD_SCALING = 24

# AEMO reason codes.
REASON_POWER_OUTAGE = 43
REASON_ZERO_CONSUMPTION = 68
REASON_LOW_CONSUMPTION = 73
REASON_HIGH_CONSUMPTION = 74
REASON_COMMS_FAULT = 76
REASON_POWER_OUTAGE_ALARM = 79
REASON_TIME_RESET = 89

# A history day holding one of these reasons had an outage: never a like day.
OUTAGE_REASONS = frozenset({REASON_POWER_OUTAGE, REASON_POWER_OUTAGE_ALARM})
