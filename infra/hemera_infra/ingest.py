"""Device telemetry ingest: IoT Core topic rule -> SQS (with DLQ) -> translate function.

One queue, DLQ, topic rule and event source per `TopicRule` definition, plus the IoT policy every
device certificate carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from hemera.definitions import QUEUE_CONSUMERS, TOPIC_RULES, QueueDef, TopicRule
from hemera.domain.policies import device_policy
from hemera_infra.constants import (
    INGEST_READ_WRITE_TABLES,
    INGEST_WRITE_BUCKETS,
    IOT_SQL_VERSION,
    LOG_RETENTION,
)
from hemera_infra.function_catalog import FunctionCatalog
from hemera_infra.nag import OBJECT_KEYS_REASON, acknowledge, arn_wildcard_finding
from hemera_infra.queues import queue_with_dead_letters
from hemera_infra.storage import Storage


def _max_concurrency(queue: QueueDef) -> int:
    """The event source mapping's maximum concurrency, as declared for the queue's consumer."""
    return next(c.max_concurrency for c in QUEUE_CONSUMERS if c.queue == queue)


class Ingest(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        functions: FunctionCatalog,
        rules: Sequence[TopicRule] = TOPIC_RULES,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule_errors = self._build_rule_error_log()
        # Several rules may feed one queue; one queue has one consumer function.
        consumers = {rule.queue: rule.function for rule in rules}
        # Queues first: every function learns every queue URL, whichever rule it serves.
        self.queues = {queue.construct_id: self._build_queue(queue) for queue in consumers}
        functions.add_environment({queue.env_var: self.queue(queue).queue_url for queue in consumers})
        self.topic_rules = {rule.name: self._build_topic_rule(rule) for rule in rules}
        for queue, function_def in consumers.items():
            function = functions.function(function_def)
            self._build_event_source(queue, function)
            self._grant_ingest_access(function, storage)
        self.device_policy = self._build_device_policy()

    def queue(self, definition: QueueDef) -> sqs.Queue:
        return self.queues[definition.construct_id]

    def _build_queue(self, definition: QueueDef) -> sqs.Queue:
        return queue_with_dead_letters(self, definition, "an ingest queue")

    def _build_rule_error_log(self) -> logs.LogGroup:
        # A message the rule cannot deliver (throttling, SQS outage) is logged, never silently lost.
        return logs.LogGroup(self, "RuleErrors", retention=LOG_RETENTION)

    def _build_topic_rule(self, rule: TopicRule) -> iot.CfnTopicRule:
        queue = self.queue(rule.queue)
        role = iam.Role(self, f"{rule.name}RuleRole", assumed_by=iam.ServicePrincipal("iot.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[queue.queue_arn]))
        self.rule_errors.grant_write(role)
        return iot.CfnTopicRule(
            self,
            f"{rule.name}Rule",
            rule_name=rule.name,
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                sql=rule.sql,
                aws_iot_sql_version=IOT_SQL_VERSION,
                rule_disabled=False,
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        sqs=iot.CfnTopicRule.SqsActionProperty(
                            queue_url=queue.queue_url, role_arn=role.role_arn, use_base64=False
                        )
                    )
                ],
                error_action=iot.CfnTopicRule.ActionProperty(
                    cloudwatch_logs=iot.CfnTopicRule.CloudwatchLogsActionProperty(
                        log_group_name=self.rule_errors.log_group_name, role_arn=role.role_arn
                    )
                ),
            ),
        )

    def _build_event_source(self, definition: QueueDef, function: lambda_.Function) -> None:
        # Partial batch responses: one poison message must not send its nine neighbours back.
        function.add_event_source(
            event_sources.SqsEventSource(
                self.queue(definition),
                batch_size=definition.batch_size,
                max_batching_window=Duration.seconds(definition.batch_window_s),
                max_concurrency=_max_concurrency(definition),
                report_batch_item_failures=True,
            )
        )

    def _grant_ingest_access(self, function: lambda_.Function, storage: Storage) -> None:
        for table in INGEST_READ_WRITE_TABLES:
            storage.table(table).grant_read_write_data(function)
        storage.event_bus.grant_put_events_to(function)
        for definition in INGEST_WRITE_BUCKETS:
            # PutObject only: the archive and the quarantine are append-only for the pipeline.
            bucket = storage.bucket(definition)
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["s3:PutObject"], resources=[bucket.arn_for_objects("*")])
            )
            acknowledge(
                function.role or function,
                arn_wildcard_finding(bucket, "/*"),
                OBJECT_KEYS_REASON,
            )

    def _build_device_policy(self) -> iot.CfnPolicy:
        return iot.CfnPolicy(self, "DevicePolicy", policy_document=self._device_policy_document())

    def _device_policy_document(self) -> dict[str, Any]:
        """A device connects only as its own thing and talks only under its own topic prefix; the
        document comes from the same generator as each tenant's policy (`hemera tenant apply`)."""
        stack = Stack.of(self)

        def iot_arn(resource: str, name: str) -> str:
            return stack.format_arn(
                service="iot", resource=resource, resource_name=name, arn_format=ArnFormat.SLASH_RESOURCE_NAME
            )

        return device_policy(iot_arn)
