"""Publishing envelopes: the port the agent uses, the MQTT5 adapter, and an in-memory fake.

`publish` returns only once the broker acknowledged the message (QoS 1 PUBACK with a success
reason code); anything else raises `PublishFailed`, and the agent then keeps its state where it
was so the data is read and sent again on the next cycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hemera.domain.errors import HemeraError
from hemera_agent.config import BrokerConfig, FlowControl

log = logging.getLogger("hemera_agent.publisher")

# MQTT5: PUBACK reason codes below 0x80 are successes (0x10 "no matching subscribers" included).
_PUBACK_FAILURE = 0x80


class PublishFailed(HemeraError):
    reason = "publish_failed"


class BrokerUnavailable(PublishFailed):
    reason = "broker_unavailable"


class Publisher(Protocol):
    async def publish(self, topic: str, payload: bytes) -> None:
        """Send at QoS 1 and return after the broker's PUBACK; raise `PublishFailed` otherwise."""
        ...


@dataclass
class InMemoryPublisher:
    """A broker that acknowledges everything and remembers it (`fail_after` n publishes: fails)."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    fail_after: int | None = None

    async def publish(self, topic: str, payload: bytes) -> None:
        if self.fail_after is not None and len(self.messages) >= self.fail_after:
            raise PublishFailed(f"in-memory broker refuses publish #{len(self.messages) + 1}")
        self.messages.append((topic, payload))


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class Mqtt5Publisher:
    """AWS IoT Device SDK v2 MQTT5 client over mutual TLS (IoT Core, or mosquitto locally).

    The awscrt client runs its own event-loop thread and keeps reconnecting by itself; its
    callbacks are marshalled onto the asyncio loop that called `start`.
    """

    def __init__(self, broker: BrokerConfig, client_id: str) -> None:
        self.broker = broker
        self.client_id = client_id
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Future[None] | None = None
        self._stopped: asyncio.Future[None] | None = None

    def _on_loop(self, callback: Callable[[], None]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback)

    def _build(self) -> Any:
        # Imported here so the rest of the agent (and its tests) load without the CRT.
        from awscrt import mqtt5
        from awsiot import mqtt5_client_builder

        flow_control = (
            mqtt5.ExtendedValidationAndFlowControlOptions.NONE
            if self.broker.flow_control is FlowControl.NONE
            else mqtt5.ExtendedValidationAndFlowControlOptions.AWS_IOT_CORE_DEFAULTS
        )

        def on_success(_data: Any) -> None:
            log.info("mqtt connected", extra={"broker": self.broker.host, "port": self.broker.port})
            self._on_loop(lambda: _resolve(self._connected))

        def on_failure(data: Any) -> None:
            log.warning("mqtt connection failed", extra={"error_code": getattr(data, "exception", None)})

        def on_disconnection(data: Any) -> None:
            log.warning("mqtt disconnected", extra={"error_code": getattr(data, "exception", None)})

        def on_stopped(_data: Any) -> None:
            self._on_loop(lambda: _resolve(self._stopped))

        return mqtt5_client_builder.mtls_from_path(
            endpoint=self.broker.host,
            port=self.broker.port,
            cert_filepath=str(self.broker.cert),
            pri_key_filepath=str(self.broker.key),
            ca_filepath=str(self.broker.ca) if self.broker.ca else None,
            client_id=self.client_id,
            extended_validation_and_flow_control_options=flow_control,
            ack_timeout_sec=int(self.broker.ack_timeout_seconds),
            on_lifecycle_connection_success=on_success,
            on_lifecycle_connection_failure=on_failure,
            on_lifecycle_disconnection=on_disconnection,
            on_lifecycle_stopped=on_stopped,
        )

    async def start(self, wait: bool = True) -> None:
        """Start connecting; with `wait`, return once connected or raise `BrokerUnavailable`."""
        self._loop = asyncio.get_running_loop()
        self._connected = self._loop.create_future()
        self._stopped = self._loop.create_future()
        try:
            self._client = self._build()
        except Exception as exc:  # OSError for a missing file, AwsCrtError for a bad PEM
            raise BrokerUnavailable(
                f"cannot set up mutual TLS with {self.broker.cert}, {self.broker.key}: {exc}"
            ) from exc
        self._client.start()
        if wait:
            await self.wait_connected()

    async def wait_connected(self) -> None:
        assert self._connected is not None, "start() first"
        try:
            await asyncio.wait_for(asyncio.shield(self._connected), self.broker.connect_timeout_seconds)
        except TimeoutError as exc:
            raise BrokerUnavailable(
                f"no connection to {self.broker.host}:{self.broker.port} as {self.client_id} "
                f"within {self.broker.connect_timeout_seconds}s"
            ) from exc

    async def publish(self, topic: str, payload: bytes) -> None:
        from awscrt import mqtt5

        if self._client is None:
            raise BrokerUnavailable("publisher not started")
        packet = mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS.AT_LEAST_ONCE)
        try:
            completion = await asyncio.wait_for(
                asyncio.wrap_future(self._client.publish(packet)), self.broker.ack_timeout_seconds + 1
            )
        except TimeoutError as exc:
            raise PublishFailed(f"no PUBACK for {topic} within {self.broker.ack_timeout_seconds}s") from exc
        except Exception as exc:  # the CRT raises its own exception types (AwsCrtError)
            raise PublishFailed(f"publish to {topic} failed: {exc}") from exc
        puback = completion.puback
        if puback is None or int(puback.reason_code) >= _PUBACK_FAILURE:
            reason = getattr(puback, "reason_code", None)
            raise PublishFailed(
                f"broker refused publish to {topic}: {reason!r} {getattr(puback, 'reason_string', '')}"
            )

    async def stop(self) -> None:
        if self._client is None:
            return
        self._client.stop()
        if self._stopped is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._stopped), 5)
            except TimeoutError:
                log.warning("mqtt client did not report stopped within 5s")
        self._client = None

    async def __aenter__(self) -> Mqtt5Publisher:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()
