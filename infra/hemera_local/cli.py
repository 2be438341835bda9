"""`hemera`: the platform engineer's command line (local cloud and demo)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import boto3
import typer
from rich.console import Console
from rich.table import Table

from hemera_local import identity
from hemera_local.cloud import (
    LOCAL_CREDENTIALS,
    REPO_ROOT,
    LocalCloud,
    LocalCloudConfig,
    LocalCloudState,
    stop_recorded,
)
from hemera_local.fleet import fleet_command
from hemera_local.identity import UserPoolIds
from hemera_local.quarantine_cli import quarantine_app
from hemera_local.tenant_cli import tenant_app

app = typer.Typer(help="Hemera Cloud: the offline local cloud and the demo.", no_args_is_help=True)
local = typer.Typer(help="The local cloud: moto, mosquitto (mTLS), rules bridge, scheduler, portal API.")
app.add_typer(local, name="local")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(tenant_app, name="tenant")
# The functions running in-process log to a file (see LocalCloudConfig.function_log), so the
# console writes to the real terminal; a pipe gets a width that fits the demo table.
console = Console(file=sys.__stdout__, width=None if sys.__stdout__ and sys.__stdout__.isatty() else 160)

StateDir = Annotated[Path, typer.Option(help="Where state, certificates and logs live.")]
TenantsDir = Annotated[Path, typer.Option(help="Tenant definitions to register.")]
Port = Annotated[int, typer.Option(help="0 = any free port.")]


def wait_for_shutdown() -> None:
    """Block until Ctrl-C or SIGTERM (`hemera local down`)."""
    stop = threading.Event()

    def _handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    while not stop.wait(0.5):
        pass


def status_table(cloud: LocalCloud) -> Table:
    assert cloud.target
    table = Table(title="Hemera local cloud", show_header=False)
    table.add_row("AWS APIs (moto)", str(cloud.target.endpoint_url))
    table.add_row("MQTT (mTLS)", f"127.0.0.1:{cloud.mqtt_port}  CA {cloud.pki.ca_cert}")
    table.add_row("Portal API", str(cloud.api_url))
    table.add_row("API docs (Swagger UI)", str(cloud.docs_url))
    table.add_row("Tenants", ", ".join(sorted(cloud.tenants)))
    table.add_row("State", str(cloud.state_dir))
    return table


@local.command("up")
def local_up(
    state_dir: StateDir = REPO_ROOT / ".hemera",
    tenants_dir: TenantsDir = REPO_ROOT / "tenants",
    moto_port: Port = 0,
    mqtt_port: Port = 0,
    api_port: Port = 8000,
) -> None:
    """Start the local cloud and keep it in the foreground until Ctrl-C."""
    config = LocalCloudConfig(
        state_dir=state_dir,
        tenants_dir=tenants_dir,
        moto_port=moto_port,
        mqtt_port=mqtt_port,
        api_port=api_port,
        function_log=state_dir / "logs" / "functions.log",
    )
    cloud = LocalCloud(config)
    with console.status("starting the local cloud…"):
        cloud.start()
    try:
        console.print(status_table(cloud))
        console.print("Ctrl-C or [bold]hemera local down[/] stops it.")
        wait_for_shutdown()
    finally:
        with console.status("stopping…"):
            cloud.stop()


@local.command("down")
def local_down(state_dir: StateDir = REPO_ROOT / ".hemera") -> None:
    """Stop a local cloud (and demo) started by `hemera local up` or `hemera demo`."""
    stopped = stop_recorded(state_dir)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "no local cloud is running")


@local.command("status")
def local_status(state_dir: StateDir = REPO_ROOT / ".hemera") -> None:
    """Print what the running local cloud recorded (endpoints, process ids)."""
    state = LocalCloudState.read(state_dir)
    if state is None:
        console.print("no local cloud is running")
        raise typer.Exit(1)
    console.print_json(json.dumps(state.__dict__))


@app.command("demo")
def demo(
    state_dir: StateDir = REPO_ROOT / ".hemera",
    tenants_dir: TenantsDir = REPO_ROOT / "tenants",
    api_port: Port = 8000,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second until caught up.")] = 2000.0,
    exit_when_ready: Annotated[
        bool, typer.Option(help="Stop once demo.json is written (for scripts).")
    ] = False,
) -> None:
    """The local cloud plus the demo tenants' simulated meters and RTU agents."""
    from hemera_local.demo import Demo

    config = LocalCloudConfig(
        state_dir=state_dir,
        tenants_dir=tenants_dir,
        api_port=api_port,
        speed=speed,
        function_log=state_dir / "logs" / "functions.log",
    )
    with Demo(config, console) as running:
        running.wait_until_ready()
        running.report()
        if not exit_when_ready:
            console.print("Ctrl-C or [bold]hemera local down[/] stops the demo.")
            wait_for_shutdown()


app.command("sim")(fleet_command)


@app.command("login")
def login_command(
    user: Annotated[str, typer.Option(help="A portal user (the demo prints its users).")],
    password: Annotated[str, typer.Option(help="The user's password.")],
    state_dir: StateDir = REPO_ROOT / ".hemera",
) -> None:
    """Sign in to the running local cloud's user pool and print the ID token (the API's Bearer)."""
    state = LocalCloudState.read(state_dir)
    if state is None or state.user_pool_id is None or state.user_pool_client_id is None:
        console.print(f"no local cloud with a user pool is running (no {state_dir}/local.json)")
        raise typer.Exit(1)
    cognito = boto3.client(
        "cognito-idp",
        region_name=state.user_pool_id.split("_", 1)[0],  # a pool id is `<region>_<id>`
        endpoint_url=state.moto_url,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    pool = UserPoolIds(state.user_pool_id, state.user_pool_client_id)
    try:
        tokens = identity.login(cognito, pool, user, password)
    except cognito.exceptions.NotAuthorizedException as exc:
        console.print(f"login refused: {exc.response['Error']['Message']}")
        raise typer.Exit(1) from exc
    # Plain print: the token alone on stdout, so `TOKEN=$(hemera login …)` works.
    print(tokens["IdToken"], file=sys.__stdout__)
