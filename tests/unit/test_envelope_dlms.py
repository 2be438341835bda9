"""DLMS frames in the envelope: additive to schema 1, the protocol and the frames must agree."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hemera.domain.envelope import DlmsFrame, ModbusFrame, parse_envelope
from hemera.domain.errors import MalformedEnvelope
from tests.builders import hx300_envelope
from tests.dlms_builders import hd500_envelope

CAPTURE = datetime(2026, 11, 20, 0, 15, tzinfo=UTC)


def _dlms_doc() -> dict:
    return json.loads(hd500_envelope("acme", "rtu-1", "m-1", CAPTURE, [1000, 1001]).to_json())


def test_a_dlms_envelope_round_trips_with_its_range():
    # Given a DLMS envelope whose frame records the range it was read with
    doc = _dlms_doc()
    doc["frames"][0]["selector"] = {"from": "2026-11-20T00:15:00Z", "to": "2026-11-20T00:30:00Z"}
    # When parsed
    env = parse_envelope(json.dumps(doc))
    frame = env.frames[0]
    # Then it is a DlmsFrame naming the object read, with the raw bytes and the range
    assert isinstance(frame, DlmsFrame)
    assert (frame.obis, frame.class_id, frame.attribute) == ("1.0.99.1.0.255", 7, 2)
    assert frame.raw()[:2] == bytes.fromhex("0102")  # array of 2 rows
    assert frame.selector is not None and frame.selector.to == datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    # And it serialises back with "from", the wire name
    assert json.loads(env.to_json())["frames"][0]["selector"]["from"].startswith("2026-11-20T00:15")


def test_modbus_envelopes_still_validate_unchanged():
    env = hx300_envelope("acme", "rtu-1", "m-1", datetime(2026, 11, 20, tzinfo=UTC), [1, 2, 3])
    parsed = parse_envelope(env.to_json())
    assert isinstance(parsed.frames[0], ModbusFrame) and parsed == env


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["frames"][0].update(obis="1.0.99.1.0"), "frames.0.obis"),
        (lambda d: d["frames"][0].update(obis="1.0.99.1.0.256"), "frames.0.obis"),
        (lambda d: d["frames"][0].update(class_id=0), "frames.0.class_id"),
        (lambda d: d["frames"][0].update(data=""), "frames.0.data"),
        (lambda d: d["frames"][0].update(data="0g"), "frames.0.data"),
        (lambda d: d["frames"][0].update(unit_id=1), "frames.0.unit_id"),  # extra="forbid"
        (
            lambda d: d["frames"][0].update(
                selector={"from": "2026-11-20T01:00:00Z", "to": "2026-11-20T00:00:00Z"}
            ),
            "frames.0.selector",
        ),
        (
            lambda d: d["frames"][0].update(
                selector={"from": "2026-11-20T00:00:00", "to": "2026-11-20T01:00:00Z"}
            ),
            "frames.0.selector.from",
        ),
        (lambda d: d.update(protocol="modbus"), "a modbus envelope carries modbus frames only"),
    ],
)
def test_defects_name_where_they_are(mutate, where):
    doc = _dlms_doc()
    mutate(doc)
    with pytest.raises(MalformedEnvelope, match=where.replace(".", r"\.")):
        parse_envelope(doc)


def test_a_dlms_envelope_cannot_carry_modbus_frames():
    doc = json.loads(hx300_envelope("acme", "rtu-1", "m-1", CAPTURE, [1]).to_json())
    doc["protocol"] = "dlms"
    with pytest.raises(MalformedEnvelope, match="dlms envelope carries dlms frames only"):
        parse_envelope(doc)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["kind", "obis", "class_id", "attribute", "selector", "data", "unit_id"]),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=20),
            st.dictionaries(st.text(max_size=5), st.text(max_size=25), max_size=2),
        ),
    )
)
def test_arbitrary_dlms_frames_raise_only_malformed_envelope(frame):
    doc = _dlms_doc()
    doc["frames"] = [frame]
    with contextlib.suppress(MalformedEnvelope):
        parse_envelope(doc)
