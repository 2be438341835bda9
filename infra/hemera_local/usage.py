"""Counting the AWS usage a local-cloud run makes, in the units AWS bills.

Measured (from the requests the moto server sees, through `UsageMiddleware`):
  - API calls per (service, operation), from the SigV4 credential scope and the operation name;
  - DynamoDB write and read request units, computed from item sizes with the rules of the
    DynamoDB developer guide ("Item sizes and formats", "Read/write request units");
  - S3 PUT-class and GET-class requests and the bytes moved in and out;
  - SQS requests, each counted per 64 KB chunk of payload as SQS bills them;
  - EventBridge PutEvents entries, each counted per 64 KB chunk.

Reported by the rules bridge (it plays IoT Core and Lambda, which never reach moto):
  - IoT Core messages (5 KB increments), rules triggered and rule actions executed;
  - Lambda invocations and GB-seconds (duration rounded up to 1 ms).

Approximations, each one deliberate and documented where it is made:
  - UpdateItem/DeleteItem bill on the size of the stored item, which the request does not carry;
    we use the attributes the request (and, when asked for, the response) carries, minimum 1 WRU.
  - Query/Scan bill on the items read before any filter; we see only the items returned.
  - Number sizes follow the guide's "approximately 1 byte per two significant digits + 1 byte".
  - Writes to secondary indexes, and storage, are not request traffic and are not counted here
    (storage is recorded once at the end of a run with `UsageCounter.record_storage`).
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

# Billing increments, from each service's pricing page.
DYNAMODB_WRITE_UNIT_BYTES = 1024  # one WRU writes up to 1 KB
DYNAMODB_READ_UNIT_BYTES = 4096  # one RRU reads up to 4 KB (strongly consistent)
SQS_CHUNK_BYTES = 64 * 1024  # "each 64 KB chunk of a payload is billed as 1 request"
EVENTBRIDGE_CHUNK_BYTES = 64 * 1024  # "each 64 KB chunk of a payload is billed as one event"
IOT_MESSAGE_BYTES = 5 * 1024  # IoT Core meters messages in 5 KB increments
DYNAMODB_ITEM_STORAGE_OVERHEAD_BYTES = 100  # "All items require 100 bytes of storage overhead"
EVENTBRIDGE_TIME_BYTES = 14  # PutEvents entry size: a given Time counts 14 bytes

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/\s]+/\d{8}/[^/\s]+/([^/\s]+)/aws4_request")
_QUERY_CREDENTIAL_SCOPE = re.compile(r"^[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request$")


# --- DynamoDB item sizes ---------------------------------------------------------------------------


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def number_size(number: str) -> int:
    """Bytes DynamoDB counts for a Number: 1 byte per two significant digits, plus 1 byte.

    Leading and trailing zeroes are trimmed (so 1200 and 0.0012 both have two significant digits).
    """
    try:
        digits = "".join(str(d) for d in Decimal(number).as_tuple().digits)
    except InvalidOperation:
        digits = "".join(ch for ch in number if ch.isdigit())
    significant = digits.strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def attribute_value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one DynamoDB-JSON attribute value (without its name)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return _utf8_len(content)
    if kind == "N":
        return number_size(content)
    if kind == "B":
        return len(base64.b64decode(content))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8_len(s) for s in content)
    if kind == "NS":
        return sum(number_size(n) for n in content)
    if kind == "BS":
        return sum(len(base64.b64decode(b)) for b in content)
    if kind == "L":
        # A list: 3 bytes of overhead, plus 1 byte and the size of each element.
        return 3 + sum(1 + attribute_value_size(element) for element in content)
    if kind == "M":
        # A map: as a list, with each element's key name counted too.
        return 3 + sum(1 + _utf8_len(k) + attribute_value_size(v) for k, v in content.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def item_size(item: Mapping[str, Any]) -> int:
    """Size of an item in DynamoDB JSON: the sum of each attribute's name and value sizes."""
    return sum(_utf8_len(name) + attribute_value_size(value) for name, value in item.items())


def stored_item_size(item: Mapping[str, Any]) -> int:
    """Bytes an item occupies for storage billing: its size plus DynamoDB's 100-byte index overhead."""
    return item_size(item) + DYNAMODB_ITEM_STORAGE_OVERHEAD_BYTES


def write_units(size: int) -> int:
    """WRUs of one standard write: 1 per KB, rounded up, minimum 1."""
    return max(1, math.ceil(size / DYNAMODB_WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    """RRUs of one read of `size` bytes: 1 per 4 KB rounded up (minimum 1), half if eventual."""
    units = max(1, math.ceil(size / DYNAMODB_READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


# --- What one request costs ------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservedRequest:
    """One request and its response as the middleware saw them."""

    service: str
    operation: str
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    status: int
    response_body: bytes


def _json(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    decoded = json.loads(raw)
    return decoded if isinstance(decoded, dict) else {}


def _update_size(request: Mapping[str, Any]) -> int:
    """The attributes an UpdateItem request carries: key, values and the names they are set to."""
    size = item_size(request.get("Key", {}))
    size += sum(attribute_value_size(v) for v in request.get("ExpressionAttributeValues", {}).values())
    size += sum(_utf8_len(name) for name in request.get("ExpressionAttributeNames", {}).values())
    for name, update in request.get("AttributeUpdates", {}).items():
        size += _utf8_len(name) + (attribute_value_size(update["Value"]) if "Value" in update else 0)
    return size


def _write_request_size(kind: str, request: Mapping[str, Any]) -> int:
    """Approximate billed size of one write: the full item for a put, else what the request has."""
    if kind == "Put":
        return item_size(request.get("Item", {}))
    if kind == "Update":
        return _update_size(request)
    return item_size(request.get("Key", {}))  # Delete, ConditionCheck


def _batch_write_units(requests: Mapping[str, list[dict[str, Any]]]) -> int:
    units = 0
    for table_requests in requests.values():
        for entry in table_requests:
            if "PutRequest" in entry:
                units += write_units(item_size(entry["PutRequest"]["Item"]))
            elif "DeleteRequest" in entry:
                units += write_units(item_size(entry["DeleteRequest"]["Key"]))
    return units


def dynamodb_usage(
    operation: str, request: Mapping[str, Any], status: int, response: Mapping[str, Any]
) -> dict[str, float]:
    """Write and read request units of one DynamoDB call, from its request and response.

    A conditional write whose condition fails still consumes write units (at least 1); any
    other error consumes nothing.
    """
    if status >= 400 and "ConditionalCheckFailed" not in str(response.get("__type", "")):
        return {}
    returned = response.get("Attributes")  # present when ReturnValues asked for the item
    if operation == "PutItem":
        return {"dynamodb_wru": write_units(item_size(request.get("Item", {})))}
    if operation in ("UpdateItem", "DeleteItem"):
        kind = "Update" if operation == "UpdateItem" else "Delete"
        size = _write_request_size(kind, request)
        if isinstance(returned, dict):
            size = max(size, item_size(returned))
        return {"dynamodb_wru": write_units(size)}
    if operation == "BatchWriteItem":
        done = _batch_write_units(request.get("RequestItems", {}))
        left = _batch_write_units(response.get("UnprocessedItems", {}))
        return {"dynamodb_wru": done - left}
    if operation == "TransactWriteItems":
        units = 0
        for entry in request.get("TransactItems", []):
            ((kind, body),) = entry.items()
            units += 2 * write_units(_write_request_size(kind, body))
        return {"dynamodb_wru": units}
    if operation == "GetItem":
        size = item_size(response.get("Item", {}))
        return {"dynamodb_rru": read_units(size, bool(request.get("ConsistentRead")))}
    if operation == "BatchGetItem":
        return {"dynamodb_rru": _batch_get_units(request, response)}
    if operation in ("Query", "Scan"):
        total = sum(item_size(item) for item in response.get("Items", []))
        return {"dynamodb_rru": read_units(total, bool(request.get("ConsistentRead")))}
    if operation == "TransactGetItems":
        reads = sum(2 * read_units(item_size(r.get("Item", {})), True) for r in response.get("Responses", []))
        return {"dynamodb_rru": reads}
    return {}


def _batch_get_units(request: Mapping[str, Any], response: Mapping[str, Any]) -> float:
    """Each requested key is one read: the item's size if it came back, else the minimum."""
    units = 0.0
    unprocessed = response.get("UnprocessedKeys", {})
    for table, spec in request.get("RequestItems", {}).items():
        consistent = bool(spec.get("ConsistentRead"))
        items = response.get("Responses", {}).get(table, [])
        keys = len(spec.get("Keys", [])) - len(unprocessed.get(table, {}).get("Keys", []))
        units += sum(read_units(item_size(item), consistent) for item in items)
        units += max(0, keys - len(items)) * read_units(0, consistent)
    return units


def _chunks(size: int, chunk: int) -> int:
    return max(1, math.ceil(size / chunk))


def _sqs_message_bytes(message: Mapping[str, Any]) -> int:
    size = _utf8_len(message.get("MessageBody", message.get("Body", "")))
    for name, attribute in message.get("MessageAttributes", {}).items():
        size += _utf8_len(name) + _utf8_len(attribute.get("DataType", ""))
        size += _utf8_len(attribute.get("StringValue", ""))
        size += len(base64.b64decode(attribute["BinaryValue"])) if "BinaryValue" in attribute else 0
    return size


def sqs_usage(operation: str, request: Mapping[str, Any], response: Mapping[str, Any]) -> dict[str, float]:
    """Billed SQS requests of one call: one per 64 KB chunk of the payload it carries."""
    if operation == "SendMessage":
        payload = _sqs_message_bytes(request)
    elif operation == "SendMessageBatch":
        payload = sum(_sqs_message_bytes(entry) for entry in request.get("Entries", []))
    elif operation == "ReceiveMessage":
        payload = sum(_sqs_message_bytes(message) for message in response.get("Messages", []))
    else:
        payload = 0
    return {"sqs_requests": _chunks(payload, SQS_CHUNK_BYTES)}


def put_events_entry_size(entry: Mapping[str, Any]) -> int:
    """Size of one PutEvents entry as EventBridge computes it (its user guide's formula)."""
    size = EVENTBRIDGE_TIME_BYTES if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += _utf8_len(entry.get(key) or "")
    size += sum(_utf8_len(resource) for resource in entry.get("Resources") or [])
    return size


def eventbridge_usage(
    operation: str, request: Mapping[str, Any], response: Mapping[str, Any]
) -> dict[str, float]:
    """Billed custom events of a PutEvents call: each accepted entry per 64 KB chunk."""
    if operation != "PutEvents":
        return {}
    results = response.get("Entries") or [{}] * len(request.get("Entries", []))
    events = sum(
        _chunks(put_events_entry_size(entry), EVENTBRIDGE_CHUNK_BYTES)
        for entry, result in zip(request.get("Entries", []), results, strict=False)
        if not result.get("ErrorCode")
    )
    return {"eventbridge_events": events}


def s3_usage(request: ObservedRequest) -> dict[str, float]:
    """S3 request class and bytes of one call; DELETE is free and counts no request."""
    operation = request.operation
    if operation in ("PUT", "POST", "COPY", "LIST"):
        declared = request.headers.get("x-amz-decoded-content-length")
        sent = int(declared) if declared else len(request.body)
        return {"s3_put_requests": 1, "s3_bytes_in": sent if operation != "LIST" else 0}
    if operation in ("GET", "HEAD"):
        return {
            "s3_get_requests": 1,
            "s3_bytes_out": len(request.response_body) if request.status < 400 else 0,
        }
    return {}


def request_usage(request: ObservedRequest) -> dict[str, float]:
    """The billable units of one request, keyed by `UsageCounter` field name."""
    if request.service == "s3":
        return s3_usage(request)
    if request.service == "dynamodb":
        return dynamodb_usage(
            request.operation, _json(request.body), request.status, _json(request.response_body)
        )
    if request.service == "sqs":
        if request.status >= 400:
            return {"sqs_requests": 1}
        return sqs_usage(request.operation, _json(request.body), _json(request.response_body))
    if request.service == "events" and request.status < 400:
        return eventbridge_usage(request.operation, _json(request.body), _json(request.response_body))
    return {}


# --- The counter -----------------------------------------------------------------------------------


@dataclass
class UsageCounter:
    """Thread-safe totals of billable usage; the middleware and the rules bridge both add to it."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    dynamodb_wru: float = 0.0
    dynamodb_rru: float = 0.0
    s3_put_requests: int = 0
    s3_get_requests: int = 0
    s3_bytes_in: int = 0
    s3_bytes_out: int = 0
    sqs_requests: int = 0
    eventbridge_events: int = 0
    iot_messages: int = 0
    iot_rules_triggered: int = 0
    iot_rule_actions: int = 0
    lambda_invocations: int = 0
    lambda_gb_seconds: float = 0.0
    # Storage at the end of a run, measured by whoever can see it (None: not measured).
    s3_stored_bytes: int | None = None
    dynamodb_stored_bytes: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, service: str, operation: str, units: Mapping[str, float] | None = None) -> None:
        """Count one API call and add its billable units."""
        with self._lock:
            self.calls[(service, operation)] += 1
            for name, amount in (units or {}).items():
                setattr(self, name, getattr(self, name) + amount)

    def iot_message(self, payload_bytes: int, topic_bytes: int = 0) -> None:
        """One MQTT PUBLISH through IoT Core: metered on payload + topic, in 5 KB increments."""
        with self._lock:
            self.iot_messages += _chunks(payload_bytes + topic_bytes, IOT_MESSAGE_BYTES)

    def rule_triggered(self, actions: int, payload_bytes: int = 0) -> None:
        """One topic rule triggered, executing `actions` actions (both per 5 KB of message)."""
        increments = _chunks(payload_bytes, IOT_MESSAGE_BYTES)
        with self._lock:
            self.iot_rules_triggered += increments
            self.iot_rule_actions += max(1, actions) * increments

    def lambda_invocation(self, duration_s: float, memory_mb: int) -> None:
        """One Lambda invocation: duration rounded up to 1 ms, times memory in GB."""
        billed_s = math.ceil(round(duration_s * 1000, 6)) / 1000
        with self._lock:
            self.lambda_invocations += 1
            self.lambda_gb_seconds += billed_s * memory_mb / 1024

    def record_storage(self, s3_bytes: int | None = None, dynamodb_bytes: int | None = None) -> None:
        """Storage the run left behind, measured at its end (objects listed, items sized)."""
        with self._lock:
            if s3_bytes is not None:
                self.s3_stored_bytes = s3_bytes
            if dynamodb_bytes is not None:
                self.dynamodb_stored_bytes = dynamodb_bytes

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable copy with stable keys; calls as {"service:operation": n}, sorted."""
        with self._lock:
            return {
                "calls": {f"{s}:{o}": n for (s, o), n in sorted(self.calls.items())},
                "dynamodb_wru": self.dynamodb_wru,
                "dynamodb_rru": self.dynamodb_rru,
                "s3_put_requests": self.s3_put_requests,
                "s3_get_requests": self.s3_get_requests,
                "s3_bytes_in": self.s3_bytes_in,
                "s3_bytes_out": self.s3_bytes_out,
                "sqs_requests": self.sqs_requests,
                "eventbridge_events": self.eventbridge_events,
                "iot_messages": self.iot_messages,
                "iot_rules_triggered": self.iot_rules_triggered,
                "iot_rule_actions": self.iot_rule_actions,
                "lambda_invocations": self.lambda_invocations,
                "lambda_gb_seconds": self.lambda_gb_seconds,
                "s3_stored_bytes": self.s3_stored_bytes,
                "dynamodb_stored_bytes": self.dynamodb_stored_bytes,
            }

    def reset(self) -> None:
        """Back to zero (a bench resets after setting up tables, buckets and tenants)."""
        fresh = UsageCounter()
        with self._lock:
            for name in self.snapshot_fields():
                setattr(self, name, getattr(fresh, name))

    @staticmethod
    def snapshot_fields() -> tuple[str, ...]:
        return tuple(name for name in UsageCounter.__dataclass_fields__ if not name.startswith("_"))


# --- The WSGI middleware ---------------------------------------------------------------------------


def service_of(environ: Mapping[str, Any]) -> str | None:
    """The signing service of a SigV4 request (header or presigned query), or None if unsigned."""
    match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1)
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
    if credential:
        scoped = _QUERY_CREDENTIAL_SCOPE.match(credential[0])
        return scoped.group(1) if scoped else None
    return None


def _s3_operation(method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str]) -> str:
    """S3 request class from the method. Path-style addressing (what boto3 uses for an IP
    endpoint): a GET with no object key, or with list-type, lists."""
    if method == "PUT" and "x-amz-copy-source" in headers:
        return "COPY"
    if method == "GET" and ("list-type" in query or "/" not in path.strip("/")):
        return "LIST"
    return method


def operation_of(
    service: str, environ: Mapping[str, Any], body: bytes, query: Mapping[str, list[str]]
) -> str:
    """The API operation: X-Amz-Target, else the Action parameter, else (S3) the request class."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    action = query.get("Action")
    if not action and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    if action:
        return action[0]
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    if service == "s3":
        return _s3_operation(method, environ.get("PATH_INFO", "/"), query, _headers(environ))
    return method


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    return {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }


def _read_body(environ: dict[str, Any]) -> bytes:
    length = environ.get("CONTENT_LENGTH")
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length:
        return bytes(stream.read(int(length)))
    if environ.get("wsgi.input_terminated"):
        return bytes(stream.read())
    return b""


# Header the local cloud's stand-ins for managed services put on their own calls to moto.
EMULATED_HEADER = "X-Hemera-Emulated"
EMULATED_ENVIRON_KEY = "HTTP_X_HEMERA_EMULATED"


class UsageMiddleware:
    """Wraps moto's WSGI app and counts every signed request into a `UsageCounter`.

    The request body is read once and handed on as a fresh `wsgi.input`; the response is
    buffered (moto answers with whole bodies anyway) so reads can be sized. Unsigned requests
    (moto's dashboard, `/moto-api/`, `/_hemera/...`) are passed through uncounted. Counting never
    breaks a request: a failure to count is itself counted, under ("unknown", "error").
    """

    def __init__(self, app: WsgiApp, counter: UsageCounter) -> None:
        self._app = app
        self._counter = counter

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        service = service_of(environ)
        if service is None:
            return self._app(environ, start_response)
        if environ.get(EMULATED_ENVIRON_KEY):
            # A call the local cloud makes in place of a managed service (the rules bridge sending
            # for IoT Core): that stand-in counts what AWS would bill; here it is only listed.
            self._counter.record(service, f"{environ[EMULATED_ENVIRON_KEY]} (emulated)")
            return self._app(environ, start_response)
        body = _read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        seen_status: list[int] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen_status.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self._app(environ, capture)
        try:
            response_body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        self._count(service, environ, body, seen_status[-1] if seen_status else 500, response_body)
        return [response_body]

    def _count(
        self, service: str, environ: Mapping[str, Any], body: bytes, status: int, response: bytes
    ) -> None:
        try:
            query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            operation = operation_of(service, environ, body, query)
            observed = ObservedRequest(
                service=service,
                operation=operation,
                method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
                path=environ.get("PATH_INFO", "/"),
                query=query,
                headers=_headers(environ),
                body=body,
                status=status,
                response_body=response,
            )
            units = request_usage(observed)
        except Exception:  # counting must never fail the request it counts
            self._counter.record("unknown", "error")
            return
        self._counter.record(service, operation, units)
