"""Usage counting: DynamoDB item sizes and request units, SQS/EventBridge chunks, the counter,
and the WSGI middleware in front of moto (with a fake app, and one real round trip)."""

import base64
import io
import json
import threading
import uuid

import pytest

from hemera_local.usage import (
    UsageCounter,
    UsageMiddleware,
    dynamodb_usage,
    eventbridge_usage,
    item_size,
    number_size,
    put_events_entry_size,
    read_units,
    sqs_usage,
    stored_item_size,
    write_units,
)

AUTH = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=abc"


# --- item sizes (DynamoDB developer guide, "Item sizes and formats") -------------------------------


def test_a_string_attribute_is_its_name_plus_its_utf8_bytes():
    assert item_size({"name": {"S": "Hemera"}}) == 4 + 6
    assert item_size({"città": {"S": "São"}}) == 6 + 4  # à and ã are two bytes each


@pytest.mark.parametrize(
    ("number", "size"),
    [("123.45", 4), ("1200", 2), ("0.0012", 2), ("7", 2), ("-98765", 4), ("0", 2)],
)
def test_a_number_is_one_byte_per_two_significant_digits_plus_one(number, size):
    # 123.45 has 5 significant digits: ceil(5 / 2) + 1 = 4; zeroes at either end are trimmed.
    assert number_size(number) == size
    assert item_size({"price": {"N": number}}) == 5 + size


def test_binary_is_counted_by_raw_bytes_not_base64():
    raw = bytes(range(10))
    assert item_size({"b": {"B": base64.b64encode(raw).decode()}}) == 1 + 10


def test_bool_and_null_are_one_byte():
    assert item_size({"ok": {"BOOL": True}, "gap": {"NULL": True}}) == (2 + 1) + (3 + 1)


def test_lists_and_maps_have_3_bytes_overhead_and_1_per_element():
    assert item_size({"l": {"L": []}}) == 1 + 3
    assert item_size({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}) == 1 + 3 + (1 + 2) + (1 + 2)
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)


def test_sets_are_the_sum_of_their_members():
    assert item_size({"s": {"SS": ["a", "bcd"]}, "n": {"NS": ["1", "123"]}}) == (1 + 4) + (1 + 2 + 3)


def test_an_independent_calculator_agrees_on_a_whole_item():
    # The example item of the ddbitemsizer README (github.com/mikaelvesavuori/ddbitemsizer): 141 bytes.
    item = {
        "itemType": {"S": "SLOT"},
        "id": {"S": "abc1231"},
        "hostName": {"S": "Harry Mason"},
        "timeSlot": {"S": "February 23, 1999"},
        "slotStatus": {"S": "OPEN"},
        "createdAt": {"S": "February 1, 1999"},
        "updatedAt": {"S": "February 1, 1999"},
        "expiresAt": {"N": "2099"},
    }
    assert item_size(item) == 141
    assert stored_item_size(item) == 241


def test_write_and_read_units_round_up_per_kilobyte_and_per_4_kilobytes():
    assert [write_units(s) for s in (0, 1024, 1025, 3 * 1024)] == [1, 1, 2, 3]
    assert [read_units(s, True) for s in (0, 4096, 4097)] == [1.0, 1.0, 2.0]
    assert [read_units(s, False) for s in (0, 4096, 4097)] == [0.5, 0.5, 1.0]


# --- DynamoDB request units ------------------------------------------------------------------------


def _item_of(size_bytes: int) -> dict:
    """An item of exactly `size_bytes` (a 1-byte name and a string value)."""
    return {"v": {"S": "x" * (size_bytes - 1)}}


def test_put_item_bills_its_item_size_per_kilobyte():
    assert dynamodb_usage("PutItem", {"Item": _item_of(2500)}, 200, {}) == {"dynamodb_wru": 3}


def test_a_failed_condition_still_bills_but_other_errors_do_not():
    failed = {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}
    assert dynamodb_usage("PutItem", {"Item": _item_of(10)}, 400, failed) == {"dynamodb_wru": 1}
    invalid = {"__type": "com.amazon.coral.validate#ValidationException"}
    assert dynamodb_usage("PutItem", {"Item": _item_of(10)}, 400, invalid) == {}


def test_update_item_uses_the_larger_of_request_and_returned_item():
    request = {
        "Key": {"pk": {"S": "a"}},
        "UpdateExpression": "SET #v = :v",
        "ExpressionAttributeNames": {"#v": "value"},
        "ExpressionAttributeValues": {":v": {"N": "1"}},
    }
    assert dynamodb_usage("UpdateItem", request, 200, {}) == {"dynamodb_wru": 1}
    assert dynamodb_usage("UpdateItem", request, 200, {"Attributes": _item_of(5000)}) == {"dynamodb_wru": 5}


def test_batch_write_bills_each_item_and_not_the_unprocessed_ones():
    request = {
        "RequestItems": {
            "t": [
                {"PutRequest": {"Item": _item_of(1500)}},
                {"PutRequest": {"Item": _item_of(100)}},
                {"DeleteRequest": {"Key": {"pk": {"S": "a"}}}},
            ]
        }
    }
    assert dynamodb_usage("BatchWriteItem", request, 200, {}) == {"dynamodb_wru": 2 + 1 + 1}
    unprocessed = {"UnprocessedItems": {"t": [{"PutRequest": {"Item": _item_of(1500)}}]}}
    assert dynamodb_usage("BatchWriteItem", request, 200, unprocessed) == {"dynamodb_wru": 2}


def test_transactional_writes_bill_double():
    request = {"TransactItems": [{"Put": {"Item": _item_of(1500)}}, {"Delete": {"Key": {"pk": {"S": "a"}}}}]}
    assert dynamodb_usage("TransactWriteItems", request, 200, {}) == {"dynamodb_wru": 2 * 2 + 2 * 1}


def test_get_item_bills_half_unless_consistent_even_when_nothing_is_found():
    assert dynamodb_usage("GetItem", {}, 200, {}) == {"dynamodb_rru": 0.5}
    found = {"Item": _item_of(9000)}
    assert dynamodb_usage("GetItem", {"ConsistentRead": True}, 200, found) == {"dynamodb_rru": 3.0}
    assert dynamodb_usage("GetItem", {}, 200, found) == {"dynamodb_rru": 1.5}


def test_query_sums_the_returned_items_and_rounds_once():
    items = [_item_of(2000)] * 3  # 6,000 bytes: 2 units together, 3 if each were rounded
    assert dynamodb_usage("Query", {"ConsistentRead": True}, 200, {"Items": items}) == {"dynamodb_rru": 2.0}
    assert dynamodb_usage("Query", {}, 200, {"Items": items}) == {"dynamodb_rru": 1.0}
    assert dynamodb_usage("Scan", {}, 200, {"Items": []}) == {"dynamodb_rru": 0.5}


def test_batch_get_bills_each_key_with_the_tables_consistency():
    request = {
        "RequestItems": {
            "strong": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}], "ConsistentRead": True},
            "eventual": {"Keys": [{"pk": {"S": "c"}}]},
        }
    }
    response = {"Responses": {"strong": [_item_of(5000)], "eventual": [_item_of(10)]}}
    # strong: one 5,000-byte item (2) + one key not found (1); eventual: one small item (0.5).
    assert dynamodb_usage("BatchGetItem", request, 200, response) == {"dynamodb_rru": 3.5}


# --- SQS and EventBridge chunks --------------------------------------------------------------------


def test_sqs_bills_per_64_kilobyte_chunk_of_a_requests_payload():
    small = {"Entries": [{"Id": str(i), "MessageBody": "x" * 1000} for i in range(10)]}
    assert sqs_usage("SendMessageBatch", small, {}) == {"sqs_requests": 1}
    big = {"MessageBody": "x" * (64 * 1024 + 1)}
    assert sqs_usage("SendMessage", big, {}) == {"sqs_requests": 2}
    received = {"Messages": [{"Body": "x" * 40_000}, {"Body": "y" * 40_000}]}
    assert sqs_usage("ReceiveMessage", {}, received) == {"sqs_requests": 2}
    assert sqs_usage("DeleteMessageBatch", {}, {}) == {"sqs_requests": 1}


def test_put_events_bills_each_accepted_entry_per_64_kilobytes():
    entry = {"Source": "hemera.ingest", "DetailType": "MeterDayChanged", "Detail": "{}"}
    assert put_events_entry_size(entry) == 13 + 15 + 2
    assert put_events_entry_size({**entry, "Time": "2026-11-22T00:00:00Z"}) == 13 + 15 + 2 + 14
    big = {**entry, "Detail": "x" * (70 * 1024)}
    request = {"Entries": [entry, big, entry]}
    response = {"Entries": [{"EventId": "1"}, {"EventId": "2"}, {"ErrorCode": "InternalFailure"}]}
    assert eventbridge_usage("PutEvents", request, response) == {"eventbridge_events": 1 + 2}


# --- the counter -----------------------------------------------------------------------------------


def test_iot_messages_are_metered_in_5_kilobyte_increments():
    counter = UsageCounter()
    counter.iot_message(100)
    counter.iot_message(5 * 1024)
    counter.iot_message(5 * 1024 - 10, topic_bytes=40)
    assert counter.snapshot()["iot_messages"] == 1 + 1 + 2


def test_rules_count_triggers_and_actions():
    counter = UsageCounter()
    counter.rule_triggered(actions=1)
    counter.rule_triggered(actions=2)
    snap = counter.snapshot()
    assert (snap["iot_rules_triggered"], snap["iot_rule_actions"]) == (2, 3)


def test_lambda_duration_rounds_up_to_the_millisecond():
    counter = UsageCounter()
    counter.lambda_invocation(0.0101, 128)  # billed 11 ms at 0.125 GB
    counter.lambda_invocation(0.002, 1024)  # exactly 2 ms at 1 GB, not rounded up further
    snap = counter.snapshot()
    assert snap["lambda_invocations"] == 2
    assert snap["lambda_gb_seconds"] == pytest.approx(0.011 * 0.125 + 0.002)


def test_counting_from_many_threads_loses_nothing():
    import sys

    counter = UsageCounter()

    def work():
        for _ in range(10_000):
            counter.record("sqs", "SendMessageBatch", {"sqs_requests": 1})
            counter.iot_message(10)

    threads = [threading.Thread(target=work) for _ in range(8)]
    # Switch threads as often as possible, so an unlocked read-modify-write would lose counts.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(previous)
    snap = counter.snapshot()
    assert snap["sqs_requests"] == snap["iot_messages"] == 80_000
    assert snap["calls"] == {"sqs:SendMessageBatch": 80_000}


def test_snapshot_is_json_with_stable_keys_and_reset_zeroes_it():
    counter = UsageCounter()
    empty = counter.snapshot()
    counter.record("dynamodb", "PutItem", {"dynamodb_wru": 2})
    counter.record_storage(s3_bytes=10, dynamodb_bytes=20)
    snap = json.loads(json.dumps(counter.snapshot()))
    assert list(snap) == list(empty)
    assert (snap["dynamodb_wru"], snap["s3_stored_bytes"], snap["dynamodb_stored_bytes"]) == (2, 10, 20)
    counter.reset()
    assert counter.snapshot() == empty


# --- the middleware, with a fake app ---------------------------------------------------------------


class FakeApp:
    """A WSGI app that records what it was given and answers with a fixed body."""

    def __init__(self, status: str = "200 OK", body: bytes = b"{}") -> None:
        self.status, self.body = status, body
        self.seen_body: bytes | None = None
        self.seen_length: str | None = None
        self.closed = False

    def __call__(self, environ, start_response):
        self.seen_length = environ.get("CONTENT_LENGTH")
        self.seen_body = environ["wsgi.input"].read(int(self.seen_length or 0))
        start_response(self.status, [("Content-Type", "application/json")])
        app = self

        class Body(list):
            def close(self):
                app.closed = True

        return Body([self.body[:3], self.body[3:]])


def _environ(service: str | None, body: bytes = b"", method: str = "POST", path: str = "/", **extra):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "wsgi.input": io.BytesIO(body),
        **extra,
    }
    if service:
        environ["HTTP_AUTHORIZATION"] = AUTH.format(service=service)
    return environ


def _call(middleware, environ):
    statuses = []
    body = b"".join(middleware(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    return statuses, body


def test_the_app_gets_the_same_body_and_the_client_the_same_response():
    item = {"TableName": "t", "Item": _item_of(1500)}
    raw = json.dumps(item).encode()
    app = FakeApp(body=b'{"ConsumedCapacity": null}')
    counter = UsageCounter()
    statuses, body = _call(
        UsageMiddleware(app, counter),
        _environ("dynamodb", raw, HTTP_X_AMZ_TARGET="DynamoDB_20120810.PutItem"),
    )
    assert (app.seen_body, app.seen_length) == (raw, str(len(raw)))
    assert (statuses, body, app.closed) == (["200 OK"], b'{"ConsumedCapacity": null}', True)
    snap = counter.snapshot()
    assert (snap["calls"], snap["dynamodb_wru"]) == ({"dynamodb:PutItem": 1}, 2)


def test_a_chunked_body_without_length_is_read_to_the_end():
    app = FakeApp()
    environ = _environ("s3", method="PUT", path="/raw/key.json")
    environ.update({"CONTENT_LENGTH": "", "wsgi.input": io.BytesIO(b"abcdef"), "wsgi.input_terminated": True})
    counter = UsageCounter()
    _call(UsageMiddleware(app, counter), environ)
    assert app.seen_body == b"abcdef"
    assert counter.snapshot()["s3_bytes_in"] == 6


def test_unsigned_requests_are_passed_through_uncounted():
    app = FakeApp(body=b"dashboard")
    counter = UsageCounter()
    _, body = _call(UsageMiddleware(app, counter), _environ(None, method="GET", path="/moto-api/"))
    assert body == b"dashboard"
    assert counter.snapshot() == UsageCounter().snapshot()


@pytest.mark.parametrize(
    ("method", "path", "query", "operation", "put", "get"),
    [
        ("PUT", "/raw/tenants/a/x.json", "", "PUT", 1, 0),
        ("GET", "/raw/tenants/a/x.json", "", "GET", 0, 1),
        ("HEAD", "/raw/tenants/a/x.json", "", "HEAD", 0, 1),
        ("GET", "/raw", "list-type=2&prefix=tenants", "LIST", 1, 0),
        ("DELETE", "/raw/tenants/a/x.json", "", "DELETE", 0, 0),
    ],
)
def test_s3_requests_are_classed_by_method(method, path, query, operation, put, get):
    counter = UsageCounter()
    _call(UsageMiddleware(FakeApp(), counter), _environ("s3", method=method, path=path, QUERY_STRING=query))
    snap = counter.snapshot()
    assert snap["calls"] == {f"s3:{operation}": 1}
    assert (snap["s3_put_requests"], snap["s3_get_requests"]) == (put, get)


def test_the_action_form_parameter_names_the_operation():
    counter = UsageCounter()
    body = b"Action=AssumeRole&Version=2011-06-15"
    environ = _environ("sts", body, CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8")
    _call(UsageMiddleware(FakeApp(), counter), environ)
    assert counter.snapshot()["calls"] == {"sts:AssumeRole": 1}


def test_a_counting_error_is_counted_and_never_breaks_the_request():
    counter = UsageCounter()
    environ = _environ("dynamodb", b"not json", HTTP_X_AMZ_TARGET="DynamoDB_20120810.PutItem")
    statuses, body = _call(UsageMiddleware(FakeApp(body=b"ok"), counter), environ)
    assert (statuses, body) == (["200 OK"], b"ok")
    assert counter.snapshot()["calls"] == {"unknown:error": 1}


# --- one real round trip through moto --------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_behind_middleware():
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    counter = UsageCounter()
    app = UsageMiddleware(DomainDispatcherApplication(create_backend_app), counter)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", counter
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _client(service: str, endpoint: str):
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.mark.integration
def test_a_real_run_through_moto_is_counted_like_aws_bills_it(moto_behind_middleware):
    endpoint, counter = moto_behind_middleware
    name = f"usage-{uuid.uuid4().hex[:8]}"
    dynamodb, sqs, s3 = (_client(s, endpoint) for s in ("dynamodb", "sqs", "s3"))
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    s3.create_bucket(Bucket=name)
    counter.reset()

    big = {"pk": {"S": "big"}, "v": {"S": "x" * 2500}}  # 2 + 3 + 1 + 2500 bytes: 3 WRU, 1 RRU
    dynamodb.put_item(TableName=name, Item=big)
    dynamodb.put_item(TableName=name, Item={"pk": {"S": "small"}})
    dynamodb.batch_get_item(
        RequestItems={name: {"Keys": [{"pk": {"S": "big"}}, {"pk": {"S": "small"}}, {"pk": {"S": "none"}}]}}
    )
    sqs.send_message_batch(
        QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": "m" * 100} for i in range(10)]
    )
    s3.put_object(Bucket=name, Key="tenants/a/raw/x.json", Body=b"z" * 1234)
    s3.get_object(Bucket=name, Key="tenants/a/raw/x.json")["Body"].read()

    snap = counter.snapshot()
    assert snap["calls"] == {
        "dynamodb:BatchGetItem": 1,
        "dynamodb:PutItem": 2,
        "s3:GET": 1,
        "s3:PUT": 1,
        "sqs:SendMessageBatch": 1,
    }
    assert snap["dynamodb_wru"] == 3 + 1
    assert snap["dynamodb_rru"] == 0.5 * 3  # eventually consistent: three keys at the minimum
    assert (snap["sqs_requests"], snap["s3_put_requests"], snap["s3_get_requests"]) == (1, 1, 1)
    assert (snap["s3_bytes_in"], snap["s3_bytes_out"]) == (1234, 1234)
