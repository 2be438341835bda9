"""The `hemera` command as a user runs it: `local up` / `local down`, and `demo` until ready."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.integration

HEMERA = str(Path(sys.executable).with_name("hemera"))


def wait_for_file(path: Path, process: subprocess.Popen, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        time.sleep(0.2)
    raise AssertionError(f"{path} did not appear within {timeout_s} s")


def test_local_up_serves_the_api_and_local_down_stops_every_process(tmp_path):
    up = subprocess.Popen(
        [HEMERA, "local", "up", "--state-dir", str(tmp_path), "--api-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        state = wait_for_file(tmp_path / "local.json", up, timeout_s=60)
        assert requests.get(f"{state['api_url']}/v1/health", timeout=5).json() == {"status": "ok"}
        down = subprocess.run(
            [HEMERA, "local", "down", "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 0 and "stopped" in down.stdout
        assert up.wait(timeout=30) == 0
        for name, pid in state["children"].items():
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(), (
                name
            )
        assert not (tmp_path / "local.json").exists()
    finally:
        if up.poll() is None:
            up.kill()


def test_demo_brings_a_full_local_day_for_every_meter(tmp_path):
    demo = subprocess.run(
        [
            HEMERA,
            "demo",
            "--state-dir",
            str(tmp_path),
            "--api-port",
            "0",
            "--speed",
            "20000",
            "--exit-when-ready",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    document = json.loads((tmp_path / "demo.json").read_text())
    assert set(document["tenants"]) == {"sul-energia", "coastal-power"}
    for tenant in document["tenants"].values():
        assert tenant["api_key"].startswith("hmk_")
        assert [m["intervals"] for m in tenant["meters"]] == [96] * len(tenant["meters"])
        assert all(m["active_import_kwh"] > 0 for m in tenant["meters"])
        assert "curl -s -H 'x-api-key: " in tenant["curl"]
    assert "load-profile?from=" in demo.stdout
    # each tenant's alarm notifications are set up; the webhook tenant's signing secret shown once
    notifications = {t: document["tenants"][t]["notifications"] for t in document["tenants"]}
    assert notifications["sul-energia"]["channels"] == ["email:medicao@sul-energia.example"]
    assert notifications["sul-energia"]["webhook_secret"] is None
    assert notifications["coastal-power"]["webhook_secret"]
    assert f"webhook signing secret {notifications['coastal-power']['webhook_secret']}" in demo.stdout


def hemera_login(state_dir: Path, user: str, password: str) -> subprocess.CompletedProcess[str]:
    argv = [HEMERA, "login", "--user", user, "--password", password, "--state-dir", str(state_dir)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_demo_prints_portal_logins_whose_tokens_the_api_accepts(tmp_path):
    demo = subprocess.Popen(
        [HEMERA, "demo", "--state-dir", str(tmp_path), "--api-port", "0", "--speed", "20000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        document = wait_for_file(tmp_path / "demo.json", demo, timeout_s=240)
        tenant = document["tenants"]["coastal-power"]
        operator, customer_user = tenant["logins"]
        assert (operator["group"], customer_user["group"]) == ("operator", "customer")

        def meters_as(login: dict) -> requests.Response:
            token = hemera_login(tmp_path, login["username"], login["password"])
            assert token.returncode == 0, token.stdout + token.stderr
            return requests.get(
                f"{document['api_url']}/v1/meters",
                headers={"Authorization": f"Bearer {token.stdout.strip()}"},
                timeout=10,
            )

        seen_by_operator = meters_as(operator)
        seen_by_customer = meters_as(customer_user)
        assert seen_by_operator.status_code == 200
        assert {m["id"] for m in seen_by_operator.json()["items"]} == {m["id"] for m in tenant["meters"]}
        assert seen_by_customer.status_code == 200
        assert {m["customer_id"] for m in seen_by_customer.json()["items"]} == {customer_user["customer"]}
        assert hemera_login(tmp_path, operator["username"], "not-the-password").returncode == 1
    finally:
        subprocess.run([HEMERA, "local", "down", "--state-dir", str(tmp_path)], timeout=60, check=False)
        output = demo.communicate(timeout=60)[0]
    for login in (operator, customer_user):
        assert f"--user {login['username']} --password {login['password']}" in output
    assert "hemera login --user U --password P" in output


def test_sim_runs_a_fleet_with_its_own_cloud_and_one_agent_per_rtu(tmp_path):
    scenario = Path(__file__).resolve().parents[2] / "device_agent" / "scenarios" / "small-fleet.yaml"
    sim = subprocess.run(
        [
            HEMERA,
            "sim",
            str(scenario),
            "--state-dir",
            str(tmp_path),
            "--speed",
            "20000",
            "--exit-after",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert sim.returncode == 0, sim.stdout[-3000:] + sim.stderr[-3000:]
    stored = {
        line.split()[1].rstrip(":"): int(line.split()[2])
        for line in sim.stdout.splitlines()
        if line.startswith("stored ")
    }
    # 2 generated tenants x 2 RTUs x 3 meters, plus Sul Energia's three (one of them DLMS)
    assert len(stored) == 15
    # at 20,000x the meters caught up within seconds: at least a full day each reached the store
    assert min(stored.values()) >= 96, stored
    assert "agent config" in sim.stdout and not (tmp_path / "local.json").exists()


def test_a_busy_api_port_is_a_clear_error_and_leaves_nothing_running(tmp_path):
    import socket

    from hemera_local.cloud import LocalCloud, LocalCloudConfig, LocalCloudError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cloud = LocalCloud(LocalCloudConfig(state_dir=tmp_path, api_port=port))
        with pytest.raises(LocalCloudError, match=f"port {port} is in use"):
            cloud.start()
    assert not (tmp_path / "local.json").exists()
    # the broker it had started is gone again
    assert subprocess.run(["pgrep", "-f", str(tmp_path / "broker")], capture_output=True).returncode == 1


def test_local_down_leaves_alone_a_process_that_reused_a_recorded_pid(tmp_path):
    from hemera_local.cloud import LocalCloudState, process_start

    # Given a stale local.json whose pid now belongs to an unrelated process
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        LocalCloudState(
            pid=bystander.pid,
            moto_url="http://127.0.0.1:1",
            mqtt_host="127.0.0.1",
            mqtt_port=1,
            api_url=None,
            ca_file="-",
            started={str(bystander.pid): process_start(bystander.pid) - 1},
        ).write(tmp_path)
        # When `hemera local down` runs
        down = subprocess.run(
            [HEMERA, "local", "down", "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        # Then it signals nothing and the bystander still runs
        assert down.returncode == 0 and bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
