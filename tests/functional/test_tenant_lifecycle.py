"""`hemera tenant apply|offboard` on moto: apply twice changes nothing the second time; offboarding
acme exports and deletes all of acme and nothing of acme-corp."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml

from hemera import aws
from hemera.domain.tenancy import TENANTS_PK, TenantContext, thing_name
from hemera.tenants import TenantDefinition, load_tenant_file
from hemera.wiring import ingest_ports
from hemera_local.pki import LocalPki
from hemera_local.tenant_ops import CREATED, REGISTER, UNCHANGED, TenantOperations, verify_archive


def tenant_file(folder: Path, tenant_id: str) -> TenantDefinition:
    document = {
        "id": tenant_id,
        "name": tenant_id.title(),
        "country": "BR",
        "timezone": "America/Sao_Paulo",
        "nominal_voltage_v": 127,
        "tariffs": [{"id": "a4-verde", "name": "A4 Verde"}],
        "notifications": [{"kind": "email", "target": f"ops@{tenant_id}.example"}],
        "customers": [{"id": "c-1", "name": "Customer One", "tax_id": "12.345.678/0001-95"}],
        "rtus": [{"id": "rtu-1"}, {"id": "rtu-2"}],
        "meters": [
            {
                "id": f"{tenant_id}-m-{n}",
                "model": "hx300",
                "protocol": "modbus",
                "rtu": "rtu-1",
                "customer": "c-1",
                "unit_id": n,
                "contracted_demand_kw": 300,
                "tariff": "a4-verde",
            }
            for n in (1, 2)
        ],
    }
    path = folder / f"{tenant_id}.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_tenant_file(path)


@pytest.fixture
def operations(moto_cloud, tmp_path) -> TenantOperations:
    return TenantOperations(moto_cloud, tmp_path / "credentials")


def _put_data(settings, tenant_id: str) -> None:
    """Items and objects of the tenant in every place offboarding must empty."""
    ctx = TenantContext(tenant_id)
    ddb = aws.client(settings.aws, "dynamodb")
    ddb.put_item(
        TableName=settings.readings_table,
        Item={"pk": {"S": ctx.meter_pk(f"{tenant_id}-m-1")}, "sk": {"S": "LP#active_import#2026-01-01"}},
    )
    s3 = aws.client(settings.aws, "s3")
    s3.put_object(
        Bucket=settings.raw_bucket, Key=f"{ctx.s3_prefix('raw')}2026/01/01/00/a.jsonl.gz", Body=b"raw"
    )
    s3.put_object(Bucket=settings.quarantine_bucket, Key=f"{ctx.s3_prefix('quarantine')}x", Body=b"bad")
    s3.put_object(
        Bucket=settings.curated_bucket,
        Key=f"curated/intervals/tenant={tenant_id}/date=2026-01-01/b.parquet",
        Body=b"parquet",
    )


def test_apply_twice_changes_nothing_the_second_time(operations, moto_cloud, tmp_path):
    # Given a new tenant file
    tenant = tenant_file(tmp_path, "acme")
    # When it is applied
    first = operations.apply(tenant)
    # Then everything is created, an API key is shown once and the private keys stay local
    assert first.changed and first.api_key and first.api_key.startswith("hmk_")
    created = {(c.kind, c.name) for c in first.changes if c.action == CREATED}
    assert {("thing", "acme:rtu-1"), ("thing", "acme:rtu-2"), ("certificate", "acme:rtu-1")} <= created
    assert ("iot policy", "hemera-tenant-acme-devices") in created
    assert ("sns topic", "hemera-tenant-acme-notifications") in created
    assert (tmp_path / "credentials" / "acme" / "rtu-1" / "private.key").exists()
    iot = aws.client(moto_cloud.aws, "iot")
    thing = iot.describe_thing(thingName=thing_name("acme", "rtu-2"))
    assert thing["attributes"] == {"tenant": "acme", "device": "rtu-2"}
    (certificate,) = iot.list_thing_principals(thingName="acme:rtu-2")["principals"]
    assert [p["policyName"] for p in iot.list_attached_policies(target=certificate)["policies"]] == [
        "hemera-tenant-acme-devices"
    ]
    policy = json.loads(iot.get_policy(policyName="hemera-tenant-acme-devices")["policyDocument"])
    assert "hemera/acme/${iot:Connection.Thing.Attributes[device]}/*" in json.dumps(policy)
    assert ingest_ports(moto_cloud).registry.get_meter(TenantContext("acme"), "acme-m-1") is not None

    # When it is applied again
    second = operations.apply(tenant)
    # Then nothing changes, no second key is issued, and the report says so
    assert not second.changed, [c for c in second.changes if c.action != UNCHANGED]
    assert second.api_key is None
    assert iot.list_thing_principals(thingName="acme:rtu-2")["principals"] == [certificate]


def test_a_changed_file_is_applied_as_an_update(operations, tmp_path):
    tenant = tenant_file(tmp_path, "acme")
    operations.apply(tenant)
    renamed = tenant.model_copy(update={"name": "Acme Renamed"})
    report = operations.apply(renamed)
    assert [(c.kind, c.action) for c in report.changes if c.action != UNCHANGED] == [("registry", "updated")]


def test_offboarding_acme_removes_all_of_acme_and_nothing_of_acme_corp(operations, moto_cloud, tmp_path):
    # Given acme and acme-corp, applied and with data in the table and every bucket
    for tenant_id in ("acme", "acme-corp"):
        operations.apply(tenant_file(tmp_path, tenant_id))
        _put_data(moto_cloud, tenant_id)
    before = operations.remaining("acme-corp")
    acme = operations.remaining("acme")

    # When acme is offboarded
    report = operations.offboard("acme", tmp_path / "archives")

    # Then the archive holds acme's data, checked against its manifest
    manifest = verify_archive(report.archive)
    # (registry items + one day; raw, quarantine and curated objects; API key; two things)
    assert acme.items >= 4 and acme.objects == 3
    assert manifest["counts"] == {
        "items": acme.items,
        "api_keys": 1,
        "objects": 3,
        "object_versions": 3,
        "things": 2,
    }
    with tarfile.open(report.archive) as tar:
        names = tar.getnames()
        assert "s3/hemera-raw/tenants/acme/raw/2026/01/01/00/a.jsonl.gz" in names
        assert not any("acme-corp" in n for n in names)
        assert not any(n.endswith(".key") for n in names)  # no private key in the archive
        readings = tar.extractfile("dynamodb/readings.jsonl").read().decode().splitlines()
    keys = [(json.loads(line)["pk"]["S"], json.loads(line)["sk"]["S"]) for line in readings]
    # acme's own items, and its entry in the platform's tenant list
    assert all(pk.startswith("T#acme#") or (pk, sk) == (TENANTS_PK, "T#acme#") for pk, sk in keys)
    assert (TENANTS_PK, "T#acme#") in keys
    # and nothing of acme remains, proven by listing
    assert report.remaining.total == 0, report.remaining
    assert operations.remaining("acme").total == 0
    assert not (tmp_path / "credentials" / "acme").exists()
    # and acme-corp is untouched
    assert operations.remaining("acme-corp") == before
    assert before.items == acme.items and before.objects == 3 and before.things == 2 and before.topics == 1
    assert not operations.apply(tenant_file(tmp_path, "acme-corp")).changed


def test_local_mode_registers_certificates_of_the_local_ca(moto_cloud, tmp_path):
    # Given the local cloud's PKI (the CA its broker trusts)
    pki = LocalPki(tmp_path / "pki")
    operations = TenantOperations(moto_cloud, tmp_path / "credentials", REGISTER, pki)
    # When a tenant is applied
    operations.apply(tenant_file(tmp_path, "acme"))
    # Then each thing carries the certificate the broker will see, and no key went to IoT
    iot = aws.client(moto_cloud.aws, "iot")
    (arn,) = iot.list_thing_principals(thingName="acme:rtu-1")["principals"]
    pem = iot.describe_certificate(certificateId=arn.rsplit("/", 1)[1])["certificateDescription"][
        "certificatePem"
    ]
    assert pem.strip() == pki.client("acme:rtu-1").cert.read_text().strip()
    assert not (tmp_path / "credentials").exists()
