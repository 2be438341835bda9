"""A webhook receiver for the tests: an http.server on a free loopback port that verifies
`Hemera-Signature` as a tenant's receiver would (README: Notifications) and keeps every request.

It answers `status` (200 by default; 500 to play a failing receiver) and can hold each request
until an event is set (a receiver slower than the sender's timeout). It counts every valid POST,
duplicates included, so a test can assert that the platform sent exactly one.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hemera.domain.errors import WebhookSignatureInvalid
from hemera.domain.notifications import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, verify_signature


@dataclass(frozen=True)
class Received:
    path: str
    delivery_id: str | None
    event_type: str | None
    attempt: int | None
    body: dict[str, Any]
    signed_at: int


@dataclass
class WebhookReceiver:
    secret: str = ""
    status: int = 200
    tolerance_s: int = 300
    # When set, each request waits (at most `hold_timeout_s`) for it before answering.
    hold: threading.Event | None = None
    hold_timeout_s: float = 10.0
    # Set by every valid delivery (another receiver can `hold` on it).
    arrived: threading.Event = field(default_factory=threading.Event)
    # For each held request: whether `hold` was set before `hold_timeout_s` ran out.
    released_by_hold: list[bool] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver._receive(self.path, dict(self.headers.items()), body)
                if receiver.hold is not None:
                    released = receiver.hold.wait(receiver.hold_timeout_s)
                    with receiver._lock:
                        receiver.released_by_hold.append(released)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def url(self, path: str = "/hooks") -> str:
        assert self._server is not None, "start the receiver first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    # --- what arrived --------------------------------------------------------------------------
    def _receive(self, path: str, headers: dict[str, str], body: bytes) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            signed_at = verify_signature(
                self.secret, lowered.get(SIGNATURE_HEADER.lower()), body, int(time.time()), self.tolerance_s
            )
        except WebhookSignatureInvalid as error:
            with self._arrived:
                self.rejected.append((path, error.reason))
                self._arrived.notify_all()
            return
        attempt = lowered.get("hemera-attempt")
        received = Received(
            path=path,
            delivery_id=lowered.get(DELIVERY_HEADER.lower()),
            event_type=lowered.get(EVENT_HEADER.lower()),
            attempt=int(attempt) if attempt else None,
            body=json.loads(body),
            signed_at=signed_at,
        )
        with self._arrived:
            self.accepted.append(received)
            self._arrived.notify_all()
        self.arrived.set()

    def valid_deliveries(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.accepted if path is None or r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout_s: float = 30.0) -> list[Received]:
        """Wait until at least `count` valid deliveries (to `path`) arrived; returns them all."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                got = [r for r in self.accepted if path is None or r.path == path]
                remaining = deadline - time.monotonic()
                if len(got) >= count or remaining <= 0:
                    return got
                self._arrived.wait(remaining)
