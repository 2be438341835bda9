"""OBIS codes (IEC 62056-6-1): six value groups A.B.C.D.E.F, each 0-255."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_OBIS = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


def validate_obis(value: str) -> str:
    """An OBIS code written A.B.C.D.E.F, each group 0-255 (a ValueError for validators)."""
    match = _OBIS.match(value)
    if not match or any(int(g) > 255 for g in match.groups()):
        raise ValueError(f"{value!r} is not an OBIS code A.B.C.D.E.F")
    return value


Obis = Annotated[str, AfterValidator(validate_obis)]
