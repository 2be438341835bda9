"""The alarm transition event: what the alarms capability announces on the platform bus
(detail-type `definitions.ALARM_CHANGED`) and what notifications deliver to a tenant's SNS topic
and webhooks. One transition = one delivery per channel (the id makes retries idempotent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TRANSITION_SCHEMA = "hemera.alarm-transition/1"


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """An alarm moved from `previous_state` (None when it was raised) to `state`
    (open | acknowledged | closed). `subject` is "meter" or "rtu"; times are tz-aware UTC."""

    transition_id: str
    tenant_id: str
    alarm_id: str
    alarm_type: str
    severity: str
    subject: str
    subject_id: str
    state: str
    previous_state: str | None
    at: datetime
    first_seen: datetime
    last_seen: datetime
    count: int
    facts: dict[str, Any] = field(default_factory=dict)

    def detail(self) -> dict[str, Any]:
        """The EventBridge detail (and the webhook body): JSON-ready, tenant named."""
        return {
            "schema": TRANSITION_SCHEMA,
            "transition_id": self.transition_id,
            "tenant": self.tenant_id,
            "alarm": {
                "id": self.alarm_id,
                "type": self.alarm_type,
                "severity": self.severity,
                "subject": {"kind": self.subject, "id": self.subject_id},
                "state": self.state,
                "previous_state": self.previous_state,
                "first_seen": self.first_seen.isoformat(),
                "last_seen": self.last_seen.isoformat(),
                "count": self.count,
                "facts": self.facts,
            },
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> AlarmTransition:
        alarm = detail["alarm"]
        return cls(
            transition_id=detail["transition_id"],
            tenant_id=detail["tenant"],
            alarm_id=alarm["id"],
            alarm_type=alarm["type"],
            severity=alarm["severity"],
            subject=alarm["subject"]["kind"],
            subject_id=alarm["subject"]["id"],
            state=alarm["state"],
            previous_state=alarm["previous_state"],
            at=datetime.fromisoformat(detail["at"]),
            first_seen=datetime.fromisoformat(alarm["first_seen"]),
            last_seen=datetime.fromisoformat(alarm["last_seen"]),
            count=int(alarm["count"]),
            facts=dict(alarm.get("facts", {})),
        )
