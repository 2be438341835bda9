"""The tenant's SNS topic: its e-mail (and other) subscribers receive every notification."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hemera.domain.errors import DeliveryFailed
from hemera.domain.notifications import Notification


class SnsTopicPublisher:
    """Publishes to `<arn prefix><topic name>`: topic names follow `tenant_topic_name`, so no lookup
    (ListTopics) is needed; `arn_prefix` is `arn:<partition>:sns:<region>:<account>:`."""

    def __init__(self, sns: Any, arn_prefix: str) -> None:
        self._sns, self._prefix = sns, arn_prefix

    def publish(self, topic_name: str, notification: Notification) -> str:
        try:
            answer = self._sns.publish(
                TopicArn=self._prefix + topic_name,
                Subject=notification.subject,
                Message=notification.body.decode(),
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in notification.attributes.items()
                    if value
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise DeliveryFailed(f"SNS publish to {topic_name}: {error}") from error
        return str(answer["MessageId"])
