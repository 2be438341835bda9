"""`hemera tenant apply FILE` / `hemera tenant offboard ID`: onboarding and offboarding a tenant in
the AWS account the environment points at (default) or on a running local cloud (`--local`)."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hemera.config import RuntimeSettings
from hemera.domain.tenancy import validate_id
from hemera.tenants import InvalidTenantFile, load_tenant_file
from hemera_local.broker import acl_with_tenant
from hemera_local.cloud import REPO_ROOT, LocalCloudState, process_start
from hemera_local.pki import LocalPki
from hemera_local.quarantine_cli import target_settings
from hemera_local.tenant_ops import PROVISION, REGISTER, ApplyReport, Remaining, TenantOperations

tenant_app = typer.Typer(help="Onboard (apply) and offboard tenants.", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 200)

StateDir = Annotated[
    Path, typer.Option(help="Local state: the running local cloud (--local) and device private keys.")
]
UseLocal = Annotated[
    bool, typer.Option("--local", help="The running local cloud (hemera local up) instead of AWS.")
]


def _operations(state_dir: Path, use_local: bool) -> TenantOperations:
    settings: RuntimeSettings = target_settings(state_dir, not use_local, os.environ)
    if use_local:
        # The running broker trusts its own CA: register certificates it issued.
        return TenantOperations(settings, state_dir / "tenants", REGISTER, LocalPki(state_dir / "pki"))
    return TenantOperations(settings, state_dir / "tenants", PROVISION)


def _update_local_broker(state_dir: Path, tenant_id: str, device_ids: list[str]) -> bool:
    """Rewrite the running broker's ACL for this tenant and make it reload (SIGHUP)."""
    state = LocalCloudState.read(state_dir)
    acl_path = state_dir / "broker" / "mosquitto.acl"
    if state is None or not acl_path.exists():
        return False
    acl_path.write_text(acl_with_tenant(acl_path.read_text(), tenant_id, device_ids))
    pid = state.children.get("mosquitto")
    # Signal only the broker the local cloud recorded, never a process that reused its pid.
    if pid is None or process_start(pid) != state.started.get(str(pid)):
        return False
    os.kill(pid, signal.SIGHUP)  # mosquitto reloads its ACL file
    return True


def apply_table(report: ApplyReport) -> Table:
    table = Table(title=f"hemera tenant apply {report.tenant_id}")
    for column in ("kind", "name", "action"):
        table.add_column(column, no_wrap=True)
    for change in report.changes:
        table.add_row(change.kind, change.name, change.action)
    table.caption = "changed" if report.changed else "nothing changed: already applied"
    return table


def remaining_table(tenant_id: str, remaining: Remaining) -> Table:
    table = Table(title=f"what remains of {tenant_id}")
    table.add_column("kind")
    table.add_column("count", justify="right")
    for item in fields(remaining):
        table.add_row(item.name.replace("_", " "), str(getattr(remaining, item.name)))
    return table


@tenant_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="The tenant file, tenants/<id>.yaml.")],
    use_local: UseLocal = False,
    state_dir: StateDir = REPO_ROOT / ".hemera",
) -> None:
    """Make the platform match a tenant file (idempotent: a second run changes nothing).

    Registry items, IoT thing group, a thing + certificate per RTU, the tenant's IoT policy, an API
    key when the tenant has none (printed once), the SNS notification topic, the notification
    channels, a webhook signing secret when the tenant has webhooks (printed once) and, with
    --local, the broker's ACL."""
    try:
        tenant = load_tenant_file(file)
    except InvalidTenantFile as error:
        console.print(f"[red]invalid tenant file[/] {error.file}", highlight=False)
        for where, why in error.problems:
            console.print(f"  {where}: {why}", markup=False, highlight=False)
        raise typer.Exit(2) from error
    operations = _operations(state_dir, use_local)
    report = operations.apply(tenant)
    console.print(apply_table(report))
    if use_local and _update_local_broker(state_dir, tenant.id, [r.id for r in tenant.rtus]):
        console.print("broker ACL reloaded")
    if report.api_key:
        console.print(f"{tenant.id} API key (shown once, only its hash is stored): {report.api_key}")
    if report.webhook_secret:
        console.print(
            f"{tenant.id} webhook signing secret (shown once; give it to the webhook receivers, "
            f"see README: Notifications): {report.webhook_secret}"
        )
    if not use_local:
        console.print(f"device private keys: {operations.tenant_credentials(tenant.id)} (never uploaded)")


@tenant_app.command("offboard")
def offboard(
    tenant_id: Annotated[str, typer.Argument(help="The tenant id.")],
    archive_dir: Annotated[Path, typer.Option(help="Where the export archive is written.")] = Path("."),
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    use_local: UseLocal = False,
    state_dir: StateDir = REPO_ROOT / ".hemera",
) -> None:
    """Export the tenant's data to an archive, delete it all, and list what remains (nothing)."""
    validate_id(tenant_id, "tenant")
    if not yes:
        typer.confirm(f"export and then DELETE every item, object and device of {tenant_id}?", abort=True)
    report = _operations(state_dir, use_local).offboard(tenant_id, archive_dir)
    counts = report.manifest["counts"]
    console.print(
        f"archive {report.archive}: {counts['items']} items, {counts['api_keys']} API keys, "
        f"{counts['objects']} objects, {counts['things']} things (manifest.json holds the SHA-256 of each)"
    )
    if use_local:
        _update_local_broker(state_dir, tenant_id, [])
    console.print(remaining_table(tenant_id, report.remaining))
    if report.remaining.total:
        raise typer.Exit(1)
