"""VEE configuration: every rule and estimator parameter with its platform default.

A tenant changes defaults in its file (`vee:` section, `hemera.tenants.VeeOverrides`); the
effective configuration gets a stable `version` label (a digest of every parameter) that the VEE
service stores with its results, so a final day says which configuration produced it.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from hemera.domain.vee.catalog import DisableableRule, EstimatorName

if TYPE_CHECKING:  # the tenant schema lives outside the domain; only its fields are read here
    from hemera.tenants import VeeOverrides

# Bumped when the engine's shared logic (not one rule's) changes.
ENGINE_VERSION = 1


class VeeConfig(BaseModel):
    """Parameters of the VEE rules and of the estimation ladder (README lists each with its rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- validation --------------------------------------------------------------------------
    # Spike ("demand tolerance on consecutive intervals"): an interval fails when its demand is
    # more than `spike_factor` times the higher of its nearest valid neighbours' demand AND more
    # than `spike_min_delta_kw` above it (the floor keeps a near-idle load's jitter from failing).
    spike_factor: Decimal = Field(default=Decimal(3), gt=1)
    spike_min_delta_kw: Decimal = Field(default=Decimal(5), ge=0)
    # Zero consumption: a run of at least this many zero intervals (outside outages) fails when
    # the register readings bracketing it advanced by more than the intervals around it explain.
    zero_run_intervals: int = Field(default=4, ge=1)
    zero_register_tolerance: Decimal = Field(default=Decimal("0.5"), ge=0)
    # Implausible: demand above `implausible_demand_multiple` x the meter's demand limit, or above
    # `implausible_demand_kw` when set (for meters without a limit).
    implausible_demand_multiple: Decimal = Field(default=Decimal(3), gt=1)
    implausible_demand_kw: Decimal | None = Field(default=None, gt=0)
    # Clock events: intervals within this many intervals either side of a clock reset/adjustment
    # (and intervals carrying the meter's clock-adjusted bit) are suspect.
    clock_suspect_intervals: int = Field(default=1, ge=0)
    # Register sum: |interval total - register delta| must stay within
    # max(`register_sum_tolerance`, `register_sum_tolerance_ratio` x delta).
    register_sum_tolerance: Decimal = Field(default=Decimal(1), ge=0)
    register_sum_tolerance_ratio: Decimal = Field(default=Decimal("0.01"), ge=0, lt=1)
    # A register reading counts as "at" a day boundary when within this many minutes of it.
    register_window_minutes: int = Field(default=5, ge=0, le=60)
    # High/low usage against the mean of the last `usage_history_days` same-weekday days.
    usage_high_factor: Decimal = Field(default=Decimal(2), gt=1)
    usage_low_factor: Decimal = Field(default=Decimal("0.25"), ge=0, lt=1)
    usage_history_days: int = Field(default=4, ge=1)
    usage_min_history_days: int = Field(default=2, ge=1)
    disabled_rules: tuple[DisableableRule, ...] = ()

    # -- estimation --------------------------------------------------------------------------
    estimation_order: tuple[EstimatorName, ...] = ("linear", "like_day", "average_like_day", "previous_year")
    # Linear interpolation only bridges gaps up to this long (IESO: one hour).
    linear_max_gap_minutes: int = Field(default=60, ge=0)
    # Like day: the nearest like day at most this many days back.
    like_day_max_age_days: int = Field(default=14, ge=1)
    # Average like day: the mean of the last `average_like_day_count` valid like days within
    # `average_like_day_window_days`, when at least `average_like_day_min` exist.
    average_like_day_count: int = Field(default=4, ge=1)
    average_like_day_min: int = Field(default=2, ge=1)
    average_like_day_window_days: int = Field(default=56, ge=1)
    # Previous year: the same weekday 52 weeks back, or the nearest same-type day within ± this.
    previous_year_window_days: int = Field(default=7, ge=0)
    # Runs of more consecutive intervals than this are not estimated (left for re-reads/edits).
    max_estimated_gap_intervals: int | None = Field(default=None, ge=0)
    # Scale estimates so the day reconciles with the register delta (both readings actual).
    scale_to_register: bool = True
    # Missing intervals wholly inside an outage are filled with zero (no supply, no energy).
    outage_zero_fill: bool = True
    # Estimated values are rounded to this many decimal places of the channel's unit.
    decimals: int = Field(default=3, ge=0, le=6)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def version(self) -> str:
        """A stable label of the effective configuration: `e<engine>-<digest of parameters>`."""
        parameters = self.model_dump(mode="json", exclude={"version"})
        digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:12]
        return f"e{ENGINE_VERSION}-{digest}"

    @model_validator(mode="after")
    def _consistent(self) -> VeeConfig:
        problems = []
        if self.average_like_day_min > self.average_like_day_count:
            problems.append("average_like_day_min must not exceed average_like_day_count")
        if self.usage_min_history_days > self.usage_history_days:
            problems.append("usage_min_history_days must not exceed usage_history_days")
        if len(set(self.estimation_order)) != len(self.estimation_order):
            problems.append("estimation_order names an estimator twice")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def enabled(self, rule_id: str) -> bool:
        return rule_id not in self.disabled_rules

    @classmethod
    def for_tenant(cls, overrides: VeeOverrides | None) -> VeeConfig:
        """The platform defaults with the tenant's overrides (fields it leaves out keep them)."""
        if overrides is None:
            return cls()
        return cls.model_validate(overrides.model_dump(exclude_none=True))
