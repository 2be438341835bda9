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
