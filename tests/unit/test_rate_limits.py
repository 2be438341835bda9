"""Per-tenant rate limits: window math, the tenant file override, and the in-memory counter."""

from __future__ import annotations

import pytest
import yaml

from hemera.adapters.rate_limits_memory import MemoryRequestCounter
from hemera.adapters.tenant_documents import MemoryTenantDocuments
from hemera.domain.rate_limits import RateLimit, RateLimited, Window
from hemera.domain.tenancy import TenantContext
from hemera.services.rate_limits import StoredRateLimits, admit, limit_of
from hemera.services.tenant_settings import ApiLimitStore
from hemera.tenants import TenantDefinition
from tests.conftest import TENANTS_DIR
from tests.openapi_contract import SPEC

MINUTE = 1_790_000_040  # a window start (divisible by 60)


def every_tenant(limit: RateLimit) -> StoredRateLimits:
    """`limit` for every tenant: none has an allowance of its own stored."""
    return StoredRateLimits(ApiLimitStore(MemoryTenantDocuments()), default=limit)


def test_a_window_starts_on_the_minute_and_ends_sixty_seconds_later():
    assert Window.at(MINUTE + 59.9) == Window(MINUTE)
    assert Window.at(MINUTE + 60) == Window(MINUTE + 60)
    assert Window(MINUTE).end == MINUTE + 60
    assert Window(MINUTE).expires_at > Window(MINUTE).end


def test_the_request_past_the_allowance_is_refused_with_seconds_to_the_window_end():
    counter, limits, ctx = (
        MemoryRequestCounter(),
        every_tenant(RateLimit(3, burst=1)),
        TenantContext("acme"),
    )
    decisions = [admit(counter, limits, ctx, MINUTE + 10) for _ in range(4)]
    assert [d.remaining for d in decisions] == [3, 2, 1, 0]
    with pytest.raises(RateLimited) as refused:
        admit(counter, limits, ctx, MINUTE + 15.5)
    assert refused.value.decision.retry_after == 45
    assert refused.value.decision.limit == 4


def test_a_new_window_restores_the_allowance():
    counter, limits, ctx = MemoryRequestCounter(), every_tenant(RateLimit(1)), TenantContext("acme")
    admit(counter, limits, ctx, MINUTE + 59)
    assert admit(counter, limits, ctx, MINUTE + 60).remaining == 0


def test_one_tenants_burst_does_not_spend_anothers_allowance():
    counter, limits = MemoryRequestCounter(), every_tenant(RateLimit(1))
    admit(counter, limits, TenantContext("acme"), MINUTE)
    with pytest.raises(RateLimited):
        admit(counter, limits, TenantContext("acme"), MINUTE + 1)
    assert admit(counter, limits, TenantContext("acme-corp"), MINUTE + 1).allowed


def test_the_default_is_600_a_minute_and_a_tenant_file_overrides_it():
    tenants = [
        TenantDefinition.model_validate(yaml.safe_load(p.read_text())) for p in TENANTS_DIR.glob("*.yaml")
    ]
    # Given each tenant file's allowance stored as onboarding stores it
    store = ApiLimitStore(MemoryTenantDocuments())
    for tenant in tenants:
        store.put_limit(TenantContext(tenant.id), limit_of(tenant))
    limits = StoredRateLimits(store)
    # Then a tenant without an `api` section gets the platform default, one with it its own
    assert limits.of("sul-energia") == RateLimit(600, 0)
    assert limits.of("coastal-power") == RateLimit(1200, 100)
    assert limits.of("never-configured").per_window == 600


def test_a_changed_allowance_applies_after_the_minute_a_warm_function_keeps_it():
    now = [0.0]
    store = ApiLimitStore(MemoryTenantDocuments())
    limits = StoredRateLimits(store, clock=lambda: now[0])
    assert limits.of("acme") == RateLimit()
    store.put_limit(TenantContext("acme"), RateLimit(30))
    now[0] = 59.0
    assert limits.of("acme") == RateLimit()
    now[0] = 60.0
    assert limits.of("acme") == RateLimit(30)


@pytest.mark.parametrize(
    "api", [{"requests_per_minute": 0}, {"requests_per_minute": 10, "burst": -1}, {"rpm": 5}]
)
def test_a_tenant_file_with_a_bad_api_section_is_refused(api):
    document = yaml.safe_load((TENANTS_DIR / "sul-energia.yaml").read_text())
    with pytest.raises(ValueError, match="api"):
        TenantDefinition.model_validate({**document, "api": api})


def test_every_authenticated_operation_documents_429_with_retry_after():
    document = yaml.safe_load(SPEC.read_text())
    secured = [
        (path, method)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and operation.get("security", document["security"])
    ]
    assert secured
    for path, method in secured:
        assert document["paths"][path][method]["responses"]["429"] == {
            "$ref": "#/components/responses/TooManyRequests"
        }, (path, method)
    assert document["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"]["required"]
