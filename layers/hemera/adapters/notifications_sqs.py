"""The deliveries queue (SQS): one message per (notification, channel), retries sent with a delay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hemera.domain.notifications import MAX_DELAY_S, Delivery

_BATCH_LIMIT = 10  # SendMessageBatch takes ten entries


class SqsDeliveryQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs, self._url = sqs, queue_url

    def send(self, deliveries: Sequence[Delivery], delay_s: int = 0) -> None:
        delay = max(0, min(MAX_DELAY_S, delay_s))
        for start in range(0, len(deliveries), _BATCH_LIMIT):
            chunk = deliveries[start : start + _BATCH_LIMIT]
            answer = self._sqs.send_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "MessageBody": d.to_message(), "DelaySeconds": delay}
                    for i, d in enumerate(chunk)
                ],
            )
            if answer.get("Failed"):
                # The caller fails its record; SQS hands it out again and the fan-out is repeated
                # (deliveries already made are then skipped by the ledger).
                raise RuntimeError(f"SQS refused {len(answer['Failed'])} delivery message(s)")
