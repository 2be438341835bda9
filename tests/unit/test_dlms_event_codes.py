"""DLMS event codes: the IDIS power-quality codes (phase lost / restored, with the phase), a model's
own codes over the IDIS defaults (the HD-500's reverse energy), and codes that stay skipped.
Event-log bytes come from `tests/event_builders.py` (written byte by byte)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hemera.domain import events_decode
from hemera.domain.dlms.model import DlmsMeterModel, EventCode, load_dlms_model
from hemera.domain.events_decode import IDIS_EVENT_CODES, decode_meter_events, event_codes
from hemera.domain.meter_events import EventType
from tests.event_builders import FRAUD_LOG, STANDARD_LOG, event_log_buffer, hd500_events_envelope

POWER_QUALITY_LOG = "0.0.99.98.4.255"
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
COLLECTED = datetime(2026, 11, 20, 15, 0, 30, tzinfo=UTC)


def decoded(logs: dict[str, bytes]) -> list[tuple[EventType, datetime, int | None, dict]]:
    envelope = hd500_events_envelope("acme", "rtu-1", "m-1", logs, COLLECTED)
    return [(e.type, e.at, e.code, e.detail) for e in decode_meter_events(envelope)]


@pytest.mark.parametrize(
    ("code", "kind", "phase"),
    [
        (82, EventType.PHASE_LOSS, 1),
        (83, EventType.PHASE_LOSS, 2),
        (84, EventType.PHASE_LOSS, 3),
        (85, EventType.PHASE_RESTORED, 1),
        (86, EventType.PHASE_RESTORED, 2),
        (87, EventType.PHASE_RESTORED, 3),
    ],
)
def test_idis_missing_voltage_and_voltage_normal_are_phase_loss_and_restored_with_the_phase(
    code, kind, phase
):
    # Given the hd500's power quality log with one entry; when decoded
    events = decoded({POWER_QUALITY_LOG: event_log_buffer([(T0, code)])})
    # Then it is the canonical event of that phase, from that log
    assert events == [(kind, T0, code, {"log": "power_quality", "phase": phase})]


def test_a_phase_lost_and_restored_decode_in_time_order():
    back = T0 + timedelta(hours=1)
    events = decoded({POWER_QUALITY_LOG: event_log_buffer([(T0, 83), (back, 86)])})
    assert [(kind, at, detail["phase"]) for kind, at, _, detail in events] == [
        (EventType.PHASE_LOSS, T0, 2),
        (EventType.PHASE_RESTORED, back, 2),
    ]


def test_the_hd500s_own_codes_are_reverse_energy_started_and_ended():
    # Given the fraud log with the HD-500's manufacturer codes 231/232 (IDIS has no such code)
    end = T0 + timedelta(minutes=50)
    events = decoded({FRAUD_LOG: event_log_buffer([(T0, 231), (end, 232)])})
    assert events == [
        (EventType.REVERSE_ENERGY, T0, 231, {"log": "fraud"}),
        (EventType.REVERSE_ENERGY_CLEARED, end, 232, {"log": "fraud"}),
    ]


@pytest.mark.parametrize("code", [76, 77, 78, 79, 80, 81, 88, 89, 200, 230, 255])
def test_codes_without_a_canonical_type_are_skipped_not_refused(code):
    # under/over voltage (76-81), phase sequence (88), missing neutral (89), unknown (200, 230),
    # log cleared (255): valid entries the platform stores nothing for
    events = decoded(
        {POWER_QUALITY_LOG: event_log_buffer([(T0, code)]), STANDARD_LOG: event_log_buffer([(T0, 1)])}
    )
    assert [kind for kind, *_ in events] == [EventType.POWER_DOWN]


def test_a_model_code_wins_over_the_idis_default(monkeypatch):
    # Given a model whose maker uses 82 for something of no canonical type and 40 for a magnetic
    # field (overriding IDIS) and adds 240 for a phase lost on L3
    own = {
        82: EventCode(type=None),
        40: EventCode(type=EventType.MAGNETIC_TAMPER),
        240: EventCode(type=EventType.PHASE_LOSS, phase=3),
    }
    model = load_dlms_model("hd500").model_copy(update={"event_codes": own})
    monkeypatch.setattr(events_decode, "load_dlms_model", lambda _name: model)
    # When its logs are decoded
    events = decoded(
        {
            POWER_QUALITY_LOG: event_log_buffer([(T0, 82), (T0 + timedelta(minutes=1), 240)]),
            FRAUD_LOG: event_log_buffer([(T0 + timedelta(minutes=2), 40)]),
        }
    )
    # Then the model's meaning is the one used; IDIS codes it does not restate keep theirs
    assert events == [
        (EventType.PHASE_LOSS, T0 + timedelta(minutes=1), 240, {"log": "power_quality", "phase": 3}),
        (EventType.MAGNETIC_TAMPER, T0 + timedelta(minutes=2), 40, {"log": "fraud"}),
    ]
    table = event_codes(model)
    assert table[85] == EventCode(type=EventType.PHASE_RESTORED, phase=1)
    assert 231 not in table  # reverse energy is the HD-500's, not IDIS's


@given(code=st.integers(min_value=0, max_value=255))
def test_every_code_decodes_to_what_the_hd500_table_says(code):
    # Given any one-byte code in the fraud log of an hd500
    meaning = event_codes(load_dlms_model("hd500")).get(code)
    events = decoded({FRAUD_LOG: event_log_buffer([(T0, code)])})
    # Then an event exactly when the table gives the code a canonical type, with the code's facts
    if meaning is None or meaning.type is None:
        assert events == []
    else:
        assert events == [(meaning.type, T0, code, {"log": "fraud", **meaning.detail()})]


def test_the_hd500_file_reads_the_power_quality_log_and_states_its_reverse_energy_codes():
    model = load_dlms_model("hd500")
    assert (model.events["power_quality"].obis, model.events["power_quality"].class_id) == (
        POWER_QUALITY_LOG,
        7,
    )
    assert {code: spec.type for code, spec in model.event_codes.items()} == {
        231: EventType.REVERSE_ENERGY,
        232: EventType.REVERSE_ENERGY_CLEARED,
    }
    assert set(model.event_codes).isdisjoint(IDIS_EVENT_CODES)


@pytest.mark.parametrize(
    "entry",
    [
        {70000: {"type": "reverse_energy"}},  # beyond a long-unsigned code
        {231: {"type": "reverse_flow"}},  # not a canonical event type
        {83: {"type": "phase_loss", "phase": 4}},  # three phases
        {231: {"type": "reverse_energy", "polarity": "-"}},  # unknown fact
    ],
)
def test_a_model_file_with_a_bad_event_code_is_refused(entry):
    document = load_dlms_model("hd500").model_dump(mode="json")
    document["event_codes"] = entry
    with pytest.raises(ValidationError):
        DlmsMeterModel.model_validate(document)
