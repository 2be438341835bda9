"""Notifications: alarm transitions (and billing exports) to each tenant's SNS topic and webhooks.

AlarmChanged / ExportWritten on the platform bus → EventBridge rules → SQS (with DLQ) → notify
function (fan-out: one message per tenant channel) → deliveries queue (with DLQ) → deliver
function (one attempt per message, parallel within a batch; a failed attempt goes back to the
queue with DelaySeconds; dead letters in the readings table).

The tenants' topics and webhook signing secrets are made by `hemera tenant apply`, not by this
stack, so the deliver function's grants name them by pattern: sns:Publish on
`hemera-tenant-*-notifications` topics only, secretsmanager:GetSecretValue on
`hemera/tenants/*/webhook-signing` secrets only.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from hemera.definitions import (
    DELIVER_FUNCTION,
    NOTIFY_DELIVERIES_QUEUE,
    NOTIFY_EVENT_RULES,
    NOTIFY_EVENTS_QUEUE,
    QUEUE_CONSUMERS,
    READINGS_TABLE,
    EventRuleDef,
)
from hemera.domain.notifications import TENANT_TOPIC_TEMPLATE, WEBHOOK_SECRET_TEMPLATE
from hemera.services.notifications import TOPIC_ARN_PREFIX_ENV_VAR
from hemera_infra.constants import DELIVER_TABLE_ACTIONS, NOTIFY_TABLE_ACTIONS
from hemera_infra.event_consumers import event_consumer
from hemera_infra.function_catalog import FunctionCatalog
from hemera_infra.nag import acknowledge
from hemera_infra.queues import queue_with_dead_letters
from hemera_infra.storage import Storage

TOPICS_REASON = (
    "Each tenant's SNS topic is created by `hemera tenant apply` (tenants come and go without a "
    "deploy); the statement allows sns:Publish only on topics named hemera-tenant-<tenant>-notifications."
)
SECRETS_REASON = (
    "Each tenant's webhook signing secret is created by `hemera tenant apply`; the statement allows "
    "GetSecretValue only on secrets named hemera/tenants/<tenant>/webhook-signing (plus the random "
    "suffix Secrets Manager appends)."
)


class Notifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        functions: FunctionCatalog,
        rules: Sequence[EventRuleDef] = NOTIFY_EVENT_RULES,
    ) -> None:
        super().__init__(scope, construct_id)
        (notify,) = (c for c in QUEUE_CONSUMERS if c.queue == NOTIFY_EVENTS_QUEUE)
        (deliver,) = (c for c in QUEUE_CONSUMERS if c.queue == NOTIFY_DELIVERIES_QUEUE)
        fed = event_consumer(self, consumer=notify, rules=rules, bus=storage.event_bus, functions=functions)
        self.events_queue, self.events_dead_letter_queue = fed.queue, fed.dead_letter_queue
        self.rules, self.notify_function = fed.rules, fed.function
        self.deliveries_queue, self.deliveries_dead_letter_queue = self._build_deliveries_queue()
        self.deliver_function = functions.function(deliver.function)
        self.deliver_function.add_event_source(
            event_sources.SqsEventSource(
                self.deliveries_queue,
                batch_size=NOTIFY_DELIVERIES_QUEUE.batch_size,
                max_batching_window=Duration.seconds(NOTIFY_DELIVERIES_QUEUE.batch_window_s),
                report_batch_item_failures=True,
                max_concurrency=deliver.max_concurrency,
            )
        )
        self.topics_arn = self._topics_arn()
        self.secrets_arn = self._secrets_arn()
        for function in (self.notify_function, self.deliver_function):
            self._add_environment(function)
        self._grant_notify(storage)
        self._grant_deliver(storage)

    def _build_deliveries_queue(self) -> tuple[sqs.Queue, sqs.IQueue]:
        queue = queue_with_dead_letters(
            self, NOTIFY_DELIVERIES_QUEUE, f"the {DELIVER_FUNCTION.name} function"
        )
        assert queue.dead_letter_queue is not None  # built with one
        return queue, queue.dead_letter_queue.queue

    def _topics_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="sns",
            resource=TENANT_TOPIC_TEMPLATE.format(tenant="*"),
            arn_format=ArnFormat.NO_RESOURCE_NAME,
        )

    def _secrets_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=WEBHOOK_SECRET_TEMPLATE.format(tenant="*") + "-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _add_environment(self, function: lambda_.Function) -> None:
        function.add_environment(NOTIFY_DELIVERIES_QUEUE.env_var, self.deliveries_queue.queue_url)
        # The deliver function builds each tenant's topic ARN from it: no ListTopics call.
        function.add_environment(
            TOPIC_ARN_PREFIX_ENV_VAR, f"arn:{Aws.PARTITION}:sns:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
        )

    def _grant_notify(self, storage: Storage) -> None:
        storage.table(READINGS_TABLE).grant(self.notify_function, *NOTIFY_TABLE_ACTIONS)
        self.deliveries_queue.grant_send_messages(self.notify_function)

    def _grant_deliver(self, storage: Storage) -> None:
        function = self.deliver_function
        storage.table(READINGS_TABLE).grant(function, *DELIVER_TABLE_ACTIONS)
        # A failed attempt is re-sent to the queue with its backoff delay.
        self.deliveries_queue.grant_send_messages(function)
        function.add_to_role_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topics_arn]))
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[self.secrets_arn])
        )
        role = function.role or function
        stack = Stack.of(self)
        for arn, reason in ((self.topics_arn, TOPICS_REASON), (self.secrets_arn, SECRETS_REASON)):
            acknowledge(role, f"AwsSolutions-IAM5[Resource::{_nag_arn(stack, arn)}]", reason)


def _nag_arn(stack: Stack, arn: str) -> str:
    """An ARN as cdk-nag writes it in a finding id: pseudo parameters as `<AWS::Region>`."""
    resolved = stack.resolve(arn)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)
