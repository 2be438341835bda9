"""DLMS envelopes through the translate function on moto: a registered hd500 meter's profile."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from hemera.definitions import TRANSLATE_FUNCTION
from hemera.domain.envelope import FrameKind
from hemera.domain.readings import Channel
from hemera.domain.tenancy import TenantContext
from hemera.services.onboarding import register_tenant
from hemera.tenants import load_tenant_file
from hemera.wiring import ingest_ports
from hemera_local.bridge import LambdaContext, load_handler
from tests.builders import archived_envelopes, as_sqs_record
from tests.dlms_builders import hd500_envelope

TENANT, DEVICE, METER = "dlms-demo", "rtu-dl-01", "dl-m-1"
TOPIC = f"hemera/{TENANT}/{DEVICE}/up/telemetry"
DAY = datetime(2026, 11, 20, 3, tzinfo=UTC)
FIRST_CAPTURE = DAY + timedelta(minutes=15)  # the meter's clock closes the interval
WH = [2000 + i for i in range(96)]
TENANT_YAML = f"""
id: {TENANT}
name: DLMS demo
country: BR
timezone: America/Sao_Paulo
customers: [{{id: fabrica, name: Fabrica, load_class: industry}}]
rtus: [{{id: {DEVICE}}}]
meters:
  - {{id: {METER}, model: hd500, protocol: dlms, rtu: {DEVICE}, customer: fabrica, peak_kw: 400}}
"""


@pytest.fixture
def dlms_cloud(moto_cloud, tmp_path: Path):
    path = tmp_path / f"{TENANT}.yaml"
    path.write_text(TENANT_YAML)
    register_tenant(ingest_ports(moto_cloud).registry, load_tenant_file(path))
    return moto_cloud


def invoke(*records: dict) -> dict:
    return load_handler(TRANSLATE_FUNCTION)({"Records": list(records)}, LambdaContext("translate"))


def stored(settings, channel=Channel.ACTIVE_IMPORT):
    return ingest_ports(settings).store.load_profile(
        TenantContext(TENANT), METER, channel, DAY, DAY + timedelta(days=1)
    )


def test_a_day_of_dlms_intervals_is_stored_at_their_start_with_exact_values(dlms_cloud):
    # Given an hd500 envelope with 96 rows captured 03:15 ... 03:00 next day (UTC)
    envelope = hd500_envelope(TENANT, DEVICE, METER, FIRST_CAPTURE, WH)
    # When the translate function handles it
    response = invoke(as_sqs_record("m1", envelope.to_json(), TOPIC))
    # Then all 96 intervals are stored, starting at the day's first interval, in kWh
    assert response == {"batchItemFailures": []}
    intervals = stored(dlms_cloud)
    assert len(intervals) == 96
    assert intervals[0].start == DAY
    assert [r.value for r in intervals] == [Decimal(wh) / 1000 for wh in WH]
    # And the reactive channel (wh // 4 varh in the builder) too, in kvarh
    reactive = stored(dlms_cloud, Channel.REACTIVE_IMPORT)
    assert sum(r.value for r in reactive) == Decimal(sum(wh // 4 for wh in WH)) / 1000


def test_redelivery_of_a_dlms_envelope_has_no_further_effect(dlms_cloud):
    body = hd500_envelope(TENANT, DEVICE, METER, FIRST_CAPTURE, WH).to_json()
    invoke(as_sqs_record("m1", body, TOPIC))
    invoke(as_sqs_record("m1", body, TOPIC), as_sqs_record("m2", body, TOPIC))
    assert sum(r.value for r in stored(dlms_cloud)) == Decimal(sum(WH)) / 1000


def _quarantined(settings):
    return list(ingest_ports(settings).quarantine.list(TENANT))


def test_an_undecodable_dlms_buffer_is_quarantined_as_malformed_frame(dlms_cloud):
    doc = json.loads(hd500_envelope(TENANT, DEVICE, METER, FIRST_CAPTURE, WH[:4]).to_json())
    doc["frames"][0]["data"] = doc["frames"][0]["data"][:-6]  # cut inside the last row
    response = invoke(as_sqs_record("bad", json.dumps(doc).encode(), TOPIC))
    assert response == {"batchItemFailures": []}
    (record,) = _quarantined(dlms_cloud)
    assert record.reason == "malformed_frame" and "truncated" in record.detail
    assert stored(dlms_cloud) == []


def test_register_frames_are_archived_raw_not_quarantined(dlms_cloud):
    # Given an envelope of a register read (its canonical store comes with a later capability)
    doc = json.loads(hd500_envelope(TENANT, DEVICE, METER, FIRST_CAPTURE, WH[:1], seq=77).to_json())
    doc["frames"][0].update(
        kind=FrameKind.REGISTERS, obis="1.0.1.8.0.255", class_id=3, data="1500000000000004d2"
    )
    body = json.dumps(doc).encode()
    # When it is delivered
    response = invoke(as_sqs_record("reg", body, TOPIC))
    # Then it is accepted, kept byte for byte in the tenant's raw archive, and nothing is quarantined
    assert response == {"batchItemFailures": []}
    assert _quarantined(dlms_cloud) == []
    (archived,) = archived_envelopes(dlms_cloud.aws, dlms_cloud.raw_bucket, TENANT)
    assert (archived.seq, archived.payload) == (77, body)
    assert stored(dlms_cloud) == []


def test_a_dlms_envelope_for_a_modbus_meter_is_refused_by_model(dlms_cloud):
    # sul-m-1001 is a registered hx300 (Modbus) meter: the envelope's model must match it
    body = hd500_envelope("sul-energia", "rtu-poa-01", "sul-m-1001", FIRST_CAPTURE, WH[:4]).to_json()
    invoke(as_sqs_record("x", body, "hemera/sul-energia/rtu-poa-01/up/telemetry"))
    records = list(ingest_ports(dlms_cloud).quarantine.list("sul-energia"))
    assert [r.reason for r in records] == ["unknown_meter_model"]
