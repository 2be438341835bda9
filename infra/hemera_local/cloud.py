"""The local cloud: moto server + mosquitto (mTLS) + rules bridge + scheduler + `chalice local`.

`LocalCloud.start()` brings it all up on 127.0.0.1 (free ports unless given), creates the
resources from `hemera.definitions`, registers the tenants from `tenants/`, and records what it
started in `<state_dir>/local.json` so `hemera local down` can stop it by process id.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import requests

from hemera import aws
from hemera.adapters.commands_mqtt import LocalBroker
from hemera.config import AwsMode, AwsTarget, RuntimeSettings
from hemera.definitions import PORTAL_API_DIR, QUEUE_CONSUMERS, SCHEDULES, TOPIC_RULES, ScheduleDef
from hemera.domain.tenancy import thing_name
from hemera.observability import logger as function_logger
from hemera.services.access import issue_api_key
from hemera.services.onboarding import onboard_tenant
from hemera.tenants import TenantDefinition, load_tenant_dir
from hemera.wiring import onboarding_stores, portal_ports
from hemera_local.bridge import LambdaContext, RulesBridge, cold_start, load_handler
from hemera_local.broker import (
    BRIDGE_IDENTITY,
    Mosquitto,
    acl_text,
    free_port,
    port_in_use,
    wait_for_port,
)
from hemera_local.docs_server import ApiDocsServer
from hemera_local.identity import UserPoolIds, add_user, ensure_user_pool
from hemera_local.moto_server import ProcessMotoServer, ThreadMotoServer
from hemera_local.pki import CertPaths, LocalPki
from hemera_local.resources import create_resources
from hemera_local.scheduler import LocalScheduler, scheduled_event
from hemera_local.tenant_ops import REGISTER, TenantOperations
from hemera_local.usage import UsageCounter

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI_SPEC = REPO_ROOT / "api_spec" / "openapi.yaml"
STATE_FILE = "local.json"

# Environment of every handler the local cloud runs (in-process or under `chalice local`).
_LOCAL_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Hemera",
    "POWERTOOLS_DEV": "false",
}
# moto accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "hemera-local", "AWS_SECRET_ACCESS_KEY": "hemera-local"}


class LocalCloudError(RuntimeError):
    pass


@dataclass
class LocalCloudState:
    pid: int
    moto_url: str
    mqtt_host: str
    mqtt_port: int
    api_url: str | None
    ca_file: str
    children: dict[str, int] = field(default_factory=dict)
    # pid -> the kernel's start time of that process, so `hemera local down` never signals an
    # unrelated process that reused a recorded pid (a stale local.json after a reboot).
    started: dict[str, int] = field(default_factory=dict)
    docs_url: str | None = None  # Swagger UI of the portal API
    # The portal's Cognito user pool on the moto server (`hemera login` signs in against it).
    user_pool_id: str | None = None
    user_pool_client_id: str | None = None

    def write(self, state_dir: Path) -> None:
        (state_dir / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, state_dir: Path) -> LocalCloudState | None:
        path = state_dir / STATE_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None


@dataclass
class LocalCloudConfig:
    state_dir: Path = REPO_ROOT / ".hemera"
    tenants_dir: Path = REPO_ROOT / "tenants"
    moto_port: int = 0
    mqtt_port: int = 0
    api_port: int = 0
    with_api: bool = True
    speed: float = 1.0
    region: str = "us-east-1"
    # Where the in-process functions' logs and metrics go (CloudWatch's part); None = stdout.
    function_log: Path | None = None
    # moto in a child process (its own core: the benchmark) instead of a thread of this one.
    moto_in_own_process: bool = False


class LocalCloud:
    def __init__(self, config: LocalCloudConfig) -> None:
        self.config = config
        self._saved_environ: dict[str, str] | None = None
        self.state_dir = config.state_dir
        self.pki = LocalPki(config.state_dir / "pki")
        self.tenants: dict[str, TenantDefinition] = {}
        # Each tenant's webhook signing secret, as `apply_tenant` created it (None shown: it had one).
        self.webhook_secrets: dict[str, str] = {}
        self._moto: ThreadMotoServer | ProcessMotoServer | None = None
        # What the managed services the bridge stands in for were used for (IoT Core, Lambda).
        self.bridge_usage = UsageCounter()
        self._broker: Mosquitto | None = None
        self._bridge: RulesBridge | None = None
        self._scheduler: LocalScheduler | None = None
        self._api: subprocess.Popen[bytes] | None = None
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._open_files: list[IO[Any]] = []  # children's logs and the function log, closed at stop
        self.target: AwsTarget | None = None
        self.settings: RuntimeSettings | None = None
        self.user_pool: UserPoolIds | None = None
        self.mqtt_port = 0
        self.api_url: str | None = None
        self._docs: ApiDocsServer | None = None
        self.docs_url: str | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LocalCloud:
        """Start every part; if one fails, stop those already running and re-raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalCloud:
        cfg = self.config
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._saved_environ = dict(os.environ)
        for key, value in LOCAL_CREDENTIALS.items():
            os.environ.setdefault(key, value)
        tenants = load_tenant_dir(cfg.tenants_dir)

        # werkzeug logs every moto request on stderr; keep the console for what matters.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        moto_port = cfg.moto_port or free_port()
        self._moto = (ProcessMotoServer if cfg.moto_in_own_process else ThreadMotoServer)(moto_port)
        self._moto.start()
        wait_for_port(moto_port)
        self.target = AwsTarget(
            mode=AwsMode.LOCAL, region=cfg.region, endpoint_url=f"http://127.0.0.1:{moto_port}"
        )
        queues = create_resources(self.target)
        # The portal's user pool, as the CDK app declares it; its ids reach the API like any name.
        self.user_pool = ensure_user_pool(aws.client(self.target, "cognito-idp"))
        self.settings = RuntimeSettings.local(self.target).model_copy(
            update={"user_pool_id": self.user_pool.pool_id, "user_pool_client_id": self.user_pool.client_id}
        )
        # The in-process handlers read their settings from the environment, as in Lambda.
        os.environ.update({**self.settings.environ(), **_LOCAL_ENV})
        cold_start()
        if cfg.function_log:
            self._route_function_output(cfg.function_log)

        self.mqtt_port = cfg.mqtt_port or free_port()
        self._broker = Mosquitto(self.state_dir / "broker", self.pki, self.mqtt_port, acl_text(tenants))
        self._broker.start()
        # Commands to RTUs go out through this broker (IoT Core's data endpoint in AWS), as the
        # rules bridge's identity, which may write every device's `down` topics.
        bridge = self.pki.client(BRIDGE_IDENTITY)
        broker = LocalBroker(self.mqtt_port, str(bridge.cert), str(bridge.key), str(bridge.ca))
        self.settings = self.settings.model_copy(update={"local_mqtt": broker.render()})
        os.environ.update(self.settings.environ())
        for tenant in tenants:
            self.apply_tenant(tenant)

        self._bridge = RulesBridge(
            self.target,
            TOPIC_RULES,
            QUEUE_CONSUMERS,
            {name: urls.queue for name, urls in queues.items()},
            self.mqtt_port,
            self.pki.client(BRIDGE_IDENTITY),
            BRIDGE_IDENTITY,
            usage=self.bridge_usage,
        )
        self._bridge.start()
        self._scheduler = LocalScheduler(SCHEDULES, self._invoke_schedule, speed=cfg.speed)
        self._scheduler.start()
        if cfg.with_api:
            self._start_api()
        self._write_state()
        return self

    def stop(self) -> None:
        for name, child in reversed(list(self._children.items())):
            _terminate(child, name)
        self._children.clear()
        if self._api:
            _terminate(self._api, "chalice local")
            self._api = None
        if self._docs:
            self._docs.stop()
            self._docs = None
        if self._scheduler:
            self._scheduler.stop()
            self._scheduler = None
        if self._bridge:
            self._bridge.stop()
            self._bridge = None
        if self._broker:
            self._broker.stop()
            self._broker = None
        if self._moto:
            self._moto.stop()
            self._moto = None
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        if sys.stdout in self._open_files:
            sys.stdout = sys.__stdout__
        handler = function_logger.registered_handler
        if isinstance(handler, logging.StreamHandler) and handler.stream in self._open_files:
            handler.setStream(sys.__stdout__)
        for handle in self._open_files:
            handle.close()
        self._open_files.clear()
        if self._saved_environ is not None:
            # The in-process functions' settings pointed at this cloud; leave the process as found.
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None
            # Functions loaded with this cloud's settings start cold again: a cloud started
            # before this one (in the same process) gets its own settings back on their next call.
            cold_start()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- tenants, devices, keys ----------------------------------------------------------------
    def apply_tenant(self, tenant: TenantDefinition) -> None:
        """Register a tenant's meters, set up its notifications as `hemera tenant apply` does
        (topic, channels, webhook signing secret — kept in `notifications`, it is shown once), give
        each RTU a certificate and let the broker know it."""
        assert self.settings and self._broker
        onboard_tenant(onboarding_stores(self.settings), tenant)
        report = TenantOperations(
            self.settings, self.state_dir / "tenants", REGISTER, self.pki
        ).apply_notifications(tenant)
        if report.webhook_secret is not None:
            self.webhook_secrets[tenant.id] = report.webhook_secret
        for rtu in tenant.rtus:
            self.pki.client(thing_name(tenant.id, rtu.id))
        self.tenants[tenant.id] = tenant
        self._broker.update_acl(acl_text(self.tenants.values()))

    def device_credentials(self, tenant_id: str, device_id: str) -> CertPaths:
        return self.pki.client(thing_name(tenant_id, device_id))

    def issue_api_key(self, tenant_id: str, name: str) -> str:
        assert self.settings
        return issue_api_key(portal_ports(self.settings).keys, tenant_id, name)

    def add_portal_user(
        self, username: str, password: str, group: str, tenant_id: str, customer_id: str | None = None
    ) -> None:
        """A user of the portal's pool (idempotent): an operator or admin of the tenant, or a
        customer user of one of its customers."""
        assert self.target and self.user_pool
        add_user(
            aws.client(self.target, "cognito-idp"),
            self.user_pool,
            username,
            password,
            group,
            tenant_id,
            customer_id,
        )

    def usage(self) -> dict[str, Any]:
        """AWS usage since the last `reset_usage`: the moto server's count of the calls made to it,
        plus the bridge's count of what IoT Core and Lambda would have billed."""
        assert self._moto
        usage = self._moto.usage()
        bridge = self.bridge_usage.snapshot()
        for name, value in bridge.items():
            if isinstance(value, int | float) and name in usage and usage[name] is not None:
                usage[name] += value
        usage["calls"] = {**usage["calls"], **bridge["calls"]}
        return usage

    def reset_usage(self) -> None:
        assert self._moto
        self._moto.reset_usage()
        self.bridge_usage.reset()

    @property
    def bridge(self) -> RulesBridge:
        assert self._bridge
        return self._bridge

    @property
    def children(self) -> dict[str, subprocess.Popen[bytes]]:
        return dict(self._children)

    @property
    def broker(self) -> Mosquitto:
        assert self._broker
        return self._broker

    # --- children ------------------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str], log_name: str | None = None) -> subprocess.Popen[bytes]:
        """Start a child process (simulator, agent) that `stop()` and `hemera local down` end."""
        (self.state_dir / "logs").mkdir(exist_ok=True)
        log = (self.state_dir / "logs" / (log_name or f"{name}.log")).open("ab")
        self._open_files.append(log)
        child = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=self.child_env(), cwd=REPO_ROOT
        )
        self._children[name] = child
        self._write_state()
        return child

    def child_env(self) -> dict[str, str]:
        assert self.settings
        return {**os.environ, **self.settings.environ(), **_LOCAL_ENV}

    def _start_api(self) -> None:
        port = self.config.api_port or free_port()
        if port_in_use(port):
            # Otherwise the health check would talk to whatever already listens there.
            raise LocalCloudError(f"port {port} is in use (another demo?); stop it or pass --api-port 0")
        chalice = Path(sys.executable).with_name("chalice")
        argv = [
            str(chalice),
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--stage",
            "local",
            "--no-autoreload",
        ]
        (self.state_dir / "logs").mkdir(exist_ok=True)
        log = (self.state_dir / "logs" / "portal-api.log").open("ab")
        self._open_files.append(log)
        self._api = subprocess.Popen(
            argv,
            cwd=REPO_ROOT / "functions" / PORTAL_API_DIR,
            env=self.child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.api_url = f"http://127.0.0.1:{port}"
        wait_for_port(port, timeout_s=30)
        _wait_healthy(f"{self.api_url}/v1/health")
        self._docs = ApiDocsServer(OPENAPI_SPEC, self.api_url).start()
        self.docs_url = self._docs.url

    def _route_function_output(self, path: Path) -> None:
        """Send the functions' JSON logs (Powertools logger) and EMF metrics (printed) to a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("a", buffering=1)
        handler = function_logger.registered_handler
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)
        self._open_files.append(stream)
        sys.stdout = stream

    def _invoke_schedule(self, schedule: ScheduleDef, event: dict[str, Any]) -> Any:
        return load_handler(schedule.function)(event, LambdaContext(schedule.function.name))

    def run_schedule(self, name: str, **payload: Any) -> Any:
        """Fire one schedule now, as the scheduler would (demos and tests that cannot wait for
        its period), with `payload` added to its own (e.g. a job's `as_of`); returns what its
        function returned."""
        (schedule,) = (s for s in SCHEDULES if s.name == name)
        return self._invoke_schedule(schedule, {**scheduled_event(schedule, datetime.now(UTC)), **payload})

    def _write_state(self) -> None:
        assert self.target and self.target.endpoint_url
        children = {name: c.pid for name, c in self._children.items()}
        if self._api:
            children["portal-api"] = self._api.pid
        if self._broker and self._broker.process:
            children["mosquitto"] = self._broker.process.pid
        LocalCloudState(
            pid=os.getpid(),
            moto_url=self.target.endpoint_url,
            mqtt_host="127.0.0.1",
            mqtt_port=self.mqtt_port,
            api_url=self.api_url,
            docs_url=self.docs_url,
            user_pool_id=self.user_pool.pool_id if self.user_pool else None,
            user_pool_client_id=self.user_pool.client_id if self.user_pool else None,
            ca_file=str(self.pki.ca_cert),
            children=children,
            started={
                str(pid): tick
                for pid in (os.getpid(), *children.values())
                if (tick := process_start(pid)) is not None
            },
        ).write(self.state_dir)


def _wait_healthy(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s")


def _terminate(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_recorded(state_dir: Path) -> list[str]:
    """`hemera local down`: stop a local cloud started elsewhere, by the process ids it recorded."""
    state = LocalCloudState.read(state_dir)
    if state is None:
        return []
    stopped = []
    for name, pid in [("local cloud", state.pid), *state.children.items()]:
        recorded = state.started.get(str(pid))
        if recorded is not None and process_start(pid) != recorded:
            continue  # gone, and the pid now belongs to another process
        try:
            os.kill(pid, signal.SIGTERM)
            stopped.append(f"{name} ({pid})")
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(state.pid):
        time.sleep(0.2)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so count after its ")".
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
