"""Tenant-first delimited keys: no tenant can reach another's items by prefix."""

import pytest

from hemera.domain.errors import InvalidTenantId
from hemera.domain.tenancy import TenantContext, parse_device_topic, series_sk, thing_name


def test_keys_are_tenant_first_and_delimited():
    ctx = TenantContext("acme")
    assert ctx.meter_pk("m-1") == "T#acme#M#m-1"
    assert ctx.tenant_pk() == "T#acme#TENANT"
    assert ctx.s3_prefix("raw") == "tenants/acme/raw/"


def test_a_tenant_prefix_never_matches_a_longer_tenant_id():
    acme, acme_corp = TenantContext("acme"), TenantContext("acme-corp")
    assert not acme_corp.meter_pk("m-1").startswith(acme.key_prefix)
    assert not acme_corp.s3_prefix("raw").startswith(acme.s3_prefix("raw").rstrip("/") + "/x")
    assert not acme_corp.s3_prefix("raw").startswith("tenants/acme/")


@pytest.mark.parametrize(
    "bad", ["", "Acme", "acme#x", "acme/x", "a:b", "-acme", "acme-", "a--b", "*", "x" * 64]
)
def test_ids_that_could_break_a_key_are_refused(bad):
    with pytest.raises(InvalidTenantId):
        TenantContext(bad)


def test_meter_ids_are_validated_when_a_key_is_built():
    with pytest.raises(InvalidTenantId):
        TenantContext("acme").meter_pk("m#1")


def test_series_sort_key_and_thing_name():
    from datetime import date

    assert series_sk("active_import", date(2026, 11, 20)) == "LP#active_import#2026-11-20"
    assert thing_name("acme", "rtu-1") == "acme:rtu-1"


def test_device_topic_parsing():
    assert parse_device_topic("hemera/acme/rtu-1/up/telemetry") == ("acme", "rtu-1", "up/telemetry")
    for bad in ("other/acme/rtu-1/up", "hemera/acme", "hemera/ACME/rtu-1/up"):
        with pytest.raises(ValueError):
            parse_device_topic(bad)
