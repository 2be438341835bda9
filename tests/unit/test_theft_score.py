"""Theft/tamper suspicion score: tamper-type alarms and a consumption drop add up (capped at 100),
each listed as a fact with its points and evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hemera.domain.alarms import (
    AlarmKey,
    AlarmState,
    AlarmThresholds,
    AlarmType,
    Observation,
    apply_observation,
    theft_score,
)
from hemera.domain.alarms.theft import consumption_drop
from hemera.domain.meter_events import Subject

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TODAY = NOW.date()


def alarm(alarm_type: AlarmType, *, closed: bool = False):
    key = AlarmKey(Subject.METER, "sul-m-1001", alarm_type)
    raised = apply_observation("sul-energia", None, Observation(key, NOW - timedelta(days=2), True))
    assert raised.alarm is not None
    if closed:
        return replace(raised.alarm, state=AlarmState.CLOSED, closed_at=NOW - timedelta(days=1))
    return raised.alarm


def history(recent_kwh: str, earlier_kwh: str = "1000") -> dict[date, Decimal]:
    return {TODAY - timedelta(days=d): Decimal(recent_kwh if d <= 7 else earlier_kwh) for d in range(1, 36)}


def test_a_clean_meter_scores_zero_without_facts():
    score = theft_score("sul-m-1001", [], history("1000"), NOW, AlarmThresholds())
    assert (score.score, score.level, score.facts) == (0, "low", ())


def test_an_open_cover_alarm_counts_in_full_and_a_closed_one_half():
    opened = theft_score("sul-m-1001", [alarm(AlarmType.COVER_OPEN)], {}, NOW, AlarmThresholds())
    closed = theft_score("sul-m-1001", [alarm(AlarmType.COVER_OPEN, closed=True)], {}, NOW, AlarmThresholds())

    assert opened.score == 30 and opened.level == "medium"
    assert closed.score == 15
    (fact,) = opened.facts
    assert fact.kind == "cover_open" and fact.evidence["state"] == "open"


def test_non_tamper_alarms_do_not_count():
    score = theft_score("sul-m-1001", [alarm(AlarmType.OUTAGE)], {}, NOW, AlarmThresholds())
    assert score.score == 0


def test_a_consumption_drop_over_the_threshold_adds_points_with_its_evidence():
    # 1000 kWh a day for four weeks, 400 the last week: a 60 % drop → 18 of 30 points.
    score = theft_score("sul-m-1001", [], history("400"), NOW, AlarmThresholds())

    (fact,) = score.facts
    assert fact.kind == "consumption_drop" and fact.points == 18
    assert fact.evidence["drop_pct"] == "60.0"
    assert fact.evidence["history_daily_kwh"] == "1000.000"


def test_a_small_drop_or_too_little_history_adds_nothing():
    assert theft_score("sul-m-1001", [], history("800"), NOW, AlarmThresholds()).facts == ()
    assert consumption_drop({TODAY - timedelta(days=1): Decimal(1)}, TODAY) is None


def test_indicators_add_up_and_the_score_is_capped_at_100():
    alarms = [
        alarm(AlarmType.COVER_OPEN),
        alarm(AlarmType.MAGNETIC_TAMPER),
        alarm(AlarmType.REVERSE_ENERGY),
        alarm(AlarmType.CURRENT_WITHOUT_ENERGY),
    ]
    score = theft_score("sul-m-1001", alarms, history("100"), NOW, AlarmThresholds())

    assert score.score == 100 and score.level == "high"
    assert {f.kind for f in score.facts} == {
        "cover_open",
        "magnetic_tamper",
        "reverse_energy",
        "current_without_energy",
        "consumption_drop",
    }
    assert sum(f.points for f in score.facts) > 100
