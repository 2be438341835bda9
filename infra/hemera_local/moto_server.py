"""The local cloud's moto server, in a thread of this process or in a process of its own.

Both serve moto's WSGI app behind `UsageMiddleware`, so every AWS call a run makes is counted
(`make bench` prices them). A server in its own process runs on its own core instead of sharing the
interpreter lock with the functions, the bridge and the broker client: the benchmark uses that; the
tests keep the cheaper thread. The usage of either is read at `USAGE_PATH` (DELETE resets it).

    python -m hemera_local.moto_server --port 5000
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from hemera_local.usage import UsageCounter, UsageMiddleware

USAGE_PATH = "/_hemera/usage"


def counted_app(counter: UsageCounter) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """moto behind the usage middleware, plus the usage endpoint."""
    moto = UsageMiddleware(DomainDispatcherApplication(create_backend_app), counter)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != USAGE_PATH:
            return moto(environ, start_response)
        if environ.get("REQUEST_METHOD") == "DELETE":
            counter.reset()
        body = json.dumps(counter.snapshot()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


class ThreadMotoServer:
    """moto in a daemon thread of this process (what the tests and the demo use)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.counter = UsageCounter()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = make_server(
            "127.0.0.1",
            self.port,
            counted_app(self.counter),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="moto")
        self._thread.start()

    def usage(self) -> dict[str, Any]:
        return self.counter.snapshot()

    def reset_usage(self) -> None:
        self.counter.reset()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)


class ProcessMotoServer:
    """moto in a child process (`python -m hemera_local.moto_server`), for the benchmark."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hemera_local.moto_server", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _usage_request(self, method: str) -> dict[str, Any]:
        request = urllib.request.Request(self.url + USAGE_PATH, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            usage: dict[str, Any] = json.loads(response.read())
        return usage

    def usage(self) -> dict[str, Any]:
        return self._usage_request("GET")

    def reset_usage(self) -> None:
        self._usage_request("DELETE")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


def main() -> None:
    parser = argparse.ArgumentParser(description="moto server with AWS usage counting")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(
        "127.0.0.1", args.port, counted_app(UsageCounter()), threaded=True, request_handler=MotoRequestHandler
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
