"""VEE configuration: documented defaults, tenant overrides, a stable version label."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from hemera.domain.vee import VeeConfig
from hemera.tenants import VeeOverrides, load_tenant_dir

TENANTS = Path(__file__).resolve().parents[3] / "tenants"


def test_defaults_and_a_stable_version_label():
    config = VeeConfig.for_tenant(None)
    assert config.spike_factor == Decimal(3) and config.linear_max_gap_minutes == 60
    assert config.estimation_order == ("linear", "like_day", "average_like_day", "previous_year")
    assert config.version == VeeConfig().version and config.version.startswith("e1-")


def test_tenant_overrides_change_only_what_they_name_and_the_version():
    overrides = VeeOverrides(
        spike_factor=Decimal(4), estimation_order=("like_day",), disabled_rules=("max_demand",)
    )
    config = VeeConfig.for_tenant(overrides)
    assert config.spike_factor == Decimal(4) and config.estimation_order == ("like_day",)
    assert not config.enabled("max_demand") and config.enabled("spike")
    assert config.linear_max_gap_minutes == 60
    assert config.version != VeeConfig().version


def test_every_override_is_a_config_parameter():
    assert set(VeeOverrides.model_fields) <= set(VeeConfig.model_fields)


def test_unknown_rules_and_estimators_are_rejected():
    with pytest.raises(ValidationError):
        VeeOverrides.model_validate({"disabled_rules": ["missing_interval"]})
    with pytest.raises(ValidationError):
        VeeOverrides.model_validate({"estimation_order": ["profile"]})


def test_the_shipped_tenants_have_a_config():
    for tenant in load_tenant_dir(TENANTS):
        assert VeeConfig.for_tenant(tenant.vee).version.startswith("e1-")


def test_overrides_that_contradict_the_defaults_fail_the_tenant_file():
    # average_like_day_min 6 > the default count 4
    with pytest.raises(ValidationError, match="average_like_day_min must not exceed average_like_day_count"):
        VeeOverrides.model_validate({"average_like_day_min": 6})
    assert (
        VeeConfig.for_tenant(
            VeeOverrides(average_like_day_min=6, average_like_day_count=6)
        ).average_like_day_min
        == 6
    )
    with pytest.raises(ValidationError, match="twice"):
        VeeOverrides.model_validate({"estimation_order": ["linear", "linear"]})
