"""Benchmark (`make bench`), not a test: how fast the agent's readers read the simulated meters
over loopback — DLMS (one association: single register GETs, one day of load profile by range)
and Modbus (load-profile windows through the cursor protocol)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from hemera.domain.dlms.model import load_dlms_model
from hemera.domain.modbus.model import load_model
from hemera_agent.clock import SimClock
from hemera_agent.dlms import DlmsEndpoint, DlmsSession
from hemera_agent.reader import LoadProfileReader
from hemera_agent.simulators.dlms_meter import DlmsMeter, DlmsMeterSimulator
from hemera_agent.simulators.modbus_meter import ModbusMeterSimulator, SimulatedMeter
from hemera_agent.simulators.profile import meter_seed

HISTORY = datetime(2026, 11, 2, 3, tzinfo=UTC)
DAYS = 14


def frozen(at: datetime) -> SimClock:
    return SimClock(start=at, speed=1.0, wall=lambda: at)


def dlms() -> None:
    meter = DlmsMeter(
        "bench-dlms", "industry", 500.0, "America/Sao_Paulo", meter_seed("bench", "dlms"), b"pw"
    )
    model = load_dlms_model("hd500")
    now = HISTORY + timedelta(days=DAYS, minutes=1)
    with (
        DlmsMeterSimulator(meter, clock=frozen(now), history_start=HISTORY) as simulator,
        DlmsSession(DlmsEndpoint("127.0.0.1", simulator.port, "pw")) as session,
    ):
        n, started = 500, time.perf_counter()
        for _ in range(n):
            session.get("1.0.1.8.0.255", 3, 2)
        elapsed = time.perf_counter() - started
        print(f"DLMS register GET: {n / elapsed:,.0f}/s ({1000 * elapsed / n:.2f} ms each)")
        started = time.perf_counter()
        for day in range(DAYS):
            since = HISTORY + timedelta(days=day, seconds=1)
            session.read_load_profile(model, since, since + timedelta(days=1) - timedelta(seconds=2))
        elapsed = time.perf_counter() - started
        print(
            f"DLMS load profile by range: {DAYS / elapsed:,.0f} days/s = {DAYS * 96 / elapsed:,.0f} intervals/s"
        )


async def modbus() -> None:
    from pymodbus.client import AsyncModbusTcpClient

    meter = SimulatedMeter("bench-mb", 1, "industry", 500.0, "America/Sao_Paulo", meter_seed("bench", "mb"))
    model = load_model("hx300")
    now = HISTORY + timedelta(days=DAYS, minutes=1)
    with ModbusMeterSimulator([meter], clock=frozen(now), history_start=HISTORY) as simulator:
        client = AsyncModbusTcpClient("127.0.0.1", port=simulator.port)
        await client.connect()
        reader = LoadProfileReader(client, "bench-mb", 1, model)
        started = time.perf_counter()
        intervals = sum(
            [len(w.interval_starts) async for w in reader.windows_after(None, timedelta(days=DAYS + 1))]
        )
        elapsed = time.perf_counter() - started
        client.close()
        print(
            f"Modbus load-profile windows: {reader.windows_read / elapsed:,.0f} windows/s = "
            f"{intervals / elapsed:,.0f} intervals/s ({intervals} intervals)"
        )


if __name__ == "__main__":
    dlms()
    asyncio.run(modbus())
