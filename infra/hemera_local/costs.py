"""Pricing a run's usage at AWS list prices, and the cost per meter-month it implies.

Every line is the usage of the run (`UsageCounter.snapshot()`) times a list price from
`bench/prices.yaml`, except one that is modelled, not measured: IoT Core connectivity, which the
local broker cannot meter. It is each RTU's persistent connection for every minute of the days
the run covers, so it scales into a month exactly like the measured lines.

`per_meter_month` extrapolates linearly: a run covering `days_covered` days of data is
`30.4375 / days_covered` of an average month (365.25 / 12 days). Free tiers are ignored: they are
per account, not per meter. Storage lines price the bytes a run adds as "storage added per
month, first month": a month's worth of added data, held for one month at the GB-month rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DAYS_PER_MONTH = 30.4375  # 365.25 / 12
MINUTES_PER_DAY = 24 * 60
BYTES_PER_GB = 1024**3  # AWS bills storage in binary gigabytes


@dataclass(frozen=True)
class Price:
    """One list price: `price_usd` for every `per` units of `unit`."""

    key: str
    unit: str
    price_usd: float
    per: int
    url: str
    note: str = ""

    @property
    def unit_price_usd(self) -> float:
        return self.price_usd / self.per


@dataclass(frozen=True)
class PriceTable:
    region: str
    retrieved: str
    prices: Mapping[str, Price]

    @classmethod
    def load(cls, path: Path | str) -> PriceTable:
        """Read `bench/prices.yaml`; every entry needs unit, price_usd, per and url."""
        data: dict[str, Any] = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        prices = {
            key: Price(
                key=key,
                unit=str(entry["unit"]),
                price_usd=float(entry["price_usd"]),
                per=int(entry["per"]),
                url=str(entry["url"]),
                note=str(entry.get("note", "")),
            )
            for key, entry in data["prices"].items()
        }
        return cls(region=str(data["region"]), retrieved=str(data["retrieved"]), prices=prices)

    def __getitem__(self, key: str) -> Price:
        return self.prices[key]


@dataclass(frozen=True)
class Scenario:
    """What the run stood for: its fleet and how many days of data it delivered."""

    meters: int
    rtus: int
    days_covered: float = 1.0
    interval_minutes: int = 15


@dataclass(frozen=True)
class CostLine:
    name: str
    quantity: float
    unit: str
    unit_price_usd: float  # per single `unit`
    cost_usd: float
    measured: bool = True


def _line(name: str, quantity: float, price: Price, measured: bool = True) -> CostLine:
    return CostLine(
        name, quantity, price.unit, price.unit_price_usd, quantity * price.unit_price_usd, measured
    )


def _stored(usage: Mapping[str, Any], measured_key: str, fallback_key: str) -> float:
    """Bytes stored: measured at the end of the run if it was, else the bytes written."""
    value = usage.get(measured_key)
    return float(usage.get(fallback_key, 0) if value is None else value)


def cost_lines(usage: Mapping[str, Any], prices: PriceTable, scenario: Scenario) -> list[CostLine]:
    """One line per billable dimension of the run (costs for the run, not yet per month)."""
    connected_minutes = scenario.rtus * MINUTES_PER_DAY * scenario.days_covered
    s3_gb = _stored(usage, "s3_stored_bytes", "s3_bytes_in") / BYTES_PER_GB
    # Items are overwritten by merges, so bytes written say nothing of bytes stored: 0 unless measured.
    dynamodb_gb = float(usage.get("dynamodb_stored_bytes") or 0) / BYTES_PER_GB
    s3_basis = "" if usage.get("s3_stored_bytes") is not None else " (bytes PUT)"
    dynamodb_basis = "" if usage.get("dynamodb_stored_bytes") is not None else " (NOT MEASURED)"
    return [
        _line("IoT Core messaging (5 KB units)", usage["iot_messages"], prices["iot_messaging"]),
        _line("IoT Core rules triggered", usage["iot_rules_triggered"], prices["iot_rules_triggered"]),
        _line("IoT Core rule actions", usage["iot_rule_actions"], prices["iot_rule_actions"]),
        _line(
            "IoT Core connectivity (MODELLED: RTUs always connected)",
            connected_minutes,
            prices["iot_connectivity"],
            measured=False,
        ),
        _line("SQS requests (64 KB chunks)", usage["sqs_requests"], prices["sqs_requests"]),
        _line("Lambda requests", usage["lambda_invocations"], prices["lambda_requests"]),
        _line("Lambda duration (GB-s)", usage["lambda_gb_seconds"], prices["lambda_gb_seconds"]),
        _line("DynamoDB write request units", usage["dynamodb_wru"], prices["dynamodb_wru"]),
        _line("DynamoDB read request units", usage["dynamodb_rru"], prices["dynamodb_rru"]),
        _line("S3 PUT/COPY/POST/LIST requests", usage["s3_put_requests"], prices["s3_put_requests"]),
        _line("S3 GET/HEAD requests", usage["s3_get_requests"], prices["s3_get_requests"]),
        _line("EventBridge custom events", usage["eventbridge_events"], prices["eventbridge_events"]),
        _line(f"S3 Standard storage added per month, first month{s3_basis}", s3_gb, prices["s3_storage"]),
        _line(
            f"DynamoDB storage added per month, first month{dynamodb_basis}",
            dynamodb_gb,
            prices["dynamodb_storage"],
        ),
    ]


def total_usd(lines: Sequence[CostLine]) -> float:
    return sum(line.cost_usd for line in lines)


def per_meter_month(lines: Sequence[CostLine], scenario: Scenario) -> float:
    """The run's total scaled to an average month and divided by the meters it served."""
    return total_usd(lines) * (DAYS_PER_MONTH / scenario.days_covered) / scenario.meters


def format_table(lines: Sequence[CostLine], scenario: Scenario) -> str:
    """A plain-text table of the lines, the run total and the cost per meter-month."""
    rows = [f"{'line':<64} {'quantity':>16} {'unit':<28} {'USD/unit':>12} {'USD':>12}"]
    for line in lines:
        flag = "" if line.measured else " *"
        rows.append(
            f"{line.name + flag:<64} {line.quantity:>16,.4f} {line.unit:<28} "
            f"{line.unit_price_usd:>12.4e} {line.cost_usd:>12.6f}"
        )
    monthly = total_usd(lines) * DAYS_PER_MONTH / scenario.days_covered
    rows += [
        f"{'total for the run':<64} {'':>16} {'':<28} {'':>12} {total_usd(lines):>12.6f}",
        f"{'scaled to a month':<64} {'':>16} {'':<28} {'':>12} {monthly:>12.6f}",
        (
            f"cost per meter-month: ${per_meter_month(lines, scenario):.6f} "
            f"({scenario.meters} meters, {scenario.rtus} RTUs, {scenario.days_covered:g} day(s) of "
            f"{scenario.interval_minutes}-minute data)"
        ),
        "* modelled, not measured",
    ]
    return "\n".join(rows)
