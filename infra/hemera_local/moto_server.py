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
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from moto import backends
from moto.core.utils import camelcase_to_underscores, unix_time
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.sqs.models import Message, Queue, SQSBackend
from werkzeug.serving import BaseWSGIServer, make_server

from hemera_local.usage import UsageCounter, UsageMiddleware

USAGE_PATH = "/_hemera/usage"


def retention_check(backend: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto 5.2's `is_message_valid_based_on_retention_period`, without its cost: moto computes
    every attribute of the queue (walking all its messages three times) for each message it hands
    out, which made a receive from a queue of n messages O(n^2). Same rule, read directly."""
    retention_s = int(getattr(backend.get_queue(queue_name), "message_retention_period"))  # noqa: B009 (set by moto from the attribute name)
    return retention_s + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


# moto's own implementations, kept to compare the shims against (tests) before they replace them.
MOTO_QUEUE_ATTRIBUTES: property = Queue.__dict__["attributes"]
MOTO_RETENTION_CHECK = SQSBackend.is_message_valid_based_on_retention_period


class QueueAttributes(Mapping[str, Any]):
    """moto 5.2's `Queue.attributes`, computed per key on access. moto builds the whole dict —
    including approximate message counts, each a walk over every message of the queue — whenever
    it needs one attribute (ContentBasedDeduplication on every message sent, MessageRetentionPeriod
    on every message received), which made each call O(queue depth). Same keys, same values."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        names = list(Queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += Queue.FIFO_ATTRIBUTES
        if getattr(queue, "kms_master_key_id", None):
            names += Queue.KMS_ATTRIBUTES
        if queue.policy:
            names.append("Policy")
        if queue.redrive_policy:
            names.append("RedrivePolicy")
        self._names = dict.fromkeys(names)

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        if name == "Policy" and self._queue.policy:
            return self._queue.policy
        if name == "RedrivePolicy" and self._queue.redrive_policy:
            return json.dumps(self._queue.redrive_policy)
        value = getattr(self._queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


_MOTO_MODULES = tuple(backends.list_of_moto_modules())


def _moto_modules() -> tuple[str, ...]:
    """moto's service folders, listed once: moto lists its package directory on every request."""
    return _MOTO_MODULES


def patch_moto() -> None:
    """Performance shims for the local cloud's moto server; each keeps moto's behaviour."""
    setattr(SQSBackend, "is_message_valid_based_on_retention_period", retention_check)  # noqa: B010
    setattr(backends, "list_of_moto_modules", _moto_modules)  # noqa: B010
    setattr(Queue, "attributes", property(QueueAttributes))  # noqa: B010


def counted_app(counter: UsageCounter) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """moto behind the usage middleware, plus the usage endpoint."""
    patch_moto()
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
