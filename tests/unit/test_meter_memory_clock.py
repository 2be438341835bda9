"""A simulated meter's memory under clock faults: records carry the meter's own time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hemera.domain.modbus.model import decode_load_profile_window, load_model
from hemera.domain.modbus.registers import decode_value
from hemera.domain.readings import METER_FLAG_CLOCK_ADJUSTED
from hemera_agent.simulators.modbus_meter import MeterMemory, SimulatedMeter
from hemera_agent.simulators.scenario import ClockDrift, ClockReset

DAY = datetime(2026, 3, 2, tzinfo=UTC)
Q = timedelta(minutes=15)
MODEL = load_model("mx40")


def memory(*faults: object) -> MeterMemory:
    meter = SimulatedMeter(
        "m-1", 1, "industry", 500, "America/Sao_Paulo", "t/m-1", model="mx40", faults=faults
    )  # type: ignore[arg-type]
    return MeterMemory(meter, MODEL, DAY)


def starts(mem: MeterMemory, cursor: datetime) -> list[datetime]:
    return sorted(
        {r.start for r in decode_load_profile_window(MODEL, "m-1", mem.window(int(cursor.timestamp())))}
    )


def test_a_reset_clock_files_records_under_the_wrong_time_until_the_sync() -> None:
    mem = memory(ClockReset(at=DAY + timedelta(hours=2), synced_at=DAY + timedelta(hours=3)))
    mem.advance(DAY + timedelta(hours=4))

    # The hour with the wrong clock is stored in 2000 and the agent's cursor never reaches it
    assert starts(mem, DAY + timedelta(hours=1, minutes=30)) == [
        DAY + timedelta(hours=1, minutes=30),
        DAY + timedelta(hours=1, minutes=45),
        *(DAY + timedelta(hours=3) + i * Q for i in range(4)),
    ]
    assert starts(mem, datetime(2000, 1, 1, tzinfo=UTC))[0] == datetime(2000, 1, 1, tzinfo=UTC)
    assert mem.newest_epoch == int((DAY + timedelta(hours=3, minutes=45)).timestamp())
    first_after = decode_load_profile_window(
        MODEL, "m-1", mem.window(int((DAY + timedelta(hours=3)).timestamp()))
    )
    assert first_after[0].meter_flags == METER_FLAG_CLOCK_ADJUSTED


def test_the_clock_register_shows_the_drifted_meter_time() -> None:
    mem = memory(ClockDrift(start=DAY, seconds_per_day=600))
    now = DAY + timedelta(days=1)
    spec = MODEL.registers["clock"]
    clock = decode_value(mem.register_values(now)[spec.address], 0, spec.type, MODEL.word_order)
    assert clock == int(now.timestamp()) + 600


def test_enough_drift_moves_records_to_the_neighbouring_slot() -> None:
    # 30 minutes a day: after ~6 h the meter is 7.5 min fast and stamps the next quarter hour
    mem = memory(ClockDrift(start=DAY, seconds_per_day=1800))
    mem.advance(DAY + timedelta(hours=12))

    stamps = [datetime.fromtimestamp(e, UTC) for e in mem.epochs]
    # Then 48 true intervals give 48 records, the last stamped 12:00 (ahead of true time), and
    # one slot on the way is skipped: the gap the cloud sees from a fast clock
    assert len(stamps) == 48
    assert stamps[0] == DAY and stamps[-1] == DAY + timedelta(hours=12)
    skipped = [DAY + i * Q for i in range(49) if DAY + i * Q not in stamps]
    assert len(skipped) == 1 and DAY + timedelta(hours=5) < skipped[0] < DAY + timedelta(hours=7)
