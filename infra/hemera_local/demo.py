"""`hemera demo`: the local cloud, the demo tenants and, per RTU, a Modbus TCP gateway simulator
for its Modbus meters, a DLMS/COSEM simulator for each DLMS meter and one device agent process,
on an accelerated clock.

Each RTU's meters start recording at the beginning of *yesterday* in their tenant's time zone and
run `speed` times faster than real time until they catch up with now. The demo is ready when every
meter's full local yesterday (96 intervals) is in the store; it then writes `.hemera/demo.json`
and prints the API keys and ready-to-paste `curl` lines.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hemera.definitions import EXPORTS_DUE_SCHEDULE
from hemera.domain.notifications import tenant_topic_name
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.services.access import Caller
from hemera.services.exports import list_exports
from hemera.tenants import TenantDefinition
from hemera.wiring import export_ports, portal_ports
from hemera_local.agents import modbus_meter_entries, write_agent_config
from hemera_local.broker import free_port, wait_for_port
from hemera_local.cloud import LocalCloud, LocalCloudConfig

INTERVALS_PER_DAY = 96


@dataclass(frozen=True)
class PortalLogin:
    """A user of the portal's pool the demo creates: its credentials and what it may see."""

    username: str
    password: str
    group: str
    customer: str | None = None


def demo_password() -> str:
    # Fresh per demo; upper, lower, digit and symbol, as the pool's password policy asks.
    return f"Hemera-{secrets.token_hex(6)}-Demo1!"


@dataclass
class DemoTenant:
    definition: TenantDefinition
    api_key: str
    day: date  # the local day the demo shows: yesterday in the tenant's zone
    logins: tuple[PortalLogin, ...] = ()

    @property
    def day_bounds(self) -> tuple[datetime, datetime]:
        zone = self.definition.zone
        start = datetime.combine(self.day, clock_time(0), tzinfo=zone)
        return start, datetime.combine(self.day + timedelta(days=1), clock_time(0), tzinfo=zone)


class Demo:
    def __init__(self, config: LocalCloudConfig, console: Console) -> None:
        self.config = config
        self.console = console
        self.cloud = LocalCloud(config)
        self.tenants: dict[str, DemoTenant] = {}

    def __enter__(self) -> Demo:
        with self.console.status("starting the local cloud…"):
            self.cloud.start()
        try:
            for tenant in self.cloud.tenants.values():
                self._start_tenant(tenant)
        except BaseException:
            self.cloud.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        with self.console.status("stopping the demo…"):
            self.cloud.stop()

    # --- fleet -----------------------------------------------------------------------------------
    def _start_tenant(self, tenant: TenantDefinition) -> None:
        now_local = datetime.now(tenant.zone)
        yesterday = now_local.date() - timedelta(days=1)
        history_start = datetime.combine(yesterday, clock_time(0), tzinfo=tenant.zone)
        self.tenants[tenant.id] = DemoTenant(
            tenant, self.cloud.issue_api_key(tenant.id, "demo portal"), yesterday, self._add_logins(tenant)
        )
        tenant_file = self.config.tenants_dir / f"{tenant.id}.yaml"
        for rtu in tenant.rtus:
            meters: list[dict[str, Any]] = []
            history = [
                "--history-start",
                history_start.astimezone(UTC).isoformat(),
                "--speed",
                str(self.config.speed),
            ]
            modbus = [m for m in tenant.meters_of(rtu.id) if m.protocol == "modbus"]
            if modbus:
                # One Modbus TCP gateway per RTU: its meters are unit ids on one port.
                port = free_port()
                self.cloud.spawn(
                    f"meters-{tenant.id}-{rtu.id}",
                    [
                        sys.executable,
                        "-m",
                        "hemera_agent.simulators.modbus_meter",
                        "--tenant-file",
                        str(tenant_file),
                        "--rtu",
                        rtu.id,
                        "--port",
                        str(port),
                        *history,
                    ],
                )
                wait_for_port(port, timeout_s=20)
                meters += modbus_meter_entries(modbus, port)
            for meter in (m for m in tenant.meters_of(rtu.id) if m.protocol == "dlms"):
                # A DLMS meter is its own TCP endpoint (wrapper) with its own LLS password.
                port, password = free_port(), secrets.token_hex(8)
                self.cloud.spawn(
                    f"dlms-{tenant.id}-{meter.id}",
                    [
                        sys.executable,
                        "-m",
                        "hemera_agent.simulators.dlms_meter",
                        "--tenant-file",
                        str(tenant_file),
                        "--meter",
                        meter.id,
                        "--port",
                        str(port),
                        "--password",
                        password,
                        *history,
                    ],
                )
                wait_for_port(port, timeout_s=20)
                meters.append(
                    {
                        "id": meter.id,
                        "model": meter.model,
                        "protocol": "dlms",
                        "host": "127.0.0.1",
                        "port": port,
                        "password": password,
                    }
                )
            config_file = self._agent_config(tenant, rtu.id, meters)
            agent = Path(sys.executable).with_name("hemera-agent")
            self.cloud.spawn(f"agent-{tenant.id}-{rtu.id}", [str(agent), "run", "--config", str(config_file)])

    def _add_logins(self, tenant: TenantDefinition) -> tuple[PortalLogin, ...]:
        """An operator of the tenant and a customer user of the customer of its first meter."""
        customer = tenant.meters[0].customer
        logins = (
            PortalLogin(f"{tenant.id}.operator", demo_password(), "operator"),
            PortalLogin(f"{tenant.id}.{customer}", demo_password(), "customer", customer),
        )
        for login in logins:
            self.cloud.add_portal_user(login.username, login.password, login.group, tenant.id, login.customer)
        return logins

    def _agent_config(self, tenant: TenantDefinition, rtu_id: str, meters: list[dict[str, Any]]) -> Path:
        return write_agent_config(
            self.config.state_dir / "agents" / f"{tenant.id}--{rtu_id}",
            tenant_id=tenant.id,
            rtu_id=rtu_id,
            credentials=self.cloud.device_credentials(tenant.id, rtu_id),
            broker_host="127.0.0.1",
            broker_port=self.cloud.mqtt_port,
            meters=meters,
            # One poll per wall second reads what the fast meters recorded meanwhile.
            poll_seconds=1,
        )

    # --- readiness -------------------------------------------------------------------------------
    def day_totals(self) -> dict[tuple[str, str], tuple[int, Decimal]]:
        """(tenant, meter) → (intervals stored for the demo day, kWh imported)."""
        assert self.cloud.settings
        store = portal_ports(self.cloud.settings).store
        totals = {}
        for tenant_id, demo in self.tenants.items():
            start, end = demo.day_bounds
            for meter in demo.definition.meters:
                got = store.load_profile(
                    TenantContext(tenant_id), meter.id, Channel.ACTIVE_IMPORT, start, end
                )
                totals[(tenant_id, meter.id)] = (len(got), sum((r.value for r in got), Decimal(0)))
        return totals

    def wait_until_ready(self, timeout_s: float = 300.0) -> float:
        """Block until every meter has its full demo day; returns the seconds it took."""
        started = time.monotonic()
        expected = {key: INTERVALS_PER_DAY for key in self.day_totals()}
        with self.console.status("meters recording, agents publishing…") as status:
            while True:
                totals = self.day_totals()
                done = sum(min(n, INTERVALS_PER_DAY) for n, _ in totals.values())
                status.update(f"intervals of yesterday arrived: {done}/{sum(expected.values())}")
                if all(n >= INTERVALS_PER_DAY for n, _ in totals.values()):
                    return time.monotonic() - started
                if time.monotonic() - started > timeout_s:
                    raise TimeoutError(
                        f"demo data incomplete after {timeout_s:.0f} s: {totals}; see {self.config.state_dir}/logs"
                    )
                self._check_children()
                time.sleep(1)

    def _check_children(self) -> None:
        for name, child in self.cloud.children.items():
            if child.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {child.returncode}; see {self.config.state_dir}/logs/{name}.log"
                )

    # --- billing exports ---------------------------------------------------------------------------
    def run_due_exports(self) -> dict[str, Any]:
        """Fire the hourly "exports due" job now, as the scheduler does (at the demo's speed it
        already fires every few seconds): the daily schedules export the demo day, the monthly
        ones last month. Idempotent: exports already written are only reported."""
        result: dict[str, Any] = self.cloud.run_schedule(EXPORTS_DUE_SCHEDULE.name)
        return result

    def wait_for_exported_day(self, timeout_s: float = 120.0) -> bool:
        """Block until each tenant's export of the demo day holds data (bounded): the scheduler
        may have exported the day before VEE finished it, and the restatements that follow
        wait for the restatements job (every 15 minutes, a fraction of a second at the demo's
        speed). False if the time ran out."""
        assert self.cloud.settings
        ports = export_ports(self.cloud.settings)
        wanted = [
            (TenantContext(t.definition.id), f"{t.day:%Y%m%d}-{s.id}")
            for t in self.tenants.values()
            for s in t.definition.exports
            if s.period == "previous_day"
        ]
        deadline = time.monotonic() + timeout_s
        with self.console.status("billing exports of the demo day (VEE, then restatements)…"):
            while True:
                exports = [ports.index.get(ctx, export_id) for ctx, export_id in wanted]
                if all(e is not None and sum(f.rows for f in e.latest.files) > 0 for e in exports):
                    return True
                if time.monotonic() > deadline:
                    return False
                self._check_children()
                time.sleep(1)

    def exports_of(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's exports as `GET /v1/exports` lists them (latest version of each)."""
        assert self.cloud.settings
        page = list_exports(export_ports(self.cloud.settings), Caller(TenantContext(tenant_id)), None, 50)
        return [
            {
                "id": e.id,
                "period": f"{e.period_start.isoformat()}..{e.period_end.isoformat()}",
                "schedule": e.schedule_id,
                "version": e.latest.version,
                "reason": e.latest.reason,
                "files": [f.name for f in e.latest.files],
                "rows": sum(f.rows for f in e.latest.files),
            }
            for e in page.items
            if e.versions  # an on-demand export still pending (or failed) has no files to show
        ]

    # --- report ----------------------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        totals = self.day_totals()
        tenants = list(self.tenants.values())
        document: dict[str, Any] = {
            "api_url": self.cloud.api_url,
            "openapi": "api_spec/openapi.yaml",
            "api_docs_url": self.cloud.docs_url,
            "mqtt": {
                "host": "127.0.0.1",
                "port": self.cloud.mqtt_port,
                "ca_file": str(self.cloud.pki.ca_cert),
            },
            "aws_endpoint": self.cloud.target.endpoint_url if self.cloud.target else None,
            "tenants": {},
        }
        for index, demo in enumerate(tenants):
            other = tenants[(index + 1) % len(tenants)]
            first_meter = demo.definition.meters[0].id
            document["tenants"][demo.definition.id] = {
                "name": demo.definition.name,
                "timezone": demo.definition.timezone,
                "api_key": demo.api_key,
                "day": demo.day.isoformat(),
                "meters": [
                    {
                        "id": m.id,
                        "customer": m.customer,
                        "rtu": m.rtu,
                        "model": m.model,
                        "intervals": totals[(demo.definition.id, m.id)][0],
                        "active_import_kwh": float(totals[(demo.definition.id, m.id)][1]),
                    }
                    for m in demo.definition.meters
                ],
                "curl": self.curl(demo.api_key, first_meter, demo.day),
                "logins": [
                    {"username": u.username, "password": u.password, "group": u.group, "customer": u.customer}
                    for u in demo.logins
                ],
                "curl_other_tenant_404": self.curl(other.api_key, first_meter, demo.day),
                "exports": self.exports_of(demo.definition.id),
                "curl_exports": f"curl -s -H 'x-api-key: {demo.api_key}' '{self.cloud.api_url}/v1/exports'",
                "notifications": {
                    "topic": tenant_topic_name(demo.definition.id),
                    "channels": [f"{c.kind}:{c.target}" for c in demo.definition.notifications],
                    "webhook_secret": self.cloud.webhook_secrets.get(demo.definition.id),
                },
            }
        return document

    def curl(self, api_key: str, meter_id: str, day: date) -> str:
        return (
            f"curl -s -H 'x-api-key: {api_key}' "
            f"'{self.cloud.api_url}/v1/meters/{meter_id}/load-profile?from={day.isoformat()}&channel=active_import'"
        )

    def report(self) -> Path:
        self.run_due_exports()
        self.wait_for_exported_day()
        document = self.document()
        path = self.config.state_dir / "demo.json"
        path.write_text(json.dumps(document, indent=2))
        table = Table(title=f"Hemera demo — portal API {self.cloud.api_url}")
        for column in ("tenant", "time zone", "day", "meter", "customer", "intervals", "kWh"):
            table.add_column(column)
        for tenant_id, entry in document["tenants"].items():
            for meter in entry["meters"]:
                table.add_row(
                    tenant_id,
                    entry["timezone"],
                    entry["day"],
                    meter["id"],
                    meter["customer"],
                    str(meter["intervals"]),
                    f"{meter['active_import_kwh']:.3f}",
                )
        self.console.print(table)
        for tenant_id, entry in document["tenants"].items():
            self.console.print(f"[bold]{tenant_id}[/] API key: {entry['api_key']}")
            self.console.print(entry["curl"], soft_wrap=True, highlight=False)
            for login in entry["logins"]:
                sees = f"customer {login['customer']}" if login["customer"] else "the whole tenant"
                self.console.print(
                    f"  {login['group']} login ({sees}): --user {login['username']} --password {login['password']}",
                    soft_wrap=True,
                    highlight=False,
                )
        self.console.print(
            f"A user's token: TOKEN=$(hemera login --user U --password P --state-dir {self.config.state_dir}); "
            f"curl -s -H \"Authorization: Bearer $TOKEN\" '{self.cloud.api_url}/v1/meters'",
            soft_wrap=True,
            highlight=False,
        )
        for tenant_id, entry in document["tenants"].items():
            self.console.print(f"[bold]{tenant_id}[/] billing exports (scheduled; GET /v1/exports):")
            for export in entry["exports"]:
                self.console.print(
                    f"  {export['id']} {export['period']} v{export['version']} ({export['reason']}): "
                    f"{', '.join(export['files'])} — {export['rows']} rows",
                    soft_wrap=True,
                    highlight=False,
                )
            self.console.print(entry["curl_exports"], soft_wrap=True, highlight=False)
            notifications = entry["notifications"]
            secret = notifications["webhook_secret"]
            self.console.print(
                f"  alarm notifications: SNS topic {notifications['topic']}, channels "
                f"{', '.join(notifications['channels']) or 'none'}"
                + (f", webhook signing secret {secret}" if secret else ""),
                soft_wrap=True,
                highlight=False,
            )
        first = next(iter(document["tenants"].values()))
        self.console.print("Another tenant's key gets 404 for the same meter:")
        self.console.print(first["curl_other_tenant_404"], soft_wrap=True, highlight=False)
        self.console.print(f"API docs (Swagger UI, try it out with a key above): {document['api_docs_url']}")
        self.console.print(f"Written to {path}")
        return path
