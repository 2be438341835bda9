"""`hemera sim`: a fleet of simulated Modbus meters behind RTUs, for several tenants, from one
scenario file, on an accelerated clock.

The scenario (`hemera_agent.simulators.scenario`) names existing tenant files and/or asks for a
generated fleet (K tenants x M RTUs x N meters, models and countries in rotation) and lists the
faults of individual meters. `run_fleet` then

1. writes every tenant of the fleet to `<state_dir>/fleet/tenants/<tenant>.yaml` (generated ones
   too, so `hemera local up --tenants-dir <state_dir>/fleet/tenants` registers exactly this fleet
   and its broker ACL);
2. starts one Modbus TCP simulator per RTU, on its own port on 127.0.0.1, serving that RTU's meters
   as unit ids, all on one shared `SimClock` (`scenario.speed` times real time from
   `scenario.start` until caught up with now), with each meter's scenario faults;
3. writes one agent config per RTU (`<state_dir>/fleet/agents/<tenant>--<rtu>/agent.yaml`) with the
   RTU's own client certificate from the local PKI (`<state_dir>/pki`, CN `<tenant>:<rtu>`).

`fleet_command` (the CLI entry) additionally starts one `hemera-agent` process per RTU when a
local cloud is running (it reads the broker from `<state_dir>/local.json`).
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext, thing_name
from hemera.tenants import Customer, LoadClass, MeterDef, Rtu, TenantDefinition, load_tenant_file
from hemera.wiring import portal_ports
from hemera_agent.clock import Clock, SimClock, utc_now
from hemera_agent.simulators.dlms_meter import DlmsMeterSimulator, dlms_meter
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, meters_from_tenant
from hemera_agent.simulators.scenario import FleetSpec, Scenario, load_scenario
from hemera_local.agents import dlms_meter_entry, modbus_meter_entries, write_agent_config
from hemera_local.cloud import REPO_ROOT, LocalCloud, LocalCloudConfig, LocalCloudState
from hemera_local.pki import LocalPki

# A representative time zone per country for generated tenants.
COUNTRY_ZONES: dict[str, str] = {
    "BR": "America/Sao_Paulo",
    "AU": "Australia/Sydney",
    "NZ": "Pacific/Auckland",
    "US": "America/Chicago",
    "CA": "America/Toronto",
    "MX": "America/Mexico_City",
    "PT": "Europe/Lisbon",
    "DE": "Europe/Berlin",
}
_LOAD_CLASSES: tuple[LoadClass, ...] = ("industry", "commerce", "office")
_PEAKS_KW = (820.0, 410.0, 300.0, 520.0, 150.0, 1200.0)


def generate_tenants(spec: FleetSpec) -> list[TenantDefinition]:
    """The tenants of a generated fleet (pure): `fleet-1`, `fleet-2`, ...; RTU `rtu-<t>-<r>`;
    meters `f<t>-m-<rtu><unit>` on unit ids 1..N, models, load classes and peaks in rotation."""
    tenants = []
    classes = itertools.cycle(_LOAD_CLASSES)
    peaks = itertools.cycle(_PEAKS_KW)
    models = itertools.cycle(spec.models)
    for t in range(1, spec.tenants + 1):
        country = spec.countries[(t - 1) % len(spec.countries)]
        customers: list[Customer] = []
        rtus: list[Rtu] = []
        meters: list[MeterDef] = []
        for r in range(1, spec.rtus_per_tenant + 1):
            rtu = Rtu(id=f"rtu-{t}-{r}")
            rtus.append(rtu)
            for unit in range(1, spec.meters_per_rtu + 1):
                customer = Customer(id=f"c-{r}-{unit}", name=f"Customer {r}.{unit}", load_class=next(classes))
                customers.append(customer)
                meters.append(
                    MeterDef(
                        id=f"f{t}-m-{r}{unit:03d}",
                        model=next(models),
                        protocol="modbus",
                        rtu=rtu.id,
                        customer=customer.id,
                        unit_id=unit,
                        peak_kw=next(peaks),
                    )
                )
        tenants.append(
            TenantDefinition(
                id=f"fleet-{t}",
                name=f"Fleet tenant {t} ({country})",
                country=country,
                timezone=COUNTRY_ZONES.get(country, "UTC"),
                customers=tuple(customers),
                rtus=tuple(rtus),
                meters=tuple(meters),
            )
        )
    return tenants


def fleet_tenants(scenario: Scenario) -> list[TenantDefinition]:
    """The scenario's tenant files plus its generated fleet; tenant ids must be unique."""
    tenants = [load_tenant_file(path) for path in scenario.tenant_files]
    if scenario.fleet is not None:
        tenants.extend(generate_tenants(scenario.fleet))
    ids = [t.id for t in tenants]
    if len(set(ids)) != len(ids):
        raise ValueError(f"the scenario names a tenant twice: {sorted(ids)}")
    return tenants


def write_fleet_tenants(scenario: Scenario, state_dir: Path) -> Path:
    """Write the fleet's tenant files to `<state_dir>/fleet/tenants` (for `hemera local up
    --tenants-dir`, so the local cloud registers exactly this fleet); returns the folder."""
    folder = state_dir / "fleet" / "tenants"
    folder.mkdir(parents=True, exist_ok=True)
    for tenant in fleet_tenants(scenario):
        document = tenant.model_dump(mode="json")
        (folder / f"{tenant.id}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return folder


@dataclass
class FleetRtu:
    """One RTU of the fleet: its Modbus gateway simulator (port), one simulator per DLMS meter,
    and the agent config written for it."""

    tenant: TenantDefinition
    rtu_id: str
    simulator: ModbusMeterSimulator | None
    config_path: Path
    dlms: list[DlmsMeterSimulator] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The Modbus gateway's port (0 when the RTU has only DLMS meters)."""
        return self.simulator.port if self.simulator else 0

    def stop(self) -> None:
        if self.simulator:
            self.simulator.stop()
        for meter in self.dlms:
            meter.stop()


@dataclass
class Fleet:
    """A running fleet; `stop()` (or leaving the `with` block) stops every simulator."""

    tenants: list[TenantDefinition]
    rtus: list[FleetRtu]
    clock: Clock
    tenants_dir: Path
    history_start: datetime
    agents: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def meter_count(self) -> int:
        return sum(len(t.meters) for t in self.tenants)

    def stop(self) -> None:
        for process in self.agents:  # only the agent processes this fleet started
            process.terminate()
        for process in self.agents:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.agents.clear()
        for rtu in self.rtus:
            rtu.stop()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _default_start(now: datetime) -> datetime:
    """Midnight UTC of yesterday: a full past day for every zone to catch up."""
    return datetime.combine(now.date() - timedelta(days=1), time(0), tzinfo=UTC)


def run_fleet(
    scenario: Scenario,
    *,
    state_dir: Path,
    clock: Clock | None = None,
    broker_host: str = "127.0.0.1",
    broker_port: int = 8883,
    poll_seconds: float = 1.0,
    host: str = "127.0.0.1",
) -> Fleet:
    """Start the scenario's fleet: one Modbus simulator per RTU (own port), agent configs and
    certificates per RTU, tenant files under `<state_dir>/fleet/tenants`. Returns the running fleet.

    `clock` defaults to a `SimClock` at `scenario.speed` from `scenario.start` (default: yesterday
    00:00 UTC); the meters' memory starts there too.
    """
    tenants = fleet_tenants(scenario)
    history_start = scenario.start or _default_start(utc_now())
    clock = clock or SimClock(start=history_start, speed=scenario.speed)
    tenants_dir = write_fleet_tenants(scenario, state_dir)
    pki = LocalPki(state_dir / "pki")
    fleet = Fleet(tenants, [], clock, tenants_dir, history_start)
    try:
        for tenant in tenants:
            faults = {m.id: scenario.faults_for(tenant.id, m.id) for m in tenant.meters}
            for rtu in tenant.rtus:
                entries: list[dict[str, Any]] = []
                gateway = None
                modbus = meters_from_tenant(tenant, rtu.id, faults=faults)
                if modbus:
                    gateway = ModbusMeterSimulator(
                        modbus, clock=clock, history_start=history_start, host=host
                    ).start()
                    entries += modbus_meter_entries(tenant.meters_of(rtu.id), gateway.port, host)
                # Registered at once so that `fleet.stop()` ends its simulators if a later one fails.
                fleet_rtu = FleetRtu(tenant, rtu.id, gateway, Path())
                fleet.rtus.append(fleet_rtu)
                for meter in (m for m in tenant.meters_of(rtu.id) if m.protocol == "dlms"):
                    password = secrets.token_hex(8)
                    simulator = DlmsMeterSimulator(
                        dataclasses.replace(
                            dlms_meter(tenant, meter, password.encode()),
                            faults=tuple(faults.get(meter.id, ())),
                        ),
                        clock=clock,
                        history_start=history_start,
                        host=host,
                    ).start()
                    fleet_rtu.dlms.append(simulator)
                    entries.append(dlms_meter_entry(meter, simulator.port, password, host))
                if not entries:  # an RTU without meters: nothing to read, no agent
                    fleet.rtus.pop()
                    continue
                fleet_rtu.config_path = write_agent_config(
                    state_dir / "fleet" / "agents" / f"{tenant.id}--{rtu.id}",
                    tenant_id=tenant.id,
                    rtu_id=rtu.id,
                    credentials=pki.client(thing_name(tenant.id, rtu.id)),
                    broker_host=broker_host,
                    broker_port=broker_port,
                    meters=entries,
                    poll_seconds=poll_seconds,
                )
    except BaseException:
        fleet.stop()
        raise
    return fleet


def start_agents(fleet: Fleet, log_dir: Path) -> None:
    """One `hemera-agent run` process per RTU (each with its own certificate), logs in `log_dir`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    agent = Path(sys.executable).with_name("hemera-agent")
    for rtu in fleet.rtus:
        log = (log_dir / f"agent-{rtu.tenant.id}-{rtu.rtu_id}.log").open("ab")
        fleet.agents.append(
            subprocess.Popen(
                [str(agent), "run", "--config", str(rtu.config_path)], stdout=log, stderr=subprocess.STDOUT
            )
        )


def say(message: str) -> None:
    """Print to the terminal: the local cloud sends the in-process functions' stdout to its log."""
    typer.echo(message, file=sys.__stdout__)


def fleet_command(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML (hemera.scenario/1).")],
    state_dir: Annotated[Path, typer.Option(help="Where certificates, configs and logs live.")] = REPO_ROOT
    / ".hemera-sim",
    speed: Annotated[float | None, typer.Option(help="Override the scenario's clock speed.")] = None,
    api_port: Annotated[int, typer.Option(help="Portal API port (0 = any free port).")] = 0,
    exit_after: Annotated[
        float, typer.Option(help="Stop after this many wall seconds (0 = run until Ctrl-C).")
    ] = 0.0,
) -> None:
    """Run N meters behind M RTUs for K tenants from one scenario file, on an accelerated clock,
    against a local cloud of its own that knows the fleet's tenants; one agent process per RTU."""
    scenario = load_scenario(scenario_file)
    if speed is not None:
        scenario = scenario.model_copy(update={"speed": speed})
    if LocalCloudState.read(state_dir):
        raise typer.BadParameter(
            f"a local cloud already runs with its state in {state_dir}; stop it (hemera local down "
            "--state-dir ...) or give the fleet its own --state-dir"
        )
    config = LocalCloudConfig(
        state_dir=state_dir,
        tenants_dir=write_fleet_tenants(scenario, state_dir),
        api_port=api_port,
        speed=scenario.speed,
        function_log=state_dir / "logs" / "functions.log",
    )
    with (
        LocalCloud(config) as cloud,
        run_fleet(scenario, state_dir=state_dir, broker_port=cloud.mqtt_port) as fleet,
    ):
        keys = {t.id: cloud.issue_api_key(t.id, "fleet") for t in fleet.tenants}
        start_agents(fleet, state_dir / "logs")
        for rtu in fleet.rtus:
            say(
                f"{rtu.tenant.id}/{rtu.rtu_id}: {len(rtu.tenant.meters_of(rtu.rtu_id))} meter(s), "
                f"agent config {rtu.config_path}"
            )
        say(
            f"{fleet.meter_count} meters, {len(fleet.rtus)} RTUs, {len(fleet.tenants)} tenants; clock from "
            f"{fleet.history_start.isoformat()} at {scenario.speed:g}x; portal API {cloud.api_url}"
        )
        for tenant_id, key in keys.items():
            say(f"{tenant_id} API key: {key}")
        _wait(exit_after)
        assert cloud.settings is not None
        store = portal_ports(cloud.settings).store
        until = fleet.clock.now()
        for tenant in fleet.tenants:
            for meter in tenant.meters:
                got = store.load_profile(
                    TenantContext(tenant.id), meter.id, Channel.ACTIVE_IMPORT, fleet.history_start, until
                )
                say(f"stored {tenant.id}/{meter.id}: {len(got)} intervals")


def _wait(seconds: float) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait(seconds if seconds > 0 else None)


def main() -> None:
    """`python -m hemera_local.fleet SCENARIO`, the same as `hemera sim SCENARIO`."""
    typer.run(fleet_command)


if __name__ == "__main__":
    main()
