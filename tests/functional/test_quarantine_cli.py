"""`hemera quarantine list|show|replay` through typer's CliRunner, against moto (`--aws`)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console
from typer.testing import CliRunner

from hemera.config import AwsMode
from hemera.domain.registry import Meter
from hemera.domain.tenancy import TenantContext
from hemera.ports import QuarantineRecord
from hemera.wiring import ingest_ports
from hemera_local import quarantine_cli
from hemera_local.cloud import LocalCloudState
from hemera_local.quarantine_cli import original_text, quarantine_app, target_settings
from tests.builders import hx300_envelope

TENANT = "sul-energia"
TOPIC = "hemera/sul-energia/rtu-poa-01/up/telemetry"
DAY = datetime(2026, 11, 20, 3, tzinfo=UTC)
KEY = "tenants/sul-energia/quarantine/2026-11-20/m-new.json"
GARBAGE_KEY = "tenants/sul-energia/quarantine/2026-11-20/m-bad.json"


@pytest.fixture
def cli(moto_cloud, monkeypatch):
    """Given a quarantined message of an unregistered meter and a garbage one; returns `run`."""
    quarantine = ingest_ports(moto_cloud).quarantine
    envelope = hx300_envelope(TENANT, "rtu-poa-01", "sul-m-9999", DAY, [1000] * 11).to_json()
    quarantine.put(QuarantineRecord(TENANT, "unknown_meter", "not registered", TOPIC, "m-new", DAY, envelope))
    quarantine.put(
        QuarantineRecord(TENANT, "malformed_envelope", "not json", TOPIC, "m-bad", DAY, b"\x00\xff")
    )
    quarantine.put(QuarantineRecord("coastal-power", "malformed_envelope", "x", None, "c-1", DAY, b"\x01"))

    def run(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        monkeypatch.setattr(quarantine_cli, "console", Console(file=out, width=400))
        result = CliRunner().invoke(quarantine_app, [*args, "--aws"])
        return result.exit_code, out.getvalue()

    return run


def test_list_shows_every_tenant_or_one_tenant_and_one_reason(cli):
    code, out = cli("list")
    assert code == 0 and KEY in out and GARBAGE_KEY in out and "coastal-power" in out
    code, out = cli("list", "--tenant", TENANT, "--reason", "unknown_meter")
    assert code == 0 and KEY in out and GARBAGE_KEY not in out and "coastal-power" not in out


def test_show_prints_the_reason_and_the_original_bytes(cli):
    code, out = cli("show", KEY, "--tenant", TENANT)
    assert code == 0 and "unknown_meter" in out and TOPIC in out and '"meter":"sul-m-9999"' in out
    code, out = cli("show", GARBAGE_KEY, "--tenant", TENANT)
    assert code == 0 and "00000000  00 ff" in out


def test_show_refuses_a_key_of_another_tenant(cli):
    code, out = cli("show", KEY, "--tenant", "coastal-power")
    assert code == 2 and "refused" in out and "unknown_meter" not in out


def test_replay_after_registering_the_meter(cli, moto_cloud):
    meter = Meter(TENANT, "sul-m-9999", "hx300", "modbus", "rtu-poa-01", "c-9")
    ingest_ports(moto_cloud).registry.put_meter(TenantContext(TENANT), meter)
    code, out = cli("replay", "--tenant", TENANT, "--all", "--dry-run")
    assert code == 0 and "would_replay" in out and "dry run" in out
    assert len(list(ingest_ports(moto_cloud).quarantine.list(TENANT))) == 2
    code, out = cli("replay", "--tenant", TENANT, "--all")
    assert code == 0 and "1 replayed, 1 still_rejected; 44 intervals" in out
    assert [r.key for r in ingest_ports(moto_cloud).quarantine.list(TENANT)] == [GARBAGE_KEY]


def test_replay_needs_keys_or_all_and_refuses_foreign_keys(cli):
    assert cli("replay", "--tenant", TENANT)[0] == 2
    assert cli("replay", "--tenant", TENANT, KEY, "--all")[0] == 2
    code, out = cli("replay", "--tenant", "coastal-power", KEY)
    assert code == 2 and "refused" in out


def test_the_default_target_is_the_running_local_cloud(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")  # setdefault in target_settings leaves these
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    LocalCloudState(1, "http://127.0.0.1:5999", "127.0.0.1", 8883, None, "ca.pem").write(tmp_path)
    settings = target_settings(tmp_path, use_aws=False, env={"AWS_REGION": "eu-west-1"})
    assert (settings.aws.mode, settings.aws.endpoint_url, settings.aws.region) == (
        AwsMode.LOCAL,
        "http://127.0.0.1:5999",
        "eu-west-1",
    )
    assert settings.quarantine_bucket == "hemera-quarantine"


def test_original_bytes_are_text_when_printable_else_hex():
    assert original_text(b'{"a": 1}\n') == '{"a": 1}\n'
    assert original_text(b"ok", as_hex=True) == "00000000  6f 6b"
    assert original_text(bytes(range(18))).splitlines()[1] == "00000010  10 11"
