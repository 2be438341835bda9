"""The rules bridge: IoT Core's rules engine and Lambda's SQS event source, for the local cloud.

It subscribes to the broker with the topic filters of `hemera.definitions.TOPIC_RULES` (the same
definitions the CDK app turns into `AWS::IoT::TopicRule`s), applies the rule's SELECT (payload in
base64 plus the topic), sends the result to the rule's SQS queue on the moto server, and polls each queue
like an event source mapping: batches of `batch_size`, Lambda-shaped SQS events, the same handler
function in-process, partial batch failures retried and finally moved to the DLQ by the queue's
redrive policy.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awscrt import mqtt5
from awsiot import mqtt5_client_builder

from hemera import aws
from hemera.config import AwsTarget
from hemera.definitions import FunctionDef, TopicRule
from hemera.domain.tenancy import topic_matches
from hemera_local.pki import CertPaths

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
# Failed records become visible again after this many seconds (Lambda uses the queue's visibility
# timeout; the local cloud retries sooner so a demo or test does not wait two minutes).
LOCAL_RETRY_DELAY_S = 1
# SendMessage attempts before a message is left unacknowledged for the broker to deliver again.
SEND_ATTEMPTS = 4


def apply_rule(rule: TopicRule, topic: str, payload: bytes) -> str:
    """The rule's SELECT: the payload in base64 and the topic, as one JSON document."""
    return json.dumps(
        {rule.payload_attribute: base64.b64encode(payload).decode(), rule.topic_attribute: topic},
        separators=(",", ":"),
    )


FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


_MODULE_PREFIX = "hemera_function_"


def cold_start() -> None:
    """Forget every loaded function module, so the next invocation starts cold and reads its
    settings from the environment again (as a new Lambda deployment would)."""
    for name in [n for n in sys.modules if n.startswith(_MODULE_PREFIX)]:
        del sys.modules[name]


def load_handler(function: FunctionDef) -> Handler:
    """Import a function's handler from its code folder, as the Lambda runtime does (once)."""
    module_name = f"{_MODULE_PREFIX}{function.name}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, FUNCTIONS_DIR / function.module_file)
        if spec is None or spec.loader is None:
            raise ImportError(f"no handler module for function {function.name}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    handler: Handler = getattr(module, function.attribute)
    return handler


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def sqs_event(messages: Sequence[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping delivers for a batch of received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


@dataclass
class BridgeStats:
    forwarded: int = 0
    invocations: int = 0
    records_ok: int = 0
    records_failed: int = 0
    invocation_errors: int = 0
    resubscriptions: int = 0
    send_failures: int = 0


class QueuePoller:
    """One event source mapping: queue → handler, with partial batch responses."""

    def __init__(
        self, target: AwsTarget, rule: TopicRule, queue_url: str, handler: Handler, stats: BridgeStats
    ) -> None:
        self._sqs = aws.client(target, "sqs")
        self.rule = rule
        self._url = queue_url
        self.handler = handler
        self._stats = stats
        self._region = target.region
        self._arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def poll_once(self) -> int:
        """Receive one batch and invoke the handler; returns the number of messages received."""
        queue = self.rule.queue
        received = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=queue.batch_size,
            WaitTimeSeconds=queue.batch_window_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        event = sqs_event(received, self._arn, self._region)
        self._stats.invocations += 1
        try:
            response = self.handler(event, LambdaContext(self.rule.function.name))
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception:
            self._stats.invocation_errors += 1
            failed = {m["MessageId"] for m in received}
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        for m in received:
            if m["MessageId"] in failed:
                self._sqs.change_message_visibility(
                    QueueUrl=self._url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=LOCAL_RETRY_DELAY_S,
                )
        self._stats.records_ok += len(done)
        self._stats.records_failed += len(failed)
        return len(received)


class RulesBridge:
    def __init__(
        self,
        target: AwsTarget,
        rules: Sequence[TopicRule],
        queue_urls: dict[str, str],
        broker_port: int,
        credentials: CertPaths,
        client_id: str,
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        self.stats = BridgeStats()
        self._target = target
        self._rules = rules
        self._sqs = aws.client(target, "sqs")
        self._queue_urls = queue_urls
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pollers = [
            QueuePoller(
                target,
                rule,
                queue_urls[rule.queue.local_name],
                (handlers or {}).get(rule.name) or load_handler(rule.function),
                self.stats,
            )
            for rule in rules
        ]
        self._connected: Future[None] = Future()
        self._client = mqtt5_client_builder.mtls_from_path(
            endpoint="127.0.0.1",
            port=broker_port,
            cert_filepath=str(credentials.cert),
            pri_key_filepath=str(credentials.key),
            ca_filepath=str(credentials.ca),
            client_id=client_id,
            session_behavior=mqtt5.ClientSessionBehaviorType.REJOIN_POST_SUCCESS,
            session_expiry_interval_sec=3600,
            # The rules engine is not a device: IoT Core's per-connection flow control does not apply.
            extended_validation_and_flow_control_options=mqtt5.ExtendedValidationAndFlowControlOptions.NONE,
            on_publish_received=self._on_publish,
            on_lifecycle_connection_success=self._on_connection_success,
            enable_metrics_collection=False,
        )

    def replace_handler(self, rule_name: str, handler: Handler) -> Handler:
        """Put another function behind a rule (fault injection); returns the one it replaced."""
        poller = next(p for p in self._pollers if p.rule.name == rule_name)
        previous, poller.handler = poller.handler, handler
        return previous

    def _subscribe(self) -> Future[Any]:
        future: Future[Any] = self._client.subscribe(
            mqtt5.SubscribePacket(
                subscriptions=[
                    mqtt5.Subscription(topic_filter=rule.topic_filter, qos=mqtt5.QoS.AT_LEAST_ONCE)
                    for rule in self._rules
                ]
            )
        )
        return future

    def _on_connection_success(self, _data: mqtt5.LifecycleConnectSuccessData) -> None:
        if not self._connected.done():
            self._connected.set_result(None)
            return
        # Subscribe again on every reconnection: mosquitto 2.0 may or may not have kept the
        # session over its own restart, and subscribing to the same filters twice is harmless.
        self._subscribe().add_done_callback(self._resubscribed)

    def _resubscribed(self, future: Future[Any]) -> None:
        if future.exception() is None and all(code.value < 0x80 for code in future.result().reason_codes):
            self.stats.resubscriptions += 1

    def _on_publish(self, data: mqtt5.PublishReceivedData) -> None:
        packet = data.publish_packet
        payload = bytes(packet.payload or b"")
        # Acknowledge to the broker only once SQS holds the message: unacknowledged, the broker
        # delivers it again when the bridge reconnects, instead of it being lost here.
        control = (
            data.acquire_publish_acknowledgement_control()
            if data.acquire_publish_acknowledgement_control
            else None
        )
        try:
            for rule in self._rules:
                if topic_matches(rule.topic_filter, packet.topic):
                    self._send(rule, apply_rule(rule, packet.topic, payload))
                    self.stats.forwarded += 1
        except Exception:
            self.stats.send_failures += 1
            return
        if control is not None:
            self._client.invoke_publish_acknowledgement(control)

    def _send(self, rule: TopicRule, body: str) -> None:
        """SQS SendMessage with a few quick retries (the moto server restarting, a busy moment)."""
        for attempt in range(SEND_ATTEMPTS):
            try:
                self._sqs.send_message(QueueUrl=self._queue_urls[rule.queue.local_name], MessageBody=body)
                return
            except Exception:
                if attempt + 1 == SEND_ATTEMPTS:
                    raise
                time.sleep(0.1 * 2**attempt)

    def start(self, timeout_s: float = 10.0) -> None:
        self._client.start()
        self._connected.result(timeout=timeout_s)
        suback = self._subscribe().result(timeout=timeout_s)
        refused = [code for code in suback.reason_codes if code.value >= 0x80]
        if refused:
            raise RuntimeError(f"the broker refused the bridge's subscriptions: {refused}")
        for poller in self._pollers:
            thread = threading.Thread(
                target=self._run_poller, args=(poller,), daemon=True, name="rules-bridge"
            )
            thread.start()
            self._threads.append(thread)

    def _run_poller(self, poller: QueuePoller) -> None:
        while not self._stop.is_set():
            try:
                poller.poll_once()
            except Exception:
                time.sleep(0.5)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._client.stop()
