"""Benchmark, not a test: what the RTU agent sustains into the local mosquitto (mTLS, QoS 1,
flow control `none`), and how fast it replays its outbox after a broker outage.

    python -m tests.bench.agent_throughput [--days 10] [--intervals-per-envelope 96]

1. end to end: a Modbus simulator holding `--days` of two meters' 15-minute data; one
   `poll_once` reads it over Modbus TCP, stores every envelope in the SQLite outbox and publishes
   the outbox (one QoS 1 publish in flight, each deleted after its PUBACK);
2. outage replay: the broker is stopped, the agent reads the same amount again into its outbox,
   the broker is started; we time from the broker's restart to an empty outbox (reconnect with
   full-jitter backoff, base 0.1 s, included) and the pure drain (`flush`).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hemera.tenants import load_tenant_file
from hemera_agent.agent import Agent
from hemera_agent.backoff import Backoff
from hemera_agent.clock import SimClock
from hemera_agent.config import AgentConfig
from hemera_agent.publisher import Mqtt5Publisher
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, SimulatedMeter
from hemera_local.broker import Mosquitto, acl_text, free_port
from hemera_local.pki import LocalPki

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--intervals-per-envelope", type=int, default=96)
    parser.add_argument("--max-inflight", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hemera-agent-bench-"))
    pki = LocalPki(tmp / "pki")
    mosquitto = Mosquitto(
        tmp / "broker", pki, free_port(), acl_text([load_tenant_file(REPO / "tenants" / "sul-energia.yaml")])
    )
    mosquitto.start()
    device = pki.client("sul-energia:rtu-poa-01")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    meters = [
        SimulatedMeter("sul-m-1001", 1, "industry", 820, "America/Sao_Paulo", "sul-energia/sul-m-1001"),
        SimulatedMeter("sul-m-1002", 2, "commerce", 410, "America/Sao_Paulo", "sul-energia/sul-m-1002"),
    ]
    wall = [datetime(2030, 1, 1, tzinfo=UTC)]
    clock = SimClock(start + timedelta(days=args.days, seconds=30), speed=1, wall=lambda: wall[0])
    try:
        with ModbusMeterSimulator(meters, clock=clock, history_start=start) as sim:
            config = AgentConfig.model_validate(
                {
                    "tenant": "sul-energia",
                    "device": "rtu-poa-01",
                    "broker": {
                        "host": "localhost",
                        "port": mosquitto.port,
                        "cert": str(device.cert),
                        "key": str(device.key),
                        "ca": str(pki.ca_cert),
                        "flow_control": "none",
                        "max_inflight": args.max_inflight,
                    },
                    "state_dir": str(tmp / "state"),
                    "backfill_hours": 24 * args.days,
                    "max_intervals_per_envelope": args.intervals_per_envelope,
                    "meters": [
                        {"id": m.meter_id, "model": "hx300", "unit_id": m.unit_id, "port": sim.port}
                        for m in meters
                    ],
                }
            )
            asyncio.run(_bench(config, mosquitto, clock, wall, args.days))
    finally:
        mosquitto.stop()


async def _bench(
    config: AgentConfig, mosquitto: Mosquitto, clock: SimClock, wall: list[datetime], days: int
) -> None:
    publisher = Mqtt5Publisher(config.broker, config.client_id, backoff=Backoff(0.1, 1.0))
    await publisher.start()
    agent = Agent(config, publisher, clock=clock)

    began = time.perf_counter()
    report = await agent.poll_once()
    elapsed = time.perf_counter() - began
    print(
        f"end to end (Modbus read + outbox + publish): {report.envelopes} envelopes, {report.intervals} "
        f"intervals in {elapsed:.2f} s = {report.envelopes / elapsed:.0f} envelopes/s, "
        f"{report.intervals / elapsed:.0f} intervals/s"
    )

    await asyncio.to_thread(mosquitto.stop)
    wall[0] += timedelta(days=days)  # the meters record another `days` while the broker is down
    began = time.perf_counter()
    stored = await agent.collect()
    read_s = time.perf_counter() - began
    print(
        f"read into the outbox while the broker is down: {stored.envelopes} envelopes in {read_s:.2f} s "
        f"= {stored.envelopes / read_s:.0f} envelopes/s"
    )
    await asyncio.to_thread(mosquitto.start)
    restarted = time.perf_counter()
    await publisher.wait_connected(30)
    connected = time.perf_counter()
    sent = await agent.flush()
    done = time.perf_counter()
    print(
        f"replay after the outage: {sent} messages; reconnect {connected - restarted:.2f} s, "
        f"drain {done - connected:.2f} s = {sent / (done - connected):.0f} envelopes/s "
        f"({sent / (done - restarted):.0f}/s including the reconnect)"
    )
    agent.close()
    await publisher.stop()


if __name__ == "__main__":
    main()
