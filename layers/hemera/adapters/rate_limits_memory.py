"""In-memory request counters: the fake of `RequestCounter` for tests and one-process runs."""

from __future__ import annotations

import threading
from collections import Counter

from hemera.domain.rate_limits import Window, rate_pk, window_sk
from hemera.domain.tenancy import TenantContext


class MemoryRequestCounter:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def hit(self, ctx: TenantContext, window: Window) -> int:
        key = (rate_pk(ctx), window_sk(window))
        with self._lock:
            self._counts[key] += 1
            return self._counts[key]
