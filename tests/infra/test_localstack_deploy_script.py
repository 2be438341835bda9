"""`localstack/deploy.sh` parses, passes shellcheck (when installed) and refuses a dead endpoint."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

from hemera_infra.constants import REPO_ROOT

DEPLOY_SCRIPT = REPO_ROOT / "localstack" / "deploy.sh"


def test_deploy_script_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(DEPLOY_SCRIPT)], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr


def test_deploy_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")

    result = subprocess.run([shellcheck, str(DEPLOY_SCRIPT)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.skipif(shutil.which("curl") is None, reason="the script checks LocalStack with curl")
def test_deploy_script_stops_when_localstack_does_not_answer() -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"

    result = subprocess.run(
        ["bash", str(DEPLOY_SCRIPT)],
        env={**os.environ, "LOCALSTACK_ENDPOINT": endpoint},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert f"LocalStack does not answer on {endpoint}/_localstack/health" in result.stderr
