"""`hemera sim`: a fleet of tenants, RTUs and meters from one scenario file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from pymodbus.client import AsyncModbusTcpClient

from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera.domain.readings import Channel
from hemera.tenants import load_tenant_file
from hemera_agent.clock import SimClock
from hemera_agent.config import load_config
from hemera_agent.reader import LoadProfileReader
from hemera_agent.simulators.profile import interval_energy, meter_seed
from hemera_agent.simulators.scenario import FleetSpec, load_scenario
from hemera_local.fleet import generate_tenants, run_fleet

REPO = Path(__file__).resolve().parents[2]
DAY = datetime(2026, 3, 2, tzinfo=UTC)
Q = timedelta(minutes=15)


def write_scenario(folder: Path) -> Path:
    path = folder / "scenario.yaml"
    document = {
        "schema": "hemera.scenario/1",
        "start": DAY.isoformat(),
        "speed": 1000,
        "tenant_files": [str(REPO / "tenants" / "sul-energia.yaml")],
        "fleet": {"tenants": 2, "rtus_per_tenant": 2, "meters_per_rtu": 3, "countries": ["BR", "AU"]},
        "meters": [
            {
                "meter": "f1-m-1002",
                "tenant": "fleet-1",
                "faults": [
                    {"kind": "meter_off", "start": "2026-03-02T06:00:00Z", "end": "2026-03-02T08:00:00Z"}
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_generated_fleet_has_the_asked_shape_and_valid_tenants() -> None:
    tenants = generate_tenants(
        FleetSpec(tenants=3, rtus_per_tenant=2, meters_per_rtu=4, countries=("BR", "AU"))
    )
    assert [t.id for t in tenants] == ["fleet-1", "fleet-2", "fleet-3"]
    assert [t.country for t in tenants] == ["BR", "AU", "BR"]
    assert all(len(t.rtus) == 2 and len(t.meters) == 8 for t in tenants)
    assert {m.model for t in tenants for m in t.meters} == {"hx300", "mx40"}
    assert {t.customer(m.customer).load_class for t in tenants for m in t.meters} == {
        "industry",
        "commerce",
        "office",
    }
    assert all(sorted(m.unit_id for m in t.meters_of(r.id)) == [1, 2, 3, 4] for t in tenants for r in t.rtus)


def test_run_fleet_serves_every_rtu_on_its_own_port_with_its_own_certificate(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path))
    # A clock 30 s after DAY ended, frozen (the wall never moves)
    clock = SimClock(
        start=DAY + timedelta(days=1, seconds=30), speed=1, wall=lambda: datetime(2030, 1, 1, tzinfo=UTC)
    )

    with run_fleet(scenario, state_dir=tmp_path / "state", clock=clock, broker_port=18883) as fleet:
        # Then 3 tenants (one from a file, two generated), 5 RTUs, 15 meters (the file's DLMS meter
        # has its own simulator), 5 distinct gateway ports
        assert sorted(t.id for t in fleet.tenants) == ["fleet-1", "fleet-2", "sul-energia"]
        assert len(fleet.rtus) == 5 and fleet.meter_count == 15
        assert sum(len(rtu.dlms) for rtu in fleet.rtus) == 1
        assert len({rtu.port for rtu in fleet.rtus}) == 5
        for rtu in fleet.rtus:
            config = load_config(rtu.config_path)
            assert (config.tenant, config.device) == (rtu.tenant.id, rtu.rtu_id)
            assert {m.port for m in config.meters if m.protocol == "modbus"} == {rtu.port}
            assert {m.port for m in config.meters if m.protocol == "dlms"} == {d.port for d in rtu.dlms}
            assert config.broker.port == 18883
            cert = x509.load_pem_x509_certificate(config.broker.cert.read_bytes())
            cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            assert cn == f"{rtu.tenant.id}:{rtu.rtu_id}"
            assert config.broker.key.exists() and config.broker.ca is not None
        # And the tenant files written for the local cloud reload as the same tenants
        for tenant in fleet.tenants:
            assert load_tenant_file(fleet.tenants_dir / f"{tenant.id}.yaml") == tenant

        # When the RTU of the faulted meter is read with the agent's reader
        rtu = next(r for r in fleet.rtus if r.rtu_id == "rtu-1-1")
        tenant = rtu.tenant
        faulted = next(m for m in tenant.meters if m.id == "f1-m-1002")
        model = load_model(faulted.model)

        async def read() -> list:
            client = AsyncModbusTcpClient("127.0.0.1", port=rtu.port)
            assert await client.connect()
            try:
                reader = LoadProfileReader(client, faulted.id, faulted.unit_id, model)
                frames = [w.frame async for w in reader.windows_after(DAY - Q, timedelta(days=1))]
            finally:
                client.close()
            return [r for f in frames for r in decode_load_profile_window(model, faulted.id, f.registers())]

        readings = asyncio.run(read())

    # Then its day has the scenario's two-hour gap and the load model's values elsewhere
    got = {r.start: r.raw_value for r in readings if r.channel is Channel.ACTIVE_IMPORT}
    missing = [DAY + i * Q for i in range(96) if DAY + i * Q not in got]
    assert missing == [DAY + timedelta(hours=6) + i * Q for i in range(8)]
    load_class = tenant.customer(faulted.customer).load_class
    for start, value in got.items():
        energy = interval_energy(
            meter_seed(tenant.id, faulted.id),
            load_class,
            faulted.peak_kw,
            tenant.timezone,
            start,
            country=tenant.country,
        )
        assert value == energy.active_import_wh
