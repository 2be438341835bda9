"""The registers of one group (`energy`, `instantaneous`, …) that a Modbus readout's frames hold:
the agent ships raw register windows; the model's map says where each register sits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from hemera.domain.envelope import ModbusFrame
from hemera.domain.errors import MalformedFrame
from hemera.domain.modbus.model import ModbusMeterModel, RegisterSpec
from hemera.domain.modbus.registers import decode_value


def group_registers(
    model: ModbusMeterModel, frames: Sequence[object], group: str
) -> Iterator[tuple[str, RegisterSpec, int | float]]:
    """(name, spec, raw value before scaling) of every register of `group` wholly inside one of
    the frames; MalformedFrame for a frame that is not a well-formed Modbus window."""
    specs = [(name, spec) for name, spec in model.registers.items() if spec.group == group]
    for frame in frames:
        if not isinstance(frame, ModbusFrame):
            raise MalformedFrame("a modbus envelope carries modbus frames only")
        try:
            registers = frame.registers()
        except ValueError as exc:
            raise MalformedFrame(str(exc)) from exc
        end = frame.address + frame.count
        for name, spec in specs:
            if frame.address <= spec.address and spec.address + spec.width <= end:
                yield (
                    name,
                    spec,
                    decode_value(registers, spec.address - frame.address, spec.type, model.word_order),
                )
