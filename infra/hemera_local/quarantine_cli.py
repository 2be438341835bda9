"""`hemera quarantine list|show|replay`: the rejected messages of the running local cloud (or, with
`--aws`, of the AWS account the environment points at), and their replay after a fix."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hemera.config import AwsMode, AwsTarget, RuntimeSettings
from hemera.domain.errors import QuarantineKeyOutsideTenant, QuarantineNotReplayable
from hemera.ports import QuarantineRecord
from hemera.services.ingest import IngestPorts
from hemera.services.quarantine import ALL, ReplayReport, ReplayStatus, replay
from hemera.wiring import ingest_ports
from hemera_local.cloud import LOCAL_CREDENTIALS, REPO_ROOT, LocalCloudState

quarantine_app = typer.Typer(
    help="Rejected messages: list them, show one, replay them after a fix.", no_args_is_help=True
)
# The local cloud's in-process functions redirect sys.stdout to their log; write to the terminal.
# Runs in its own process (no in-process functions redirect stdout here), so plain stdout; a pipe
# gets a width that keeps keys whole.
console = Console(width=None if sys.stdout.isatty() else 200)
# How the commands reach the quarantine, store and registry (tests substitute their own).
ports_for: Callable[[RuntimeSettings], IngestPorts] = ingest_ports

StateDir = Annotated[Path, typer.Option(help="State directory of the running local cloud.")]
UseAws = Annotated[
    bool, typer.Option("--aws", help="Real AWS, from the HEMERA_* and AWS_* environment variables.")
]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Tenant id.")]
Unattributed = Annotated[
    bool, typer.Option("--unattributed", help="The messages whose topic named no valid tenant.")
]


def target_settings(state_dir: Path, use_aws: bool, env: Mapping[str, str]) -> RuntimeSettings:
    """Settings of real AWS (`--aws`) or of the local cloud recorded under `state_dir`."""
    if use_aws:
        return RuntimeSettings.from_environ(env)
    state = LocalCloudState.read(state_dir)
    if state is None:
        console.print(
            f"no local cloud is running under {state_dir} (hemera local up), and --aws was not given"
        )
        raise typer.Exit(1)
    # moto accepts any credentials; these keep boto3 from looking for real ones.
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    target = AwsTarget.from_environ(
        {**env, "HEMERA_AWS_MODE": AwsMode.LOCAL.value, "HEMERA_AWS_ENDPOINT": state.moto_url}
    )
    return RuntimeSettings.local(target)


def _ports(state_dir: Path, use_aws: bool) -> IngestPorts:
    return ports_for(target_settings(state_dir, use_aws, os.environ))


def _refuse(error: Exception) -> typer.Exit:
    console.print(f"[red]refused:[/] {error}", markup=True, highlight=False)
    return typer.Exit(2)


@quarantine_app.command("list")
def list_records(
    tenant: TenantOpt = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason, e.g. unknown_meter.")] = None,
    state_dir: StateDir = REPO_ROOT / ".hemera",
    use_aws: UseAws = False,
) -> None:
    """Quarantined messages of one tenant, or of every tenant (and the unattributed ones)."""
    quarantine = _ports(state_dir, use_aws).quarantine
    tenants = [tenant] if tenant else list(quarantine.tenants())
    table = Table(title="Quarantine")
    for column in ("key", "tenant", "reason", "received", "bytes"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    count = 0
    for tenant_id in tenants:
        for record in quarantine.list(tenant_id):
            if reason and record.reason != reason:
                continue
            count += 1
            table.add_row(
                record.key or "",
                record.tenant_id or "(unattributed)",
                record.reason,
                f"{record.received_at:%Y-%m-%d %H:%M:%S}",
                str(len(record.original)),
                Text(record.detail),
            )
    console.print(table if count else "no quarantined messages")


def original_text(original: bytes, as_hex: bool = False) -> str:
    """The original bytes as text when they are printable UTF-8, else a hex dump (16 per line)."""
    if not as_hex:
        try:
            text = original.decode()
        except UnicodeDecodeError:
            text = None
        if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
            return text
    return "\n".join(
        f"{offset:08x}  {original[offset : offset + 16].hex(' ')}" for offset in range(0, len(original), 16)
    )


@quarantine_app.command("show")
def show(
    key: Annotated[str, typer.Argument(help="The record's key, as `list` prints it.")],
    tenant: TenantOpt = None,
    unattributed: Unattributed = False,
    as_hex: Annotated[bool, typer.Option("--hex", help="The original bytes as hex even if text.")] = False,
    state_dir: StateDir = REPO_ROOT / ".hemera",
    use_aws: UseAws = False,
) -> None:
    """One record: reason, detail, topic and the original bytes."""
    if bool(tenant) == unattributed:
        console.print("give --tenant T or --unattributed")
        raise typer.Exit(2)
    try:
        record = _ports(state_dir, use_aws).quarantine.get(tenant, key)
    except QuarantineKeyOutsideTenant as error:
        raise _refuse(error) from error
    if record is None:
        console.print(f"no quarantined message {key}")
        raise typer.Exit(1)
    console.print(record_table(record))
    console.print(Text(original_text(record.original, as_hex)))


def record_table(record: QuarantineRecord) -> Table:
    table = Table(show_header=False, title=record.key)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in (
        ("tenant", record.tenant_id or "(unattributed)"),
        ("reason", record.reason),
        ("detail", record.detail),
        ("topic", record.topic or "-"),
        ("message id", record.message_id),
        ("received", record.received_at.isoformat()),
        ("bytes", str(len(record.original))),
    ):
        table.add_row(name, Text(value))
    return table


@quarantine_app.command("replay")
def replay_records(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id.")],
    keys: Annotated[list[str] | None, typer.Argument(help="Keys to replay, as `list` prints them.")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Every record of the tenant.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would happen; change nothing.")
    ] = False,
    state_dir: StateDir = REPO_ROOT / ".hemera",
    use_aws: UseAws = False,
) -> None:
    """Ingest quarantined messages again (after registering a meter, deploying a meter model…).

    Replayed messages leave the quarantine; one rejected again stays with its new reason.

    Exit code 1 when a transient error left records untouched (run it again)."""
    if bool(keys) == replay_all:
        console.print("give the keys to replay or --all")
        raise typer.Exit(2)
    try:
        report = replay(
            _ports(state_dir, use_aws), tenant, ALL if replay_all else keys or [], dry_run=dry_run
        )
    except (QuarantineKeyOutsideTenant, QuarantineNotReplayable) as error:
        raise _refuse(error) from error
    console.print(report_table(report))
    if report.count(ReplayStatus.TRANSIENT_ERROR):
        raise typer.Exit(1)


def report_table(report: ReplayReport) -> Table:
    title = f"Replay of {report.tenant_id}" + (" (dry run: nothing changed)" if report.dry_run else "")
    table = Table(title=title)
    for column in ("key", "outcome", "reason", "was", "intervals"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for result in report.results:
        table.add_row(
            result.key,
            result.status.value,
            result.reason or "",
            result.previous_reason or "",
            str(result.intervals),
            Text(result.detail),
        )
    summary = ", ".join(
        f"{report.count(status)} {status.value}" for status in ReplayStatus if report.count(status)
    )
    table.caption = f"{summary or 'nothing to replay'}; {report.intervals} intervals"
    return table
