"""Each tenant's VEE overrides as onboarding stores them: the fake and the DynamoDB adapter pass
the same cases, and the VEE configuration read from them follows a changed file within its TTL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hemera.adapters.vee_settings_memory import MemoryVeeSettings
from hemera.domain.tenancy import TenantContext
from hemera.domain.vee import VeeConfig
from hemera.services.vee import StoredVeeSettings
from hemera.tenants import VeeOverrides
from hemera.wiring import vee_settings_store

ACME, CORP = TenantContext("acme"), TenantContext("acme-corp")


@pytest.fixture(params=["memory", "aws"])
def store(request, moto_cloud):
    return MemoryVeeSettings() if request.param == "memory" else vee_settings_store(moto_cloud)


def test_overrides_round_trip_per_tenant_and_none_clears_them(store):
    overrides = VeeOverrides(
        spike_factor=Decimal("4.5"), disabled_rules=("usage_vs_history",), linear_max_gap_minutes=30
    )
    store.put_overrides(ACME, overrides)

    assert store.overrides(ACME) == overrides
    assert store.overrides(CORP) is None  # another tenant (its prefix starts alike) sees nothing
    store.put_overrides(ACME, None)
    assert store.overrides(ACME) is None
    store.put_overrides(ACME, None)  # clearing what is not there is fine


def test_the_stored_configuration_follows_a_changed_file_after_its_ttl(store):
    now = [0.0]
    settings = StoredVeeSettings(store, ttl_s=60, clock=lambda: now[0])
    assert settings.config("acme") == VeeConfig.for_tenant(None)
    # When the tenant file changes (onboarding stores the new overrides)
    store.put_overrides(ACME, VeeOverrides(linear_max_gap_minutes=30))
    # Then a warm function keeps its configuration for the TTL, and reads the new one after it
    now[0] = 59.0
    assert settings.config("acme") == VeeConfig.for_tenant(None)
    now[0] = 60.0
    assert settings.config("acme") == VeeConfig.for_tenant(VeeOverrides(linear_max_gap_minutes=30))
