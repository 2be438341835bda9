"""An SQS queue with its dead-letter queue, as every queue of the platform is built."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from hemera.definitions import QueueDef
from hemera_infra.constants import DLQ_RETENTION
from hemera_infra.nag import acknowledge


def queue_with_dead_letters(scope: Construct, definition: QueueDef, dead_letter_role: str) -> sqs.Queue:
    """The queue `definition` names and its DLQ (`<construct id>Dlq`), both SSE-SQS encrypted and
    SSL-only; SSE-SQS needs no KMS grants for the IoT rule role, EventBridge or the function.
    `dead_letter_role` says whose dead letters it keeps (the SQS3 acknowledgement's reason)."""
    dead_letters = sqs.Queue(
        scope,
        f"{definition.construct_id}Dlq",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DLQ_RETENTION,
    )
    acknowledge(dead_letters, "AwsSolutions-SQS3", f"This is the dead-letter queue of {dead_letter_role}.")
    return sqs.Queue(
        scope,
        definition.construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=Duration.seconds(definition.visibility_timeout_s),
        dead_letter_queue=sqs.DeadLetterQueue(
            queue=dead_letters, max_receive_count=definition.max_receive_count
        ),
    )
