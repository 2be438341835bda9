"""Alarm settings from a tenant file: the documented defaults, the tenant's overrides, its nominal
voltage and contracted demands; a bad `alarms:` section fails the file with its path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from hemera.domain.alarms import AlarmThresholds, AlarmType
from hemera.services.alarms import alarm_settings_of
from hemera.tenants import InvalidTenantFile, load_tenant_file
from tests.conftest import TENANTS_DIR


def _with_alarms(tmp_path: Path, alarms: dict) -> Path:
    document = yaml.safe_load((TENANTS_DIR / "sul-energia.yaml").read_text())
    document["alarms"] = alarms
    path = tmp_path / "sul-energia.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_the_defaults_are_the_documented_brazilian_ones():
    t = AlarmThresholds()
    assert (t.voltage_min_pu, t.voltage_max_pu) == (Decimal("0.93"), Decimal("1.05"))
    assert (t.power_factor_min, t.demand_tolerance) == (Decimal("0.92"), Decimal("0.05"))
    assert t.voltage_unbalance_max_pct == Decimal("3.0")


def test_a_tenant_file_gives_nominal_voltage_and_contracts_and_defaults_otherwise():
    settings = alarm_settings_of(load_tenant_file(TENANTS_DIR / "sul-energia.yaml"))
    assert settings.nominal_voltage_v == Decimal(127)
    assert settings.contracted_demand_kw["sul-m-1001"] == Decimal(900)
    assert settings.thresholds == AlarmThresholds()


def test_overrides_replace_only_what_they_name(tmp_path: Path):
    path = _with_alarms(
        tmp_path,
        {"voltage_min_pu": 0.94, "voltage_max_pu": 1.1, "silence_hours": 2, "disabled": ["relay_open"]},
    )
    settings = alarm_settings_of(load_tenant_file(path))

    assert (settings.thresholds.voltage_min_pu, settings.thresholds.voltage_max_pu) == (
        Decimal("0.94"),
        Decimal("1.1"),
    )
    assert settings.thresholds.silence_hours == Decimal(2)
    assert settings.thresholds.power_factor_min == Decimal("0.92")
    assert settings.disabled == frozenset({AlarmType.RELAY_OPEN})


@pytest.mark.parametrize(
    ("alarms", "where"),
    [
        ({"disabled": ["snooze"]}, "alarms.disabled[0]"),
        ({"power_factor_min": 1.2}, "alarms.power_factor_min"),
        ({"voltage_max_pu": 0.9}, "alarms.voltage_max_pu"),
        ({"vee_failure_days": 5, "vee_window_days": 3}, "alarms"),
    ],
)
def test_a_bad_alarms_section_names_its_path(tmp_path: Path, alarms: dict, where: str):
    with pytest.raises(InvalidTenantFile) as error:
        load_tenant_file(_with_alarms(tmp_path, alarms))
    assert [p for p, _ in error.value.problems] == [where]
