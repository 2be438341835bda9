"""Tenant definitions: the shipped files are valid; a bad file fails with file, path and reason."""

from pathlib import Path

import pytest

from hemera.tenants import InvalidTenantFile, load_tenant_dir, load_tenant_file
from hemera_local.broker import acl_text

TENANTS = Path(__file__).resolve().parents[2] / "tenants"


def test_shipped_tenants_are_valid_and_in_different_time_zones():
    tenants = load_tenant_dir(TENANTS)
    assert len(tenants) >= 2
    assert len({t.timezone for t in tenants}) >= 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "id: bad\nname: x\ncountry: BR\ntimezone: Mars/Base\ncustomers: []\nrtus: []\nmeters: []\n",
            "timezone",
        ),
        (
            "id: bad\nname: x\ncountry: BR\ntimezone: UTC\ncustomers: []\nrtus: [{id: r1}]\nmeters: "
            "[{id: m1, model: hx300, protocol: modbus, rtu: r1, customer: nobody}]\n",
            "unknown customer nobody",
        ),
        (
            "id: other\nname: x\ncountry: BR\ntimezone: UTC\ncustomers: []\nrtus: []\nmeters: []\n",
            "must equal the file name",
        ),
        ("id: bad\n  name: [\n", "not YAML"),
    ],
)
def test_a_bad_tenant_file_names_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InvalidTenantFile, match=message) as info:
        load_tenant_file(path)
    assert str(path) in str(info.value)


def test_the_broker_acl_scopes_each_rtu_to_its_own_topics():
    acl = acl_text(load_tenant_dir(TENANTS))
    assert "user sul-energia:rtu-poa-01\ntopic readwrite hemera/sul-energia/rtu-poa-01/#" in acl
    assert "topic readwrite hemera/#" not in acl


@pytest.mark.parametrize(
    ("written", "expected"), [("400/5", "80"), ("13800/115", "120"), (1, "1"), ("2.5", "2.5")]
)
def test_transformer_ratios_are_read_as_utilities_write_them(written, expected):
    from decimal import Decimal

    from hemera.tenants import MeterDef

    meter = MeterDef(id="m-1", model="hx300", protocol="modbus", rtu="r", customer="c", ct_ratio=written)
    assert meter.multiplier == Decimal(expected)


@pytest.mark.parametrize("bad", ["400/0", "-5", "abc", "0"])
def test_a_bad_ratio_is_refused(bad):
    from pydantic import ValidationError

    from hemera.tenants import MeterDef

    with pytest.raises(ValidationError, match="ratio"):
        MeterDef(id="m-1", model="hx300", protocol="modbus", rtu="r", customer="c", vt_ratio=bad)
