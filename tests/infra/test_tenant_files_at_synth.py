"""A bad tenant file fails `cdk synth`, not the night run."""

from __future__ import annotations

from pathlib import Path

import pytest

from hemera.tenants import InvalidTenantFile
from hemera_infra.application import build_app

SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}
BAD_TENANT = """\
id: broken-utility
name: Broken Utility
country: Brazil            # not an ISO 3166 alpha-2 code
timezone: Mars/Olympus_Mons
customers: []
rtus: []
meters: []
"""


def test_bad_tenant_file_fails_synth(tmp_path: Path) -> None:
    (tmp_path / "broken-utility.yaml").write_text(BAD_TENANT)

    with pytest.raises(InvalidTenantFile, match=r"broken-utility\.yaml"):
        build_app(tmp_path, context=SKIP_BUNDLING)


def test_tenant_folder_can_come_from_context(tmp_path: Path) -> None:
    (tmp_path / "broken-utility.yaml").write_text(BAD_TENANT)

    with pytest.raises(InvalidTenantFile):
        build_app(context={**SKIP_BUNDLING, "hemera:tenantsDir": str(tmp_path)})


def test_tenant_file_named_differently_from_its_id_fails_synth(tmp_path: Path) -> None:
    (tmp_path / "other-name.yaml").write_text(
        BAD_TENANT.replace("Brazil", "BR").replace("Mars/Olympus_Mons", "UTC")
    )

    with pytest.raises(InvalidTenantFile, match="must equal the file name"):
        build_app(tmp_path, context=SKIP_BUNDLING)


def test_missing_tenant_folder_fails_synth(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_app(tmp_path / "nowhere", context=SKIP_BUNDLING)
