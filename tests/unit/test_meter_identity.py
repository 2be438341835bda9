"""Meter market identities: the AEMO NMI checksum (checked against the worked examples of AEMO's
National Metering Identifier procedure), NMI and serial validation, and how a tenant file and
the registry's domain objects reject a wrong one, naming the meter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hemera.domain.errors import InvalidMeterIdentity
from hemera.domain.nmi import NMI_ALPHABET, check_serial, nmi_checksum, parse_nmi
from hemera.domain.registry import Customer, Meter
from hemera.tenants import InvalidTenantFile, load_tenant_file

TENANTS = Path(__file__).resolve().parents[2] / "tenants"

# The worked examples of AEMO's NMI procedure ("NMI checksum" appendix): NMI -> checksum digit.
AEMO_EXAMPLES = {
    "2001985732": 8,
    "2001985733": 6,
    "3075621875": 8,
    "3075621876": 6,
    "4316854005": 9,
    "4316854006": 7,
    "6305888444": 6,
    "6350888444": 2,
    "7001888333": 8,
    "7102000001": 7,
    "NAAAMYS582": 6,
    "NBBBX11110": 0,
    "NBBBX11111": 8,
    "NCCC519495": 5,
    "NGGG000055": 4,
    "QAAAVZZZZZ": 3,
    "QCDWW00010": 2,
    "SMVEW00085": 8,
    "VAAA000065": 7,
    "VAAA000066": 5,
    "VAAA000067": 2,
    "VAAASTY576": 8,
    "VCCCX00009": 1,
    "VEEEX00009": 1,
    "VKTS786150": 2,
    "VKTS867150": 5,
    "VKTS871650": 7,
    "VKTS876105": 7,
    "VKTS876150": 3,
    "VKTS876510": 8,
}


@pytest.mark.parametrize(("nmi", "checksum"), sorted(AEMO_EXAMPLES.items()))
def test_checksum_is_the_one_of_aemo_worked_examples(nmi: str, checksum: int) -> None:
    assert nmi_checksum(nmi) == checksum


@pytest.mark.parametrize(("nmi", "checksum"), sorted(AEMO_EXAMPLES.items()))
def test_an_nmi_written_with_its_checksum_digit_registers_as_its_ten_characters(
    nmi: str, checksum: int
) -> None:
    assert parse_nmi(f"{nmi}{checksum}") == nmi
    assert parse_nmi(nmi) == nmi


@given(
    nmi=st.text(alphabet=sorted(NMI_ALPHABET), min_size=10, max_size=10),
    shift=st.integers(min_value=1, max_value=9),
)
def test_a_wrong_checksum_digit_is_refused_and_the_right_one_named(nmi: str, shift: int) -> None:
    # Given any NMI written with a checksum digit that is not its own
    right = nmi_checksum(nmi)
    # Then it is refused, and the message says which digit the NMI has
    with pytest.raises(ValueError, match=f"checksum {right}"):
        parse_nmi(f"{nmi}{(right + shift) % 10}")
    # And with its own digit it is the NMI
    assert parse_nmi(f"{nmi}{right}") == nmi


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("NCCC51949", "10 characters"),  # too short
        ("NCCC5194955X", "10 characters"),  # too long
        ("NCCC51949O", "'O'"),  # O is never allocated
        ("NCCCI19495", "'I'"),  # nor I
        ("nccc519495", "upper-case"),
        ("NCCC-19495", "'-'"),
        ("NCCC5194957", "checksum 5"),  # AEMO example with a wrong checksum digit
    ],
)
def test_what_is_not_an_nmi_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_nmi(text)


@pytest.mark.parametrize("serial", ["", "1234567890123", "SN,1", " SN1", "SN\t1"])
def test_a_serial_must_fit_nem12s_meter_serial_number(serial: str) -> None:
    with pytest.raises(ValueError):
        check_serial(serial)


def test_a_twelve_character_serial_fits() -> None:
    assert check_serial("HX3A00120011") == "HX3A00120011"


def test_a_registered_meter_with_a_wrong_identity_names_the_meter() -> None:
    with pytest.raises(InvalidMeterIdentity, match="meter cp-m-9"):
        Meter("coastal-power", "cp-m-9", "hx300", "modbus", "rtu-1", "c-1", nmi="NCCC51949O")
    # The registry keeps the 10 characters: the checksum digit is not part of the NMI
    with pytest.raises(InvalidMeterIdentity, match="without its checksum digit"):
        Meter("coastal-power", "cp-m-9", "hx300", "modbus", "rtu-1", "c-1", nmi="NCCC5194955")
    with pytest.raises(InvalidMeterIdentity, match="meter cp-m-9"):
        Meter("coastal-power", "cp-m-9", "hx300", "modbus", "rtu-1", "c-1", serial="S" * 13)


def test_a_customer_reading_day_is_a_day_every_month_has() -> None:
    assert Customer("t", "c-1", "C", "industry", reading_day=28).reading_day == 28
    with pytest.raises(ValueError, match="1-28"):
        Customer("t", "c-1", "C", "industry", reading_day=29)


# --- the tenant file ---------------------------------------------------------------------------
def _coastal() -> dict:
    return yaml.safe_load((TENANTS / "coastal-power.yaml").read_text())


def _load(tmp_path: Path, document: dict):
    path = tmp_path / "coastal-power.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_tenant_file(path)


def test_the_australian_demo_tenant_registers_checked_nmis_and_serials() -> None:
    tenant = load_tenant_file(TENANTS / "coastal-power.yaml")

    identities = {m.id: (m.nmi, m.serial) for m in tenant.meters}
    assert identities == {
        "cp-m-2001": ("NCCC000101", "HX3A0012001"),
        "cp-m-2002": ("NCCC000102", "HX3A0012002"),
        "cp-m-2003": ("NCCC000103", "HD5B0012003"),
    }
    # The file writes them with their checksum digit, and it is AEMO's
    raw = {m["id"]: m["nmi"] for m in _coastal()["meters"]}
    assert all(raw[m][10] == str(nmi_checksum(nmi)) for m, (nmi, _) in identities.items())


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (
            lambda d: d["meters"][1].update(nmi="NCCC0001020"),
            "meters[1].nmi",
            "meter cp-m-2002: NMI 'NCCC000102' has checksum 7, not '0'",
        ),
        (
            lambda d: d["meters"][2].update(nmi="NCCCO00103"),
            "meters[2].nmi",
            "meter cp-m-2003: NMI 'NCCCO00103' holds 'O'",
        ),
        (
            lambda d: d["meters"][0].update(serial="HX3A-0012001-X"),
            "meters[0].serial",
            "meter cp-m-2001: a meter serial has 1-12 characters",
        ),
        (
            lambda d: d["meters"][2].update(nmi=d["meters"][0]["nmi"][:10]),
            "meters[2].nmi",
            "meter cp-m-2003: NMI NCCC000101 is already meter cp-m-2001's",
        ),
        (lambda d: d["customers"][0].update(reading_day=31), "customers[0].reading_day", "28"),
    ],
)
def test_a_wrong_identity_in_the_tenant_file_names_the_meter(tmp_path, change, path, reason) -> None:
    # Given the demo tenant file with one wrong NMI, serial or reading day
    document = _coastal()
    change(document)
    # When it is loaded
    with pytest.raises(InvalidTenantFile) as info:
        _load(tmp_path, document)
    # Then the error gives the path inside the file and names the meter and the problem
    assert any(where == path and reason in why for where, why in info.value.problems), info.value.problems


def test_meters_and_customers_without_identities_still_load(tmp_path) -> None:
    document = _coastal()
    for meter in document["meters"]:
        meter.pop("nmi"), meter.pop("serial")
    tenant = _load(tmp_path, document)
    assert {(m.nmi, m.serial) for m in tenant.meters} == {(None, None)}
    assert {c.reading_day for c in tenant.customers} == {None}
