"""Fixtures shared by the suites: the moto-backed cloud with the demo tenants registered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TENANTS_DIR = REPO_ROOT / "tenants"


@pytest.fixture
def moto_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """In-process moto with the local cloud's resources and the demo tenants registered."""
    from moto import mock_aws

    from hemera.config import AwsMode, AwsTarget, RuntimeSettings
    from hemera.services.onboarding import onboard_tenant
    from hemera.tenants import load_tenant_dir
    from hemera.wiring import onboarding_stores
    from hemera_local.resources import create_resources

    monkeypatch.delenv("HEMERA_AWS_ENDPOINT", raising=False)  # in-process moto: default endpoints
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    from hemera_local.bridge import cold_start

    with mock_aws():
        target = AwsTarget(mode=AwsMode.AWS, region="us-east-1")
        create_resources(target)
        settings = RuntimeSettings.local(target)
        for key, value in settings.environ().items():
            monkeypatch.setenv(key, value)
        cold_start()  # the functions read these settings on their next invocation
        for tenant in load_tenant_dir(TENANTS_DIR):
            onboard_tenant(onboarding_stores(settings), tenant)
        yield settings
