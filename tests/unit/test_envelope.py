"""Envelope parsing: every defect is a MalformedEnvelope naming the problem; nothing else escapes."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hemera.domain.envelope import FrameKind, ModbusFrame, Protocol, build_envelope, parse_envelope
from hemera.domain.errors import MalformedEnvelope


def _envelope() -> dict:
    frame = ModbusFrame(
        kind=FrameKind.LOAD_PROFILE, unit_id=1, function=3, address=210, count=2, data="00010002"
    )
    env = build_envelope(
        tenant="acme",
        device="rtu-1",
        meter="m-1",
        model="hx300",
        protocol=Protocol.MODBUS,
        seq=7,
        collected_at=datetime(2026, 11, 20, tzinfo=UTC),
        frames=[frame],
    )
    return json.loads(env.to_json())


def test_a_valid_envelope_round_trips():
    doc = _envelope()
    env = parse_envelope(json.dumps(doc).encode())
    assert (env.tenant, env.device, env.meter, env.seq) == ("acme", "rtu-1", "m-1", 7)
    assert env.frames[0].registers() == [1, 2]


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.pop("seq"), "seq"),
        (lambda d: d.update(schema="hemera.envelope/9"), "schema"),
        (lambda d: d.update(tenant="ACME"), "tenant"),
        (lambda d: d.update(collected_at="2026-11-20T00:00:00"), "collected_at"),
        (lambda d: d.update(frames=[]), "frames"),
        (lambda d: d["frames"][0].update(data="zz"), "frames.0.data"),
        (lambda d: d["frames"][0].update(count=126), "frames.0.count"),
        (lambda d: d.update(extra="x"), "extra"),
    ],
)
def test_each_defect_is_named(mutate, where):
    doc = _envelope()
    mutate(doc)
    with pytest.raises(MalformedEnvelope, match=where.replace(".", r"\.")):
        parse_envelope(doc)


def test_a_frame_whose_data_disagrees_with_its_count_is_refused_when_decoded():
    doc = _envelope()
    doc["frames"][0]["count"] = 3
    env = parse_envelope(doc)
    with pytest.raises(ValueError, match="declares 3 registers"):
        env.frames[0].registers()


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_malformed_envelope(payload):
    with pytest.raises(MalformedEnvelope):
        parse_envelope(payload)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=8), c),
        max_leaves=20,
    )
)
def test_arbitrary_json_raises_only_malformed_envelope(document):
    with pytest.raises(MalformedEnvelope):
        parse_envelope(json.dumps(document))


def test_deeply_nested_json_is_malformed_not_a_crash():
    with pytest.raises(MalformedEnvelope, match="nested too deeply"):
        parse_envelope(b"[" * 50_000)
