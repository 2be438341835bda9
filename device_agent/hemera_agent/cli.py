"""`hemera-agent`: run the RTU agent, or do one poll cycle.

    hemera-agent run  --config agent.yaml   # poll, forward, obey commands until SIGTERM/SIGINT
    hemera-agent once --config agent.yaml   # one cycle: read into the outbox, publish the outbox

Exit codes: 0 done, 1 a publish failed (the rest stays in the outbox) or a meter could not be
read, 2 bad configuration or no broker connection.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from hemera.domain.errors import HemeraError
from hemera_agent.agent import Agent, CycleReport
from hemera_agent.backoff import Backoff
from hemera_agent.config import AgentConfig, InvalidAgentConfig, load_config
from hemera_agent.logs import configure_logging
from hemera_agent.publisher import BrokerUnavailable, Mqtt5Publisher, PublishFailed

log = logging.getLogger("hemera_agent.cli")


def _publisher(config: AgentConfig) -> Mqtt5Publisher:
    r = config.reconnect
    return Mqtt5Publisher(
        config.broker, config.client_id, backoff=Backoff(r.base_seconds, r.cap_seconds, r.factor)
    )


async def _once(config: AgentConfig) -> CycleReport:
    publisher = _publisher(config)
    await publisher.start()
    agent = Agent(config, publisher)
    try:
        return await agent.poll_once()
    finally:
        agent.close()
        await publisher.stop()


async def _run(config: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    publisher = _publisher(config)
    agent = Agent(config, publisher)  # subscribes to the command topic before the first connection
    await publisher.start(wait=False)  # reconnects with jittered backoff; the outbox waits meanwhile
    try:
        try:
            await publisher.wait_connected()
        except BrokerUnavailable as exc:
            log.warning("broker not reachable yet; polling anyway", extra={"error": str(exc)})
        log.info(
            "agent running", extra={"meters": [m.id for m in config.meters], "poll_s": config.poll_seconds}
        )
        await agent.run(stop)
    finally:
        agent.close()
        await publisher.stop()
        log.info("agent stopped")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hemera-agent", description="Hemera Cloud RTU agent")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "poll until SIGTERM/SIGINT"), ("once", "one poll cycle, then exit")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--config", type=Path, required=True, help="agent YAML file")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
    except InvalidAgentConfig as exc:
        print(f"hemera-agent: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging(config.tenant, config.device, config.log_level)

    if args.command == "run":
        try:
            asyncio.run(_run(config))
        except HemeraError as exc:
            log.error("agent failed", extra={"error": str(exc), "reason": exc.reason})
            sys.exit(2)
        return
    try:
        report = asyncio.run(_once(config))
    except BrokerUnavailable as exc:
        log.error("broker unavailable", extra={"error": str(exc)})
        sys.exit(2)
    except PublishFailed as exc:
        log.error("publish failed", extra={"error": str(exc)})
        sys.exit(1)
    except HemeraError as exc:
        log.error("agent failed", extra={"error": str(exc), "reason": exc.reason})
        sys.exit(2)
    print(
        f"published {report.intervals} intervals in {report.envelopes} envelopes ({report.windows} windows read)"
    )
    if report.readouts:
        print(f"and {report.readouts} envelopes of registers, instantaneous values or events")
    stored = report.envelopes + report.readouts
    if report.published > stored:
        print(f"also replayed {report.published - stored} messages from the outbox")
    if report.failed_meters:
        print(f"meters not read: {', '.join(report.failed_meters)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
