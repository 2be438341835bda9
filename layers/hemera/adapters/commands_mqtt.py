"""Commands to RTUs on the local cloud: published on its mosquitto broker (mTLS, QoS 1), where
IoT Core's data endpoint would take them in AWS. The local cloud names the broker and the rules
bridge's credentials (`RuntimeSettings.local_mqtt`) to the processes it starts."""

from __future__ import annotations

import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from awscrt import mqtt5
from awsiot import mqtt5_client_builder

CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class LocalBroker:
    port: int
    cert: str
    key: str
    ca: str

    @classmethod
    def parse(cls, value: str) -> LocalBroker:
        """`port|cert|key|ca`, as `RuntimeSettings.local_mqtt` carries it."""
        port, cert, key, ca = value.split("|")
        return cls(int(port), cert, key, ca)

    def render(self) -> str:
        return f"{self.port}|{self.cert}|{self.key}|{self.ca}"


def _settle(future: Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class LocalMqttPublisher:
    """One short connection per command (commands are rare): connect, publish QoS 1, wait for the
    broker's PUBACK, disconnect. A refused or unacknowledged publish raises."""

    def __init__(self, broker: LocalBroker) -> None:
        self._broker = broker

    def publish(self, topic: str, payload: bytes) -> None:
        connected: Future[None] = Future()
        client = mqtt5_client_builder.mtls_from_path(
            endpoint="127.0.0.1",
            port=self._broker.port,
            cert_filepath=self._broker.cert,
            pri_key_filepath=self._broker.key,
            ca_filepath=self._broker.ca,
            # Its own client id: the bridge's connection under the same identity stays up.
            client_id=f"hemera-commands-{uuid.uuid4().hex[:12]}",
            on_lifecycle_connection_success=lambda _data: _settle(connected),
            enable_metrics_collection=False,
        )
        client.start()
        try:
            connected.result(timeout=CONNECT_TIMEOUT_S)
            sent: Any = client.publish(
                mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS.AT_LEAST_ONCE)
            ).result(timeout=CONNECT_TIMEOUT_S)
            code = sent.puback.reason_code if sent.puback else None
            if code is None or code.value >= 0x80:
                raise RuntimeError(f"the local broker did not accept the command on {topic}: {code}")
        finally:
            client.stop()
