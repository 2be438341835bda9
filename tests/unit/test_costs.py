"""Pricing a run's usage: the price table, the cost lines and the cost per meter-month,
checked against values computed by hand."""

from pathlib import Path

import pytest
import yaml

from hemera_local.costs import PriceTable, Scenario, cost_lines, format_table, per_meter_month, total_usd
from hemera_local.usage import UsageCounter

PRICES_FILE = Path(__file__).resolve().parents[2] / "bench" / "prices.yaml"
GIB = 1024**3


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load(PRICES_FILE)


def _usage(**overrides) -> dict:
    usage = UsageCounter().snapshot()
    usage.update(
        iot_messages=2000,
        iot_rules_triggered=2000,
        iot_rule_actions=2000,
        sqs_requests=3000,
        lambda_invocations=200,
        lambda_gb_seconds=100.0,
        dynamodb_wru=100_000,
        dynamodb_rru=20_000,
        s3_put_requests=2000,
        s3_get_requests=1000,
        eventbridge_events=50_000,
        s3_stored_bytes=1 * GIB,
        dynamodb_stored_bytes=2 * GIB,
    )
    usage.update(overrides)
    return usage


SCENARIO = Scenario(meters=1000, rtus=10, days_covered=1, interval_minutes=15)


def test_the_price_file_has_every_price_with_its_source(prices):
    raw = yaml.safe_load(PRICES_FILE.read_text())
    assert (raw["region"], str(raw["retrieved"])) == ("us-east-1", "2026-11-22")
    for key, entry in raw["prices"].items():
        assert entry["url"].startswith("https://aws.amazon.com/"), key
        assert entry["checked"], key
        assert entry.get("confirmed_by") or entry.get("note"), key


@pytest.mark.parametrize(
    ("key", "per_million"),
    [
        ("iot_messaging", 1.00),
        ("iot_connectivity", 0.08),
        ("iot_rules_triggered", 0.15),
        ("iot_rule_actions", 0.15),
        ("sqs_requests", 0.40),
        ("lambda_requests", 0.20),
        ("dynamodb_wru", 0.625),
        ("dynamodb_rru", 0.125),
        ("s3_put_requests", 5.00),  # $0.005 per 1,000
        ("s3_get_requests", 0.40),  # $0.0004 per 1,000
        ("eventbridge_events", 1.00),
    ],
)
def test_the_reference_prices_per_million(prices, key, per_million):
    assert prices[key].unit_price_usd * 1_000_000 == pytest.approx(per_million)


def test_each_line_is_quantity_times_list_price(prices):
    lines = {line.name: line for line in cost_lines(_usage(), prices, SCENARIO)}
    assert lines["DynamoDB write request units"].cost_usd == pytest.approx(0.0625)  # 0.1 M x $0.625
    assert lines["EventBridge custom events"].cost_usd == pytest.approx(0.05)
    assert lines["S3 PUT/COPY/POST/LIST requests"].cost_usd == pytest.approx(0.01)  # 2 x $0.005
    assert lines["Lambda duration (GB-s)"].cost_usd == pytest.approx(100 * 0.0000166667)
    assert lines["S3 Standard storage added per month, first month"].cost_usd == pytest.approx(0.023)
    assert lines["DynamoDB storage added per month, first month"].cost_usd == pytest.approx(0.50)


def test_connectivity_is_modelled_from_rtus_connected_all_day(prices):
    (line,) = [li for li in cost_lines(_usage(), prices, SCENARIO) if "connectivity" in li.name]
    assert "MODELLED" in line.name and line.measured is False
    assert line.quantity == 10 * 1440  # 10 RTUs x 1,440 minutes
    assert line.cost_usd == pytest.approx(0.001152)


def test_the_run_total_and_cost_per_meter_month_match_the_hand_computation(prices):
    lines = cost_lines(_usage(), prices, SCENARIO)
    # 0.002 + 0.0003 + 0.0003 + 0.001152 + 0.0012 + 0.00004 + 0.00166667 + 0.0625 + 0.0025
    # + 0.01 + 0.0004 + 0.05 + 0.023 + 0.5
    assert total_usd(lines) == pytest.approx(0.65505867)
    # x 30.4375 days / 1 day / 1,000 meters
    assert per_meter_month(lines, SCENARIO) == pytest.approx(0.0199383483)


def test_a_run_covering_two_days_is_half_a_month_as_much(prices):
    two_days = Scenario(meters=1000, rtus=10, days_covered=2)
    one = per_meter_month(cost_lines(_usage(), prices, SCENARIO), SCENARIO)
    # Same usage over two days of data (connectivity doubles with the days it is modelled for).
    lines = cost_lines(_usage(), prices, two_days)
    assert per_meter_month(lines, two_days) == pytest.approx((0.65505867 + 0.001152) * 30.4375 / 2 / 1000)
    assert per_meter_month(lines, two_days) < one


def test_unmeasured_storage_is_labelled_and_s3_falls_back_to_bytes_put(prices):
    usage = _usage(s3_stored_bytes=None, dynamodb_stored_bytes=None, s3_bytes_in=GIB // 2)
    lines = {line.name: line for line in cost_lines(usage, prices, SCENARIO)}
    assert lines["S3 Standard storage added per month, first month (bytes PUT)"].cost_usd == pytest.approx(
        0.0115
    )
    assert lines["DynamoDB storage added per month, first month (NOT MEASURED)"].cost_usd == 0


def test_the_table_prints_every_line_and_the_cost_per_meter_month(prices):
    lines = cost_lines(_usage(), prices, SCENARIO)
    table = format_table(lines, SCENARIO)
    assert all(line.name in table for line in lines)
    assert "cost per meter-month: $0.019938" in table
    assert "* modelled, not measured" in table
