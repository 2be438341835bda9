"""Tenant file schema: registration data, tariffs, contracted demand and the typed optional
sections; errors name the file and the path as written in it (`meters[1].ct_ratio`)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from hemera.tenants import InvalidTenantFile, load_tenant_file

TENANTS = Path(__file__).resolve().parents[2] / "tenants"


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / f"{document['id']}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _sul() -> dict:
    return yaml.safe_load((TENANTS / "sul-energia.yaml").read_text())


def test_shipped_files_carry_registration_tariffs_and_contracted_demand():
    tenant = load_tenant_file(TENANTS / "sul-energia.yaml")
    assert tenant.nominal_voltage_v == 127
    assert {t.id for t in tenant.tariffs} == {"a4-verde", "a4-azul"}
    customer = tenant.customer("metalurgica-sul")
    assert customer.tax_id and customer.address and customer.address.city == "Porto Alegre"
    assert customer.contact and customer.contact.email
    meter = tenant.meters[0]
    assert (meter.contracted_demand_kw, meter.tariff) == (Decimal(900), "a4-azul")


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (lambda d: d["meters"][1].update(ct_ratio="400/0"), "meters[1].ct_ratio", "ratio"),
        (
            lambda d: d["meters"][2].update(contracted_demand_kw=-5),
            "meters[2].contracted_demand_kw",
            "greater",
        ),
        (lambda d: d["meters"][0].update(tariff="a3-azul"), "meters[0].tariff", "unknown tariff a3-azul"),
        (lambda d: d["meters"][0].update(customer="nobody"), "meters[0].customer", "unknown customer nobody"),
        (
            lambda d: d["customers"][1]["contact"].update(email="51 3333"),
            "customers[1].contact.email",
            "pattern",
        ),
        (lambda d: d["customers"][0]["address"].pop("city"), "customers[0].address.city", "required"),
        (lambda d: d["tariffs"].append(dict(d["tariffs"][0])), "tariffs[2].id", "duplicate id a4-verde"),
        (lambda d: d.update(vee={"spike_factor": 0.5}), "vee.spike_factor", "greater"),
        (lambda d: d.update(alarms={"snooze": True}), "alarms.snooze", "Extra inputs"),
        (lambda d: d["exports"][0].update(format="xlsx"), "exports[0].format", "csv"),
        (lambda d: d["rtus"][0].update(id="RTU 1"), "rtus[0].id", "lower-case"),
        # a Brazilian tariff's holidays are ANEEL's national list: no state's holidays
        (lambda d: d["tariffs"][1].update(holiday_subdivision="RS"), "tariffs[1]", "ANEEL"),
        # Brazilian Group A is billed on the calendar month: reading day 1, for its customers too
        (lambda d: d["tariffs"][1].update(reading_day=15), "tariffs[1].reading_day", "calendar month"),
        (lambda d: d["customers"][0].update(reading_day=15), "customers[0].reading_day", "calendar month"),
    ],
)
def test_an_error_names_the_file_the_path_and_the_reason(tmp_path, change, path, reason):
    # Given a valid tenant file with one mistake
    document = _sul()
    change(document)
    file = _write(tmp_path, document)
    # When it is loaded
    with pytest.raises(InvalidTenantFile) as info:
        load_tenant_file(file)
    # Then the error says where and why
    error = info.value
    assert error.file == file
    assert any(where == path and reason in why for where, why in error.problems), error.problems
    assert f"{file}: " in str(error) and path in str(error)


def test_optional_sections_may_be_left_out(tmp_path):
    document = {
        "id": "minimal",
        "name": "Minimal",
        "country": "BR",
        "timezone": "UTC",
        "customers": [{"id": "c1", "name": "C1"}],
        "rtus": [{"id": "r1"}],
        "meters": [{"id": "m1", "model": "hx300", "protocol": "modbus", "rtu": "r1", "customer": "c1"}],
    }
    tenant = load_tenant_file(_write(tmp_path, document))
    assert tenant.tariffs == () and tenant.vee is None and tenant.meters[0].tariff is None


def test_a_reading_day_of_its_own_is_for_customers_outside_brazilian_group_a(tmp_path):
    """A Brazilian tariff with its own windows (Group B's tarifa branca) and a customer of another
    country may be read on any day."""
    sul = _sul()
    sul["tariffs"].append(
        {
            "id": "b3-branca",
            "name": "B3 Branca",
            "windows": [
                {"post": "ponta", "start_hour": 18, "hours": 3},
                {"post": "intermediario", "start_hour": 17, "hours": 1},
                {"post": "intermediario", "start_hour": 21, "hours": 1},
            ],
            "default_post": "fora_ponta",
            "reading_day": 12,
            "demand_per_post": False,
        }
    )
    assert load_tenant_file(_write(tmp_path, sul)).tariffs[-1].reading_day == 12
    coastal = yaml.safe_load((TENANTS / "coastal-power.yaml").read_text())
    coastal["customers"][0]["reading_day"] = 15
    assert load_tenant_file(_write(tmp_path, coastal)).customers[0].reading_day == 15
