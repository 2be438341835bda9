"""A tenant's settings documents (VEE overrides, portal allowance) as onboarding stores them: the
fake and the DynamoDB adapter pass the same cases, and the VEE configuration read from them
follows a changed file within its TTL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hemera.adapters.tenant_documents import MemoryTenantDocuments
from hemera.domain.rate_limits import RateLimit
from hemera.domain.tenancy import TenantContext
from hemera.domain.vee import VeeConfig
from hemera.services.tenant_settings import ApiLimitStore, VeeSettingsStore
from hemera.services.vee import StoredVeeSettings
from hemera.tenants import VeeOverrides
from hemera.wiring import api_limit_store, vee_settings_store

ACME, CORP = TenantContext("acme"), TenantContext("acme-corp")


@pytest.fixture(params=["memory", "aws"])
def store(request, moto_cloud):
    return (
        VeeSettingsStore(MemoryTenantDocuments())
        if request.param == "memory"
        else vee_settings_store(moto_cloud)
    )


@pytest.fixture(params=["memory", "aws"])
def limits(request, moto_cloud):
    return (
        ApiLimitStore(MemoryTenantDocuments()) if request.param == "memory" else api_limit_store(moto_cloud)
    )


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


def test_an_allowance_round_trips_per_tenant_and_none_clears_it(limits):
    limits.put_limit(ACME, RateLimit(1200, 100))
    assert limits.limit(ACME) == RateLimit(1200, 100)
    assert limits.limit(CORP) is None
    limits.put_limit(ACME, None)
    assert limits.limit(ACME) is None


def test_a_tenants_two_kinds_of_document_are_kept_apart(moto_cloud):
    overrides, allowance = VeeOverrides(linear_max_gap_minutes=30), RateLimit(1200, 100)
    vee_settings_store(moto_cloud).put_overrides(ACME, overrides)
    api_limit_store(moto_cloud).put_limit(ACME, allowance)
    assert vee_settings_store(moto_cloud).overrides(ACME) == overrides
    assert api_limit_store(moto_cloud).limit(ACME) == allowance
