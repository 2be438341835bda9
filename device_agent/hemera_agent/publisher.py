"""Publishing envelopes: the port the agent uses, the MQTT5 adapter, and an in-memory fake.

`publish` returns only once the broker acknowledged the message (QoS 1 PUBACK with a success
reason code); anything else raises `PublishFailed`, and the message stays in the agent's outbox
(`hemera_agent.buffer`) to be sent again.

Reconnects are ours, not the CRT's: on a disconnection or a failed connect the MQTT5 client is
stopped and started again after a full-jitter exponential delay (`hemera_agent.backoff`), so a
fleet that lost the broker together does not come back together, and the timing is testable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hemera.domain.errors import HemeraError
from hemera.domain.tenancy import topic_matches
from hemera_agent.backoff import Backoff
from hemera_agent.config import BrokerConfig, FlowControl

log = logging.getLogger("hemera_agent.publisher")

# MQTT5: PUBACK reason codes below 0x80 are successes (0x10 "no matching subscribers" included).
_PUBACK_FAILURE = 0x80
# A connection must stay up this long before the backoff starts again from its base: a client
# kicked off right after connecting (duplicate client id, policy) must not reconnect in a tight loop.
_STABLE_SECONDS = 10.0
# The CRT's own reconnect timer, held far beyond ours so it never fires first.
_CRT_RECONNECT_MS = 3_600_000

MessageHandler = Callable[[str, bytes], None]


class PublishFailed(HemeraError):
    reason = "publish_failed"


class BrokerUnavailable(PublishFailed):
    reason = "broker_unavailable"


class PublishRefused(PublishFailed):
    """The broker answered with a failure PUBACK (e.g. not authorized): resending as is will not help."""

    reason = "publish_refused"


class Publisher(Protocol):
    async def publish(self, topic: str, payload: bytes) -> None:
        """Send at QoS 1 and return after the broker's PUBACK; raise `PublishFailed` otherwise."""
        ...


@dataclass
class InMemoryPublisher:
    """A broker that acknowledges everything and remembers it (`fail_after` n publishes: fails).

    `deliver` plays the cloud's side of the down topic: it hands a message to the handler the
    agent registered with `on_message`.
    """

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    fail_after: int | None = None
    handler: MessageHandler | None = None

    async def publish(self, topic: str, payload: bytes) -> None:
        if self.fail_after is not None and len(self.messages) >= self.fail_after:
            raise PublishFailed(f"in-memory broker refuses publish #{len(self.messages) + 1}")
        self.messages.append((topic, payload))

    def on_message(self, topic_filter: str, handler: MessageHandler) -> None:
        self.handler = handler

    def deliver(self, topic: str, payload: bytes) -> None:
        assert self.handler is not None, "the agent did not subscribe"
        self.handler(topic, payload)

    def topic(self, suffix: str) -> list[bytes]:
        """Payloads published on topics ending with `suffix`."""
        return [p for t, p in self.messages if t.endswith(suffix)]


class Mqtt5Publisher:
    """AWS IoT Device SDK v2 MQTT5 client over mutual TLS (IoT Core, or mosquitto locally).

    The awscrt client runs its own event-loop thread; its callbacks are marshalled onto the
    asyncio loop that called `start`. Subscriptions (`on_message`) are renewed on every
    connection, since the session is not kept across connections.
    """

    def __init__(
        self,
        broker: BrokerConfig,
        client_id: str,
        *,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._stopped = asyncio.Event()
        self._closing = False
        self._reconnect: asyncio.Task[None] | None = None
        self._stable: asyncio.TimerHandle | None = None
        self._subscriptions: dict[str, MessageHandler] = {}
        self.connections = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _on_loop(self, callback: Callable[[], None]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback)

    def on_message(self, topic_filter: str, handler: MessageHandler) -> None:
        """Subscribe (QoS 1) now if connected and again after every reconnect."""
        self._subscriptions[topic_filter] = handler
        if self.connected:
            self._subscribe(topic_filter)

    def _subscribe(self, topic_filter: str) -> None:
        from awscrt import mqtt5

        packet = mqtt5.SubscribePacket(
            subscriptions=[mqtt5.Subscription(topic_filter=topic_filter, qos=mqtt5.QoS.AT_LEAST_ONCE)]
        )
        future = self._client.subscribe(packet)

        def done(result: Any) -> None:
            try:
                codes = [int(c) for c in result.result().reason_codes]
            except Exception as exc:  # the CRT's own error types
                log.warning("subscribe failed", extra={"topic_filter": topic_filter, "error": str(exc)})
                return
            if any(code >= _PUBACK_FAILURE for code in codes):
                log.warning("subscribe refused", extra={"topic_filter": topic_filter, "codes": codes})
            else:
                log.info("subscribed", extra={"topic_filter": topic_filter})

        future.add_done_callback(done)

    def _dispatch(self, topic: str, payload: bytes) -> None:
        for topic_filter, handler in self._subscriptions.items():
            if topic_matches(topic_filter, topic):
                handler(topic, payload)

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
            self._on_loop(self._connection_up)

        def on_failure(data: Any) -> None:
            log.warning("mqtt connection failed", extra={"error_code": str(getattr(data, "exception", None))})
            self._on_loop(self._connection_down)

        def on_disconnection(data: Any) -> None:
            log.warning("mqtt disconnected", extra={"error_code": str(getattr(data, "exception", None))})
            self._on_loop(self._connection_down)

        def on_stopped(_data: Any) -> None:
            self._on_loop(self._stopped.set)

        def on_publish(data: Any) -> None:
            packet = data.publish_packet
            topic, payload = str(packet.topic), bytes(packet.payload or b"")
            self._on_loop(lambda: self._dispatch(topic, payload))

        return mqtt5_client_builder.mtls_from_path(
            endpoint=self.broker.host,
            port=self.broker.port,
            cert_filepath=str(self.broker.cert),
            pri_key_filepath=str(self.broker.key),
            ca_filepath=str(self.broker.ca) if self.broker.ca else None,
            client_id=self.client_id,
            extended_validation_and_flow_control_options=flow_control,
            ack_timeout_sec=int(self.broker.ack_timeout_seconds),
            session_expiry_interval_sec=self.broker.session_expiry_seconds,
            # Rejoin the session after the first connection: commands queued while offline arrive.
            session_behavior=(
                mqtt5.ClientSessionBehaviorType.REJOIN_POST_SUCCESS
                if self.broker.session_expiry_seconds
                else mqtt5.ClientSessionBehaviorType.CLEAN
            ),
            min_reconnect_delay_ms=_CRT_RECONNECT_MS,
            max_reconnect_delay_ms=_CRT_RECONNECT_MS,
            on_publish_received=on_publish,
            on_lifecycle_connection_success=on_success,
            on_lifecycle_connection_failure=on_failure,
            on_lifecycle_disconnection=on_disconnection,
            on_lifecycle_stopped=on_stopped,
        )

    def _connection_up(self) -> None:
        self.connections += 1
        self._connected.set()
        for topic_filter in self._subscriptions:
            self._subscribe(topic_filter)
        if self._loop is not None:
            self._stable = self._loop.call_later(_STABLE_SECONDS, self._connection_stable)

    def _connection_stable(self) -> None:
        if self.connected:
            self.backoff.reset()

    def _connection_down(self) -> None:
        self._connected.clear()
        if self._stable is not None:
            self._stable.cancel()
            self._stable = None
        if self._closing or self._client is None or (self._reconnect and not self._reconnect.done()):
            return
        assert self._loop is not None
        self._reconnect = self._loop.create_task(self._reconnect_later())

    async def _reconnect_later(self) -> None:
        """Stop the client, wait a full-jitter delay, start it again (one attempt per call)."""
        self._stopped.clear()
        self._client.stop()
        delay = self.backoff.next_delay()
        log.info(
            "mqtt reconnect scheduled", extra={"delay_s": round(delay, 3), "attempt": self.backoff.attempt}
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), 5)
        await self._sleep(delay)
        if not self._closing and self._client is not None:
            self._client.start()

    async def start(self, wait: bool = True) -> None:
        """Start connecting; with `wait`, return once connected or raise `BrokerUnavailable`."""
        self._loop = asyncio.get_running_loop()
        self._closing = False
        try:
            self._client = self._build()
        except Exception as exc:  # OSError for a missing file, AwsCrtError for a bad PEM
            raise BrokerUnavailable(
                f"cannot set up mutual TLS with {self.broker.cert}, {self.broker.key}: {exc}"
            ) from exc
        self._client.start()
        if wait:
            await self.wait_connected()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once connected; `BrokerUnavailable` after `timeout` (default: connect timeout)."""
        limit = self.broker.connect_timeout_seconds if timeout is None else timeout
        try:
            await asyncio.wait_for(self._connected.wait(), limit)
        except TimeoutError as exc:
            raise BrokerUnavailable(
                f"no connection to {self.broker.host}:{self.broker.port} as {self.client_id} within {limit}s"
            ) from exc

    async def publish(self, topic: str, payload: bytes) -> None:
        from awscrt import mqtt5

        if self._client is None:
            raise BrokerUnavailable("publisher not started")
        # Do not hand a publish to the CRT's offline queue: the outbox is our offline queue, and a
        # publish parked there would only time out. Wait for the connection instead. When
        # connected, the packet is handed over before the first await, so publishes started in
        # order go out in order.
        if not self.connected:
            await self.wait_connected(self.broker.ack_timeout_seconds)
        packet = mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS.AT_LEAST_ONCE)
        sent = asyncio.wrap_future(self._client.publish(packet))
        try:
            # shield: a cancelled wait must not cancel the CRT's future, which the CRT completes later
            completion = await asyncio.wait_for(asyncio.shield(sent), self.broker.ack_timeout_seconds + 1)
        except TimeoutError as exc:
            raise PublishFailed(f"no PUBACK for {topic} within {self.broker.ack_timeout_seconds}s") from exc
        except Exception as exc:  # the CRT raises its own exception types (AwsCrtError)
            raise PublishFailed(f"publish to {topic} failed: {exc}") from exc
        puback = completion.puback
        if puback is None or int(puback.reason_code) >= _PUBACK_FAILURE:
            reason = getattr(puback, "reason_code", None)
            raise PublishRefused(
                f"broker refused publish to {topic}: {reason!r} {getattr(puback, 'reason_string', '')}"
            )

    async def stop(self) -> None:
        self._closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        if self._stable is not None:
            self._stable.cancel()
        if self._client is None:
            return
        self._stopped.clear()
        self._client.stop()
        try:
            await asyncio.wait_for(self._stopped.wait(), 5)
        except TimeoutError:
            log.warning("mqtt client did not report stopped within 5s")
        self._connected.clear()
        self._client = None

    async def __aenter__(self) -> Mqtt5Publisher:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()
