"""A Modbus exception is garbage from the meter, except a gateway's 'no answer' (0x0A/0x0B),
which is communication loss: the two raise different RTU events."""

from __future__ import annotations

import asyncio

import pytest
from pymodbus.pdu import ExceptionResponse

from hemera.domain.modbus.model import load_model
from hemera_agent.reader import LoadProfileReader, MeterAnsweredGarbage, MeterReadError


class AnswersWith:
    def __init__(self, code: int) -> None:
        self.code = code

    async def read_holding_registers(self, address, *, count=1, device_id=1, no_response_expected=False):
        return ExceptionResponse(3, self.code)

    async def write_registers(self, address, values, *, device_id=1, no_response_expected=False):
        return ExceptionResponse(16, self.code)


@pytest.mark.parametrize(("code", "garbage"), [(0x0A, False), (0x0B, False), (0x02, True), (0x04, True)])
def test_gateway_no_answer_is_a_read_failure_and_other_exceptions_are_garbage(code, garbage):
    reader = LoadProfileReader(AnswersWith(code), "m-1", 1, load_model("hx300"))
    with pytest.raises(MeterReadError) as info:
        asyncio.run(reader.read_register("clock"))
    assert isinstance(info.value, MeterAnsweredGarbage) is garbage
