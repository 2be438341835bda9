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
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
from awscrt import mqtt5
from awsiot import mqtt5_client_builder

from hemera import aws
from hemera.config import AwsTarget
from hemera.definitions import FunctionDef, QueueConsumer, TopicRule
from hemera.domain.tenancy import topic_matches
from hemera_local.pki import CertPaths
from hemera_local.usage import EMULATED_HEADER

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
# Failed records become visible again after this many seconds (Lambda uses the queue's visibility
# timeout; the local cloud retries sooner so a demo or test does not wait two minutes).
LOCAL_RETRY_DELAY_S = 1
# SendMessageBatch attempts before a message is left unacknowledged for the broker to deliver again.
SEND_ATTEMPTS = 4
# SQS hands out at most 10 messages per ReceiveMessage and takes 10 entries per batch call.
SQS_RECEIVE_LIMIT = 10
SQS_BATCH_LIMIT = 10
SQS_BILLING_CHUNK = 64 * 1024
# Batches of one queue handled at once locally: the functions share this process's interpreter,
# so more than two pollers on this 2-core machine only add contention.
LOCAL_POLLERS = 2
# An empty queue is polled with this long-poll wait (Lambda's pollers use 20 s; shorter here so a
# bridge stops promptly).
LONG_POLL_S = 2
# Messages the bridge lets wait in one queue on moto (see `RulesBridge._wait_for_room`).
LOCAL_QUEUE_DEPTH = 300
# A queue that stays full this long has its depth read from SQS again (DLQ moves are not seen).
RESYNC_AFTER_S = 5.0


def _mark_as_rule_action(request: Any, **_: Any) -> None:
    request.headers[EMULATED_HEADER] = "iot-rule-action"


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
    held_back: int = 0  # times a send waited for room in a queue (see `_wait_for_room`)
    # Records handled without failure, per function (several functions share one bridge).
    records_ok_by_function: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def handled(self, function_name: str, records: int) -> None:
        with self._lock:
            self.records_ok_by_function[function_name] = (
                self.records_ok_by_function.get(function_name, 0) + records
            )

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class QueueDepths:
    """How many messages the bridge has put in each queue and not yet seen deleted: the sends it
    made minus the deletes its pollers made. Messages that SQS moves to a DLQ are never seen
    deleted, so a depth that stays at the limit is re-read from SQS (see `RulesBridge._wait_for_room`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth: dict[str, int] = {}

    def add(self, url: str, count: int) -> None:
        with self._lock:
            self._depth[url] = max(0, self._depth.get(url, 0) + count)

    def set(self, url: str, depth: int) -> None:
        with self._lock:
            self._depth[url] = depth

    def get(self, url: str) -> int:
        with self._lock:
            return self._depth.get(url, 0)


class UsageSink(Protocol):
    """Where the bridge reports the managed-service usage it stands in for (the bench's meter)."""

    def iot_message(self, payload_bytes: int, topic_bytes: int = 0) -> None: ...

    def rule_triggered(self, actions: int, payload_bytes: int = 0) -> None: ...

    def lambda_invocation(self, duration_s: float, memory_mb: int) -> None: ...

    def record(self, service: str, operation: str, units: Mapping[str, float] | None = None) -> None: ...


class QueuePoller:
    """One event source mapping: queue → handler, with partial batch responses."""

    def __init__(
        self,
        target: AwsTarget,
        consumer: QueueConsumer,
        queue_url: str,
        handler: Handler,
        stats: BridgeStats,
        usage: UsageSink | None = None,
        depths: QueueDepths | None = None,
        settler: ThreadPoolExecutor | None = None,
    ) -> None:
        self._sqs = aws.client(target, "sqs")
        self._depths = depths or QueueDepths()
        self._settler = settler
        self.consumer = consumer
        self._url = queue_url
        self.handler = handler
        self._stats = stats
        self._usage = usage
        self._region = target.region
        self._arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def _receive_batch(self) -> list[dict[str, Any]]:
        """Up to `batch_size` messages: SQS hands out at most 10 a call, so keep receiving until
        the batch is full, the queue has nothing more at once, or the batching window has passed.
        An empty queue is long-polled (never spun on: each receive costs the moto server a walk
        over the queue's messages)."""
        definition = self.consumer.queue
        deadline = time.monotonic() + definition.batch_window_s
        batch: list[dict[str, Any]] = []
        while len(batch) < definition.batch_size:
            remaining = deadline - time.monotonic()
            if batch and remaining <= 0:
                break
            received = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=min(SQS_RECEIVE_LIMIT, definition.batch_size - len(batch)),
                WaitTimeSeconds=0 if batch else LONG_POLL_S,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            batch += received
        return batch

    def _settle(self, received: list[dict[str, Any]], failed: set[str], invocation_errors: int) -> None:
        """Delete what the function handled; make what failed visible again soon."""
        function = self.consumer.function
        done = [m for m in received if m["MessageId"] not in failed]
        for start in range(0, len(done), SQS_BATCH_LIMIT):
            chunk = done[start : start + SQS_BATCH_LIMIT]
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            self._depths.add(self._url, -len(chunk))
        retry = [m for m in received if m["MessageId"] in failed]
        for start in range(0, len(retry), SQS_BATCH_LIMIT):
            chunk = retry[start : start + SQS_BATCH_LIMIT]
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": LOCAL_RETRY_DELAY_S,
                    }
                    for i, m in enumerate(chunk)
                ],
            )
        self._stats.handled(function.name, len(done))
        self._stats.add(
            invocations=1,
            invocation_errors=invocation_errors,
            records_ok=len(done),
            records_failed=len(failed),
        )

    def poll_once(self) -> int:
        """Receive one batch and invoke the handler; returns the number of messages received."""
        received = self._receive_batch()
        if not received:
            return 0
        event = sqs_event(received, self._arn, self._region)
        function = self.consumer.function
        started = time.perf_counter()
        invocation_errors = 0
        try:
            response = self.handler(event, LambdaContext(function.name, function.memory_mb))
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception:
            invocation_errors = 1
            failed = {m["MessageId"] for m in received}
        if self._usage is not None:
            self._usage.lambda_invocation(time.perf_counter() - started, function.memory_mb)
        if self._settler is None:
            self._settle(received, failed, invocation_errors)
        else:
            # As Lambda's pollers do, the deletes run beside the next invocation, not before it.
            self._settler.submit(self._settle, received, failed, invocation_errors)
        return len(received)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A device message on its way to a rule's queue, and the broker acknowledgement it waits for."""

    queue_url: str
    body: str
    ack: Callable[[], None]


class RulesBridge:
    def __init__(
        self,
        target: AwsTarget,
        rules: Sequence[TopicRule],
        consumers: Sequence[QueueConsumer],
        queue_urls: dict[str, str],
        broker_port: int,
        credentials: CertPaths,
        client_id: str,
        handlers: dict[str, Handler] | None = None,
        usage: UsageSink | None = None,
    ) -> None:
        self.stats = BridgeStats()
        self._target = target
        self._rules = rules
        self._usage = usage
        # A client of its own, marked so the usage meter leaves these sends to the bridge: IoT
        # Core bills one SQS SendMessage per rule action, the bridge batches them.
        self._sqs = boto3.session.Session().client(
            "sqs", region_name=target.region, endpoint_url=aws.endpoint_url(target, "sqs")
        )
        self._sqs.meta.events.register("before-sign.sqs.*", _mark_as_rule_action)
        self._queue_urls = queue_urls
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._outgoing: queue.Queue[_Pending] = queue.Queue()
        self._depths = QueueDepths()
        self._paused: set[str] = set()
        self._settler = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rules-bridge-settle")
        # One poller per unit of the mapping's concurrency; all of a consumer's pollers share one
        # handler, as the warm instances of one function share its code.
        self._pollers: list[QueuePoller] = []
        for consumer in consumers:
            handler = (handlers or {}).get(consumer.function.name) or load_handler(consumer.function)
            self._pollers += [
                QueuePoller(
                    target,
                    consumer,
                    queue_urls[consumer.queue.local_name],
                    handler,
                    self.stats,
                    usage,
                    self._depths,
                    self._settler,
                )
                for _ in range(min(consumer.max_concurrency, LOCAL_POLLERS))
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

    def replace_handler(self, function_name: str, handler: Handler) -> Handler:
        """Put another handler behind a function's queues (fault injection); returns the one it
        replaced."""
        pollers = [p for p in self._pollers if p.consumer.function.name == function_name]
        if not pollers:
            raise KeyError(function_name)
        previous = pollers[0].handler
        for poller in pollers:
            poller.handler = handler
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
        matching = [rule for rule in self._rules if topic_matches(rule.topic_filter, packet.topic)]
        if self._usage is not None:
            self._usage.iot_message(len(payload), len(packet.topic.encode()))
            self._usage.rule_triggered(len(matching), payload_bytes=len(payload))
        remaining = [len(matching)]

        def acknowledge() -> None:
            # The last of the message's rule actions to land acknowledges it.
            remaining[0] -= 1
            if remaining[0] == 0 and control is not None:
                self._client.invoke_publish_acknowledgement(control)

        if not matching and control is not None:
            self._client.invoke_publish_acknowledgement(control)
        for rule in matching:
            self._outgoing.put(
                _Pending(
                    self._queue_urls[rule.queue.local_name],
                    apply_rule(rule, packet.topic, payload),
                    acknowledge,
                )
            )

    def _forward(self) -> None:
        """Send what the rules matched in SendMessageBatch calls (up to 10 a call, per queue).

        IoT Core sends one SendMessage per rule action; batching here only spares the local moto
        server, and the cost model counts one SQS request per rule action, as AWS bills it."""
        while not self._stop.is_set():
            try:
                first = self._outgoing.get(timeout=0.2)
            except queue.Empty:
                continue
            pending = [first]
            while len(pending) < SQS_BATCH_LIMIT:
                try:
                    pending.append(self._outgoing.get_nowait())
                except queue.Empty:
                    break
            by_queue: dict[str, list[_Pending]] = {}
            for item in pending:
                by_queue.setdefault(item.queue_url, []).append(item)
            for url, items in by_queue.items():
                self._send(url, items)

    def _wait_for_room(self, url: str, count: int) -> None:
        """Hold the send while the queue already has `LOCAL_QUEUE_DEPTH` messages.

        moto's SQS walks every message of a queue on each receive, delete and visibility change,
        so a backlog of 10,000 messages makes each call 10,000 times slower. Held back, the
        messages wait unacknowledged in mosquitto (which queues up to 100,000 for the bridge) until
        the functions catch up; nothing is lost, and in AWS there is no such limit.
        """
        waited_since: float | None = None
        while not self._stop.is_set() and self._depths.get(url) + count > LOCAL_QUEUE_DEPTH:
            self.stats.add(held_back=1)
            waited_since = waited_since or time.monotonic()
            if time.monotonic() - waited_since > RESYNC_AFTER_S:
                self._resync_depth(url)
                waited_since = time.monotonic()
            time.sleep(0.02)

    def _resync_depth(self, url: str) -> None:
        try:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except Exception:
            return
        self._depths.set(
            url,
            int(attributes["ApproximateNumberOfMessages"])
            + int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def _send(self, url: str, items: list[_Pending]) -> None:
        """SendMessageBatch with a few quick retries of what failed (the moto server restarting, a
        busy moment); what still fails stays unacknowledged for the broker to deliver again."""
        self._wait_for_room(url, len(items))
        for attempt in range(SEND_ATTEMPTS):
            try:
                response = self._sqs.send_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "MessageBody": item.body} for i, item in enumerate(items)],
                )
                sent = {int(entry["Id"]) for entry in response.get("Successful", [])}
            except Exception:
                sent = set()
            for i in sorted(sent):
                items[i].ack()
                if self._usage is not None:
                    # SQS bills a request per 64 KB of it
                    chunks = -(-len(items[i].body.encode()) // SQS_BILLING_CHUNK)
                    self._usage.record("sqs", "SendMessage (IoT rule action)", {"sqs_requests": chunks})
            self.stats.add(forwarded=len(sent))
            self._depths.add(url, len(sent))
            items = [item for i, item in enumerate(items) if i not in sent]
            if not items:
                return
            if attempt + 1 < SEND_ATTEMPTS:
                time.sleep(0.1 * 2**attempt)
        self.stats.add(send_failures=len(items))

    def start(self, timeout_s: float = 10.0) -> None:
        self._client.start()
        self._connected.result(timeout=timeout_s)
        suback = self._subscribe().result(timeout=timeout_s)
        refused = [code for code in suback.reason_codes if code.value >= 0x80]
        if refused:
            raise RuntimeError(f"the broker refused the bridge's subscriptions: {refused}")
        forwarder = threading.Thread(target=self._forward, daemon=True, name="rules-bridge-forward")
        forwarder.start()
        self._threads.append(forwarder)
        for poller in self._pollers:
            thread = threading.Thread(
                target=self._run_poller, args=(poller,), daemon=True, name="rules-bridge-poll"
            )
            thread.start()
            self._threads.append(thread)

    def pause(self, function_name: str) -> None:
        """Stop feeding a function (its messages wait in its queue), as disabling its event source
        mapping does; `resume` starts again."""
        self._paused.add(function_name)

    def resume(self, function_name: str) -> None:
        self._paused.discard(function_name)

    def _run_poller(self, poller: QueuePoller) -> None:
        while not self._stop.is_set():
            if poller.consumer.function.name in self._paused:
                time.sleep(0.1)
                continue
            try:
                poller.poll_once()
            except Exception:
                time.sleep(0.5)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._settler.shutdown(wait=True)
        self._client.stop()
