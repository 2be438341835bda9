"""VEE: validation, estimation and editing of interval data (pure domain, no AWS library).

Entry point: `validate_estimate_edit(inputs, config, now, cause)`; README "VEE: validation,
estimation, editing" describes every rule and estimator with its id, version and parameters.
"""

from hemera.domain.vee.catalog import RULE_VERSIONS
from hemera.domain.vee.config import VeeConfig
from hemera.domain.vee.engine import latest_edits, validate_estimate_edit
from hemera.domain.vee.model import IntervalEdit, RuleFailure, VeeInputs, VeeOutcome

__all__ = [
    "RULE_VERSIONS",
    "IntervalEdit",
    "RuleFailure",
    "VeeConfig",
    "VeeInputs",
    "VeeOutcome",
    "latest_edits",
    "validate_estimate_edit",
]
