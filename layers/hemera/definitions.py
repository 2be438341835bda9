"""Names and shapes of every cloud resource, declared once.

The CDK app (`infra/`) and the local cloud (`hemera local up`) both build their tables, buckets,
queues, topic rules and schedules from these definitions, so the two cannot drift. Physical names
in AWS are chosen by CloudFormation and reach functions through the environment variable each
definition names; the local cloud uses `local_name`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TableDef:
    construct_id: str
    env_var: str
    local_name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True, slots=True)
class BucketDef:
    construct_id: str
    env_var: str
    local_name: str


@dataclass(frozen=True, slots=True)
class EventBusDef:
    construct_id: str
    env_var: str
    local_name: str
    source: str  # the `source` of the events the platform puts on it


@dataclass(frozen=True, slots=True)
class QueueDef:
    construct_id: str
    env_var: str
    local_name: str
    dlq_local_name: str
    # After this many failed receives SQS moves the message to the DLQ (redrive policy).
    max_receive_count: int = 3
    visibility_timeout_s: int = 120
    # Event source mapping: how many messages one invocation receives, and how long SQS may wait
    # to fill a batch.
    batch_size: int = 10
    batch_window_s: int = 1


@dataclass(frozen=True, slots=True)
class FunctionDef:
    """A Lambda function: its code folder under `functions/` and the module:attribute handler."""

    name: str
    code_dir: str
    handler: str
    memory_mb: int = 512
    timeout_s: int = 60

    @property
    def module_file(self) -> str:
        """The handler's file, relative to `functions/` (Lambda's code root is `code_dir`)."""
        return f"{self.code_dir}/{self.handler.rsplit('.', 1)[0]}.py"

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True, slots=True)
class TopicRule:
    """An IoT Core topic rule that forwards device messages to an SQS queue.

    The rule wraps every message as `{"payload": <base64 of the device's bytes>, "mqtt_topic":
    <topic>}`: base64 so that even a payload that is not JSON reaches the handler (and its
    tenant's quarantine) intact, and the topic because it is the device's authenticated identity
    (the IoT policy/ACL only lets a device publish under its own `hemera/<tenant>/<device>/`), so
    the handler trusts the topic, not the payload, for tenancy.
    """

    name: str
    topic_filter: str
    queue: QueueDef
    function: FunctionDef
    payload_attribute: str = "payload"
    topic_attribute: str = "mqtt_topic"

    @property
    def sql(self) -> str:
        return (
            f"SELECT encode(*, 'base64') AS {self.payload_attribute}, topic() AS {self.topic_attribute} "
            f"FROM '{self.topic_filter}'"
        )


@dataclass(frozen=True, slots=True)
class ScheduleDef:
    """A periodic job: an EventBridge rule in AWS, the local scheduler in the local cloud."""

    name: str
    rate_minutes: int
    function: FunctionDef
    payload: dict[str, str] = field(default_factory=dict)

    @property
    def expression(self) -> str:
        unit = "minute" if self.rate_minutes == 1 else "minutes"
        return f"rate({self.rate_minutes} {unit})"


# --- storage ---------------------------------------------------------------------------------
READINGS_TABLE = TableDef(
    construct_id="Readings",
    env_var="HEMERA_READINGS_TABLE",
    local_name="hemera-readings",
    partition_key="pk",
    sort_key="sk",
)
API_KEYS_TABLE = TableDef(
    construct_id="ApiKeys",
    env_var="HEMERA_API_KEYS_TABLE",
    local_name="hemera-api-keys",
    partition_key="pk",
)
TABLES = (READINGS_TABLE, API_KEYS_TABLE)

RAW_BUCKET = BucketDef("RawArchive", "HEMERA_RAW_BUCKET", "hemera-raw")
QUARANTINE_BUCKET = BucketDef("Quarantine", "HEMERA_QUARANTINE_BUCKET", "hemera-quarantine")
EXPORTS_BUCKET = BucketDef("Exports", "HEMERA_EXPORTS_BUCKET", "hemera-exports")
BUCKETS = (RAW_BUCKET, QUARANTINE_BUCKET, EXPORTS_BUCKET)

# Platform events (a meter-day's data changed, …) for VEE, billing and alarms to react to.
EVENT_BUS = EventBusDef("Events", "HEMERA_EVENT_BUS", "hemera-events", source="hemera.ingest")
SERIES_CHANGED = "MeterDayChanged"  # detail-type of the event announcing a new data version

# --- ingest ----------------------------------------------------------------------------------
TELEMETRY_QUEUE = QueueDef(
    construct_id="Telemetry",
    env_var="HEMERA_TELEMETRY_QUEUE_URL",
    local_name="hemera-telemetry",
    dlq_local_name="hemera-telemetry-dlq",
)
QUEUES = (TELEMETRY_QUEUE,)

TRANSLATE_FUNCTION = FunctionDef(name="translate", code_dir="translate", handler="handler.lambda_handler")
FUNCTIONS = (TRANSLATE_FUNCTION,)

TELEMETRY_RULE = TopicRule(
    name="hemera_telemetry",
    topic_filter="hemera/+/+/up/telemetry",
    queue=TELEMETRY_QUEUE,
    function=TRANSLATE_FUNCTION,
)
TOPIC_RULES = (TELEMETRY_RULE,)

# Periodic jobs arrive with later capabilities (VEE sweep, billing exports); the mechanism and its
# local scheduler exist now so those only add a definition here.
SCHEDULES: tuple[ScheduleDef, ...] = ()

# --- portal API --------------------------------------------------------------------------------
PORTAL_API_DIR = "portal_api"
PORTAL_API_NAME = "hemera-portal-api"

# Environment variables every function receives: tables and buckets by their definitions.
RESOURCE_ENV_VARS = (*(d.env_var for d in (*TABLES, *BUCKETS)), EVENT_BUS.env_var)
