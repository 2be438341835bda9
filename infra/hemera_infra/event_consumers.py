"""A function fed by events of the platform bus: EventBridge rule(s) → SQS (with DLQ) → function.

Every capability that reacts to platform events (curate, VEE, alarms, notifications, billing) is
built this way, so each reads its events in batches with partial failures, as translate reads
device messages, and keeps what it could not handle in one dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from hemera.definitions import QUEUE_CONSUMERS, EventRuleDef, QueueConsumer
from hemera_infra.function_catalog import FunctionCatalog
from hemera_infra.queues import queue_with_dead_letters


@dataclass(frozen=True)
class EventConsumer:
    queue: sqs.Queue
    dead_letter_queue: sqs.IQueue
    rules: tuple[events.Rule, ...]
    function: lambda_.Function


def event_consumer(
    scope: Construct,
    *,
    consumer: QueueConsumer,
    rules: Sequence[EventRuleDef],
    bus: events.IEventBus,
    functions: FunctionCatalog,
) -> EventConsumer:
    """The queue of `consumer` with its DLQ, one EventBridge rule per definition in `rules` (all
    of them must target that queue), and the consumer's function reading the queue in batches."""
    if any(rule.queue != consumer.queue for rule in rules):
        raise ValueError(f"every rule must target {consumer.queue.local_name}")
    # EventBridge delivers to it with SSE-SQS, no KMS key policy needed.
    queue = queue_with_dead_letters(
        scope, consumer.queue, f"the {consumer.function.name} queue and its rules"
    )
    dlq = queue.dead_letter_queue
    assert dlq is not None  # built with one
    built = tuple(
        # An event EventBridge cannot deliver (queue policy, outage past the retry window) lands
        # in the same DLQ as the function's failures, so one place holds everything not handled.
        events.Rule(
            scope,
            f"{rule.name}Rule",
            event_bus=bus,
            event_pattern=events.EventPattern(source=[rule.source], detail_type=[rule.detail_type]),
            targets=[targets.SqsQueue(queue, dead_letter_queue=dlq.queue)],
            description=f"Hemera {rule.name}: {rule.detail_type} from {rule.source} to the {consumer.function.name} queue",
        )
        for rule in rules
    )
    function = functions.function(consumer.function)
    definition = consumer.queue
    function.add_event_source(
        event_sources.SqsEventSource(
            queue,
            batch_size=definition.batch_size,
            max_batching_window=Duration.seconds(definition.batch_window_s),
            report_batch_item_failures=True,
            max_concurrency=consumer.max_concurrency,
        )
    )
    return EventConsumer(queue, dlq.queue, built, function)


class EventFedConstruct(Construct):
    """A capability whose function reads platform events from a queue of its own (curate, VEE,
    alarms, billing exports): the rules, queue, DLQ and function built by `event_consumer`, kept
    as `queue`, `dead_letter_queue`, `rules` (and `rule`, the first) and `function`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rules: Sequence[EventRuleDef],
        bus: events.IEventBus,
        functions: FunctionCatalog,
    ) -> None:
        super().__init__(scope, construct_id)
        (consumer,) = {c for c in QUEUE_CONSUMERS if c.queue == rules[0].queue}
        fed = event_consumer(self, consumer=consumer, rules=rules, bus=bus, functions=functions)
        self.queue = fed.queue
        self.dead_letter_queue = fed.dead_letter_queue
        self.rules = fed.rules
        self.function = fed.function

    @property
    def rule(self) -> events.Rule:
        return self.rules[0]


def grant_put_platform_event(role: iam.IRole, bus: events.IEventBus, source: str, detail_type: str) -> None:
    """Let `role` put exactly one kind of event on the platform bus (`events:source` and
    `events:detail-type` conditions): the portal announces an acknowledgement, an edit, an export
    request, and nothing it could pass off as another capability's event."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["events:PutEvents"],
            resources=[bus.event_bus_arn],
            conditions={"StringEquals": {"events:source": source, "events:detail-type": detail_type}},
        )
    )
