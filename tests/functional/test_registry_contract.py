"""Customers, listings and API-key scopes/revocation: the fakes and the DynamoDB adapters pass
the same cases (as in test_store_contract), so the fakes cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hemera.adapters.memory import MemoryApiKeys, MemoryRegistry
from hemera.domain.errors import InvalidTenantId, Unauthenticated
from hemera.domain.registry import Customer, Meter, Tenant
from hemera.domain.tenancy import TenantContext
from hemera.services.access import authenticate, hash_api_key, issue_api_key, revoke_api_key
from hemera.services.onboarding import register_tenant
from hemera.tenants import load_tenant_file
from hemera.wiring import portal_ports

ACME, CORP = TenantContext("acme"), TenantContext("acme-corp")
TENANTS = Path(__file__).resolve().parents[2] / "tenants"


@pytest.fixture(params=["memory", "aws"])
def ports(request, moto_cloud):
    if request.param == "memory":
        return MemoryRegistry(), MemoryApiKeys()
    portal = portal_ports(moto_cloud)
    return portal.registry, portal.keys


def meter(tenant: str, meter_id: str, customer: str) -> Meter:
    return Meter(tenant, meter_id, "hx300", "modbus", "rtu-1", customer)


def all_pages(list_page, limit):
    """Follow next_cursor to the end; returns the pages' ids."""
    pages, cursor = [], None
    while True:
        page = list_page(cursor, limit)
        pages.append([item.id for item in page.items])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_every_registered_tenant_is_listed_once_for_the_sweeps(ports):
    registry, _keys = ports
    # Given two tenants whose ids share a prefix, one registered twice
    for tenant in (
        Tenant("acme-corp", "Acme Corp", "AU", "Australia/Sydney"),
        Tenant("acme", "Acme", "BR", "America/Sao_Paulo"),
    ):
        registry.put_tenant(tenant)
    registry.put_tenant(Tenant("acme", "Acme Energia", "BR", "America/Sao_Paulo"))
    # When the sweeps list the tenants (the cloud fixture may hold others)
    listed = registry.list_tenants()
    ids = [t.id for t in listed]
    # Then each appears once, in id order, with its latest registration
    assert ids == sorted(set(ids))
    assert {t.id: t.name for t in listed if t.id.startswith("acme")} == {
        "acme": "Acme Energia",
        "acme-corp": "Acme Corp",
    }


def test_customers_round_trip_and_stay_in_their_tenant(ports):
    registry, _ = ports
    registry.put_customers(ACME, [Customer("acme", "c-1", "Metal Ltda", "industry", "12.345.678/0001-90")])
    registry.put_customers(CORP, [Customer("acme-corp", "c-1", "Other", "office")])
    assert registry.get_customer(ACME, "c-1") == Customer(
        "acme", "c-1", "Metal Ltda", "industry", "12.345.678/0001-90"
    )
    assert registry.get_customer(CORP, "c-1").name == "Other"
    assert registry.get_customer(ACME, "c-2") is None
    with pytest.raises(ValueError):
        registry.put_customers(ACME, [Customer("acme-corp", "c-9", "X", "office")])


def test_nmi_serial_and_customer_reading_day_round_trip(ports):
    registry, _ = ports
    # Given a NEM meter with its NMI and serial, one without, and a customer read on the 15th
    identified = Meter(
        "acme", "m-nem", "hx300", "modbus", "rtu-1", "c-1", nmi="NCCC519495", serial="HX3A0012001"
    )
    registry.put_meters(ACME, [identified, meter("acme", "m-plain", "c-1")])
    registry.put_customers(ACME, [Customer("acme", "c-1", "Metal", "industry", None, reading_day=15)])
    # When they are read back, one by one, in a batch and in a listing
    # Then every way gives the same identities, and the meter without one has none
    assert registry.get_meter(ACME, "m-nem") == identified
    assert registry.get_meters(ACME, ["m-nem"])["m-nem"].nmi == "NCCC519495"
    listed = {m.id: (m.nmi, m.serial) for m in registry.list_meters(ACME, None, 10, "c-1").items}
    assert listed == {"m-nem": ("NCCC519495", "HX3A0012001"), "m-plain": (None, None)}
    assert registry.get_customer(ACME, "c-1").reading_day == 15
    assert registry.list_customers(ACME, None, 10).items[0].reading_day == 15


def test_onboarding_registers_the_tenant_files_nmis_serials_and_reading_days(ports, tmp_path):
    registry, _ = ports
    # Given the Australian demo tenant file (NMIs written with their checksum digit), one of
    # its customers read on the 20th
    document = yaml.safe_load((TENANTS / "coastal-power.yaml").read_text())
    document["customers"][1]["reading_day"] = 20
    path = tmp_path / "coastal-power.yaml"
    path.write_text(yaml.safe_dump(document))
    # When it is registered
    register_tenant(registry, load_tenant_file(path))
    # Then each meter has its NMI's 10 characters and its serial, and the customer its day
    ctx = TenantContext("coastal-power")
    meter = registry.get_meter(ctx, "cp-m-2002")
    assert (meter.nmi, meter.serial) == ("NCCC000102", "HX3A0012002")
    assert registry.get_customer(ctx, meter.customer_id).reading_day == 20
    assert registry.get_customer(ctx, "harbour-offices").reading_day is None


def test_customer_listing_pages_in_id_order_without_an_empty_last_page(ports):
    registry, _ = ports
    registry.put_customers(ACME, [Customer("acme", f"c-{i}", f"C {i}", "office") for i in range(5)])
    registry.put_customers(CORP, [Customer("acme-corp", "c-x", "Corp", "office")])
    pages = all_pages(lambda cursor, limit: registry.list_customers(ACME, cursor, limit), 2)
    assert pages == [["c-0", "c-1"], ["c-2", "c-3"], ["c-4"]]
    assert all_pages(lambda cursor, limit: registry.list_customers(ACME, cursor, limit), 5) == [
        ["c-0", "c-1", "c-2", "c-3", "c-4"]
    ]
    assert all_pages(lambda c, n: registry.list_customers(TenantContext("nobody"), c, n), 3) == [[]]


def test_meter_listing_filters_by_customer_and_follows_a_move(ports):
    registry, _ = ports
    registry.put_meters(ACME, [meter("acme", f"m-{i}", "c-a" if i % 2 else "c-b") for i in range(5)])
    registry.put_meters(CORP, [meter("acme-corp", "m-9", "c-a")])
    everything = all_pages(lambda cursor, limit: registry.list_meters(ACME, cursor, limit), 2)
    assert everything == [["m-0", "m-1"], ["m-2", "m-3"], ["m-4"]]
    of_a = all_pages(lambda cursor, limit: registry.list_meters(ACME, cursor, limit, "c-a"), 1)
    assert of_a == [["m-1"], ["m-3"]]
    registry.put_meter(ACME, meter("acme", "m-1", "c-b"))  # the customer changed
    assert registry.list_meters(ACME, None, 10, "c-a").items == [meter("acme", "m-3", "c-a")]
    assert [m.id for m in registry.list_meters(ACME, None, 10, "c-b").items] == ["m-0", "m-1", "m-2", "m-4"]
    # `c` is a prefix of `c-a`: the delimiter keeps the two apart.
    assert registry.list_meters(ACME, None, 10, "c").items == []


def test_a_cursor_that_is_not_an_id_is_refused(ports):
    registry, _ = ports
    registry.put_customers(ACME, [Customer("acme", "c-1", "C", "office")])
    with pytest.raises(InvalidTenantId):
        registry.list_customers(ACME, "T#acme-corp#", 10)


def test_scoped_keys_resolve_to_their_customer_and_revoked_keys_to_nobody(ports):
    _, keys = ports
    tenant_key = issue_api_key(keys, "acme", "operator")
    customer_key = issue_api_key(keys, "acme", "portal of c-1", customer_id="c-1")
    assert authenticate(keys, tenant_key).customer_id is None
    caller = authenticate(keys, customer_key)
    assert (caller.tenant_id, caller.customer_id) == ("acme", "c-1")
    assert revoke_api_key(keys, customer_key) is True
    assert revoke_api_key(keys, customer_key) is True  # revoking again changes nothing
    with pytest.raises(Unauthenticated):
        authenticate(keys, customer_key)
    assert authenticate(keys, tenant_key).tenant_id == "acme"
    assert revoke_api_key(keys, "hmk_never-issued") is False
    with pytest.raises(Unauthenticated):
        authenticate(keys, hash_api_key(tenant_key))  # the stored hash is not a key


def test_registering_a_tenant_file_writes_its_customers(moto_cloud):
    registry = portal_ports(moto_cloud).registry
    sul = TenantContext("sul-energia")
    assert [c.id for c in registry.list_customers(sul, None, 50).items] == [
        "hospital-norte",
        "metalurgica-sul",
        "shopping-centro",
    ]
    assert [m.id for m in registry.list_meters(sul, None, 50, "metalurgica-sul").items] == ["sul-m-1001"]
