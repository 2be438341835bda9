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
    # Items carrying this attribute (epoch seconds) are deleted by DynamoDB after that time.
    ttl_attribute: str | None = None


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
class QueueConsumer:
    """A Lambda event source mapping: a function fed with batches from a queue."""

    queue: QueueDef
    function: FunctionDef
    # Lambda runs at most this many batches of the queue at a time (the mapping's maximum
    # concurrency, 2-1000); the local cloud runs up to `LOCAL_POLLERS` of them.
    max_concurrency: int = 2


@dataclass(frozen=True, slots=True)
class EventRuleDef:
    """An EventBridge rule on the platform bus that forwards matching events to an SQS queue.

    The queue (with its DLQ) buffers the events so that the consuming function reads them in
    batches, as it does device messages; the body of each SQS message is the whole EventBridge
    event (`detail-type`, `source`, `detail`, ...).
    """

    name: str
    source: str
    detail_type: str
    queue: QueueDef

    @property
    def pattern(self) -> dict[str, list[str]]:
        return {"source": [self.source], "detail-type": [self.detail_type]}


@dataclass(frozen=True, slots=True)
class GlueColumn:
    name: str
    type: str  # the Glue/Hive type name, as Athena reads it


@dataclass(frozen=True, slots=True)
class CuratedDatasetDef:
    """A curated dataset in S3: Parquet objects under Hive-style partitions, and the Glue table
    (partition projection, no crawler) plus the "latest version" view Athena reads them through.

    Partition values live in the object keys only (`tenant=<t>/date=<YYYY-MM-DD>/`), never as
    columns inside the files, as Hive partitioning expects.
    """

    database: str
    table: str
    latest_view: str
    prefix: str  # object key prefix in the bucket, ending in '/'
    columns: tuple[GlueColumn, ...]
    partition_keys: tuple[GlueColumn, ...]
    # Rows that describe the same thing in several versions: the view keeps the newest of each.
    row_identity: tuple[str, ...]
    # Which of a row's versions is the newest: sorted by these columns, descending.
    newest_first: tuple[str, ...]
    # The first day partition projection enumerates (`projection.date.range` is this,NOW).
    first_day: str = "2020-01-01"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def latest_select(self, source: str) -> str:
        """The newest version of every row of `source` (a table, or any relation with the
        table's columns and partition keys): what a reader of the dataset should query."""
        names = ", ".join(f'"{c.name}"' for c in (*self.partition_keys, *self.columns))
        # The partition keys join the window's PARTITION BY (they follow from the row identity:
        # the date is the UTC day of the interval) so that an engine can push a tenant/date
        # filter on the view down to the partitions it reads.
        window = ", ".join(
            f'"{n}"' for n in dict.fromkeys((*(k.name for k in self.partition_keys), *self.row_identity))
        )
        newest = ", ".join(f'"{n}" DESC' for n in self.newest_first)
        return (
            f"SELECT {names} FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY {window} ORDER BY {newest}) AS version_rank "
            f"FROM {source}) AS ranked WHERE version_rank = 1"
        )

    @property
    def create_latest_view_sql(self) -> str:
        """Athena DDL of the view (run once per account; the CDK app saves it as a named query)."""
        table = f'"{self.database}"."{self.table}"'
        return f'CREATE OR REPLACE VIEW "{self.database}"."{self.latest_view}" AS {self.latest_select(table)}'


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
    ttl_attribute="expires_at",  # the envelope ledger's entries; series items never carry it
)
API_KEYS_TABLE = TableDef(
    construct_id="ApiKeys",
    env_var="HEMERA_API_KEYS_TABLE",
    local_name="hemera-api-keys",
    partition_key="pk",
)
TABLES = (READINGS_TABLE, API_KEYS_TABLE)

# The portal's Cognito user pool: its groups are the JWT callers' roles, its custom attributes
# the tenant and customer a user belongs to (CDK and the local cloud build it from these).
USER_POOL_NAME = "hemera-portal-users"
USER_POOL_CLIENT_NAME = "hemera-portal"
USER_POOL_GROUPS = ("admin", "operator", "customer")
USER_POOL_CUSTOM_ATTRIBUTES = ("tenant", "customer")
USER_POOL_ID_ENV_VAR = "HEMERA_USER_POOL_ID"
USER_POOL_CLIENT_ID_ENV_VAR = "HEMERA_USER_POOL_CLIENT_ID"

RAW_BUCKET = BucketDef("RawArchive", "HEMERA_RAW_BUCKET", "hemera-raw")
QUARANTINE_BUCKET = BucketDef("Quarantine", "HEMERA_QUARANTINE_BUCKET", "hemera-quarantine")
EXPORTS_BUCKET = BucketDef("Exports", "HEMERA_EXPORTS_BUCKET", "hemera-exports")
CURATED_BUCKET = BucketDef("Curated", "HEMERA_CURATED_BUCKET", "hemera-curated")
BUCKETS = (RAW_BUCKET, QUARANTINE_BUCKET, EXPORTS_BUCKET, CURATED_BUCKET)

# Platform events (a meter-day's data changed, …) for VEE, billing and alarms to react to.
EVENT_BUS = EventBusDef("Events", "HEMERA_EVENT_BUS", "hemera-events", source="hemera.ingest")
# detail-type of the events announcing new data versions: each lists the meter-days of one tenant
# that changed, with their versions (see `hemera.adapters.eventbridge.change_detail`).
SERIES_CHANGED = "MeterDaysChanged"
# The other platform events (their `source` is the capability that puts them on the bus):
# final (VEE'd) days stored, with their versions — alarms and billing (restatements) listen.
SERIES_VALIDATED = "FinalDaysChanged"
VEE_SOURCE = "hemera.vee"
# the re-read sweep gave up on a gap after its attempts — alarms (communication failure) listen.
READS_EXHAUSTED = "MeterReadsExhausted"
# device events recorded by translate (power down/up, tamper, …) — alarms listen.
METER_EVENTS_RECORDED = "MeterEventsRecorded"
EVENTS_SOURCE = "hemera.events"
# an alarm changed state (`hemera.domain.alarm_transition.AlarmTransition.detail`) — notifications.
ALARM_CHANGED = "AlarmChanged"
ALARMS_SOURCE = "hemera.alarms"
# a billing export (or a restatement of one) was written — notifications, the tenant's systems.
EXPORT_WRITTEN = "ExportWritten"
BILLING_SOURCE = "hemera.billing"

# --- ingest ----------------------------------------------------------------------------------
TELEMETRY_QUEUE = QueueDef(
    construct_id="Telemetry",
    env_var="HEMERA_TELEMETRY_QUEUE_URL",
    local_name="hemera-telemetry",
    dlq_local_name="hemera-telemetry-dlq",
    # translate works per batch (one read per 100 meter-days, one archive object per tenant-hour,
    # PutEvents by ten): larger batches mean fewer calls. ~6 KB an envelope keeps 100 far below
    # Lambda's 6 MB event limit.
    batch_size=100,
    batch_window_s=1,
)
# --- analytics ---------------------------------------------------------------------------------
# Changed meter-days, curated to Parquet in batches. An event lists up to 200 meter-days, so 20
# events are up to 4,000 days (384,000 rows at 15 minutes) for one invocation, within the curate
# function's memory; the window lets a batch fill up (fewer, larger objects for Athena). Visibility
# is six times the function timeout plus the window, as Lambda's SQS event source asks.
CURATE_QUEUE = QueueDef(
    construct_id="Curate",
    env_var="HEMERA_CURATE_QUEUE_URL",
    local_name="hemera-curate",
    dlq_local_name="hemera-curate-dlq",
    visibility_timeout_s=6 * 60 + 10,
    batch_size=20,
    batch_window_s=10,
)
# --- commands ------------------------------------------------------------------------------------
# RTU acks of meter commands (`hemera.cmd-ack/1`): few and small; one batch closes up to ten.
COMMAND_ACK_QUEUE = QueueDef(
    construct_id="CommandAcks",
    env_var="HEMERA_COMMAND_ACK_QUEUE_URL",
    local_name="hemera-command-acks",
    dlq_local_name="hemera-command-acks-dlq",
    visibility_timeout_s=6 * 30,
    batch_size=10,
    batch_window_s=1,
)

TRANSLATE_FUNCTION = FunctionDef(name="translate", code_dir="translate", handler="handler.lambda_handler")
# pyarrow's Parquet writer wants memory (and memory brings CPU in Lambda).
CURATE_FUNCTION = FunctionDef(
    name="curate", code_dir="curate", handler="handler.lambda_handler", memory_mb=1024, timeout_s=60
)
COMMAND_ACK_FUNCTION = FunctionDef(
    name="command_ack", code_dir="command_ack", handler="handler.lambda_handler", memory_mb=256, timeout_s=30
)

TELEMETRY_RULE = TopicRule(
    name="hemera_telemetry",
    topic_filter="hemera/+/+/up/telemetry",
    queue=TELEMETRY_QUEUE,
    function=TRANSLATE_FUNCTION,
)
COMMAND_ACK_RULE = TopicRule(
    name="hemera_command_acks",
    topic_filter="hemera/+/+/up/cmd-ack",
    queue=COMMAND_ACK_QUEUE,
    function=COMMAND_ACK_FUNCTION,
)

TELEMETRY_CONSUMER = QueueConsumer(TELEMETRY_QUEUE, TRANSLATE_FUNCTION, max_concurrency=10)
CURATE_CONSUMER = QueueConsumer(CURATE_QUEUE, CURATE_FUNCTION)
COMMAND_ACK_CONSUMER = QueueConsumer(COMMAND_ACK_QUEUE, COMMAND_ACK_FUNCTION)

# Rules on the platform bus (EventBridge in AWS and on the local cloud's moto server alike).
CURATE_RULE = EventRuleDef(
    name="hemera_curate_changed_days",
    source=EVENT_BUS.source,
    detail_type=SERIES_CHANGED,
    queue=CURATE_QUEUE,
)

# Curated interval data: one row per interval and data version, in Parquet under
# s3://<curated>/curated/intervals/tenant=<t>/date=<UTC day>/<batch digest>.parquet.
CURATED_INTERVALS = CuratedDatasetDef(
    database="hemera_analytics",
    table="intervals",
    latest_view="intervals_latest",
    prefix="curated/intervals/",
    columns=(
        GlueColumn("meter_id", "string"),
        GlueColumn("channel", "string"),
        GlueColumn("interval_start", "timestamp"),  # UTC
        GlueColumn("interval_minutes", "int"),
        # Exact, like the store's decimal strings: sums over a month stay exact for billing.
        GlueColumn("value", "decimal(18,6)"),
        GlueColumn("unit", "string"),
        GlueColumn("quality", "string"),
        GlueColumn("source", "string"),
        GlueColumn("status", "string"),
        GlueColumn("raw_value", "bigint"),
        GlueColumn("meter_flags", "int"),
        GlueColumn("data_version", "bigint"),
        GlueColumn("curated_at", "timestamp"),  # UTC
    ),
    partition_keys=(GlueColumn("tenant", "string"), GlueColumn("date", "string")),
    row_identity=("tenant", "meter_id", "channel", "interval_start"),
    # Equal data versions hold equal values (a day curated twice at one version): any will do.
    newest_first=("data_version", "curated_at"),
)

# --- VEE (validation, estimation, editing) ------------------------------------------------------
# Changed meter-days (MeterDaysChanged) → the local days they overlap are validated/estimated.
# A batch of 10 events is up to 2,000 UTC days; the function has 10 minutes (the nightly sweep
# shares it), and SQS visibility is six times that plus the window, as Lambda asks.
VEE_QUEUE = QueueDef(
    construct_id="Vee",
    env_var="HEMERA_VEE_QUEUE_URL",
    local_name="hemera-vee",
    dlq_local_name="hemera-vee-dlq",
    visibility_timeout_s=6 * 600 + 5,
    batch_size=10,
    batch_window_s=5,
)
VEE_FUNCTION = FunctionDef(
    name="vee", code_dir="vee", handler="handler.lambda_handler", memory_mb=1024, timeout_s=600
)
VEE_CONSUMER = QueueConsumer(VEE_QUEUE, VEE_FUNCTION, max_concurrency=5)
VEE_RULE = EventRuleDef(
    name="hemera_vee_changed_days",
    source=EVENT_BUS.source,
    detail_type=SERIES_CHANGED,
    queue=VEE_QUEUE,
)
# Nightly: yesterday's local day of every meter is validated again (estimates for meters that
# sent nothing), bounded per run (`hemera.services.vee.SWEEP_MAX_DAYS`).
VEE_SWEEP_SCHEDULE = ScheduleDef(
    name="hemera_vee_sweep", rate_minutes=1440, function=VEE_FUNCTION, payload={"job": "vee_sweep"}
)
VEE_QUEUES: tuple[QueueDef, ...] = (VEE_QUEUE,)
VEE_FUNCTIONS: tuple[FunctionDef, ...] = (VEE_FUNCTION,)
VEE_CONSUMERS: tuple[QueueConsumer, ...] = (VEE_CONSUMER,)
VEE_EVENT_RULES: tuple[EventRuleDef, ...] = (VEE_RULE,)
VEE_SCHEDULES: tuple[ScheduleDef, ...] = (VEE_SWEEP_SCHEDULE,)

# --- meter events and outages ------------------------------------------------------------------
EVENTS_QUEUES: tuple[QueueDef, ...] = ()
EVENTS_FUNCTIONS: tuple[FunctionDef, ...] = ()
EVENTS_CONSUMERS: tuple[QueueConsumer, ...] = ()
# The RTUs' own events (`hemera.rtu-event/1`: buffer overflow, meter read failures, low signal,
# high temperature) join the telemetry queue and translate: they are few and small, translate
# already stores device events per tenant and batch (one PutEvents, one activity write per RTU)
# and holds the grants, so a second queue and function would add cost and a deployment for no
# isolation gained. Translate tells them apart by topic.
RTU_EVENTS_RULE = TopicRule(
    name="hemera_rtu_events",
    topic_filter="hemera/+/+/up/events",
    queue=TELEMETRY_QUEUE,
    function=TRANSLATE_FUNCTION,
)
EVENTS_TOPIC_RULES: tuple[TopicRule, ...] = (RTU_EVENTS_RULE,)
EVENTS_EVENT_RULES: tuple[EventRuleDef, ...] = ()
EVENTS_SCHEDULES: tuple[ScheduleDef, ...] = ()

# --- alarms ------------------------------------------------------------------------------------
# Everything the alarm rules evaluate, as platform events: device events, changed interval days
# (power factor, demand), final days (repeated VEE failures) and exhausted re-reads. Evaluation
# is light (a few reads per meter-day): batches of ten, visibility six function timeouts.
ALARM_QUEUE = QueueDef(
    construct_id="Alarms",
    env_var="HEMERA_ALARMS_QUEUE_URL",
    local_name="hemera-alarms",
    dlq_local_name="hemera-alarms-dlq",
    visibility_timeout_s=6 * 60 + 1,
    batch_size=10,
    batch_window_s=1,
)
ALARMS_FUNCTION = FunctionDef(
    name="alarms", code_dir="alarms", handler="handler.lambda_handler", memory_mb=512, timeout_s=60
)
ALARM_QUEUES: tuple[QueueDef, ...] = (ALARM_QUEUE,)
ALARM_FUNCTIONS: tuple[FunctionDef, ...] = (ALARMS_FUNCTION,)
# One batch at a time per queue poller pair: evaluations of one key rarely race, and when they
# do the conditional write makes the loser apply its observation again.
ALARM_CONSUMERS: tuple[QueueConsumer, ...] = (QueueConsumer(ALARM_QUEUE, ALARMS_FUNCTION),)
ALARM_TOPIC_RULES: tuple[TopicRule, ...] = ()
ALARM_EVENT_RULES: tuple[EventRuleDef, ...] = (
    EventRuleDef("hemera_alarms_meter_events", EVENTS_SOURCE, METER_EVENTS_RECORDED, ALARM_QUEUE),
    EventRuleDef("hemera_alarms_changed_days", EVENT_BUS.source, SERIES_CHANGED, ALARM_QUEUE),
    EventRuleDef("hemera_alarms_final_days", VEE_SOURCE, SERIES_VALIDATED, ALARM_QUEUE),
    EventRuleDef("hemera_alarms_reads_exhausted", VEE_SOURCE, READS_EXHAUSTED, ALARM_QUEUE),
)
# The sweep: communication failure (silence), the instantaneous rules (voltage band, unbalance,
# current without energy, energy without voltage) on the newest reading of each meter since the
# previous sweep, and the closing of quiet one-shot alarms.
ALARM_SWEEP_JOB = "alarm_sweep"
ALARM_SWEEP = ScheduleDef(
    name="hemera_alarm_sweep", rate_minutes=5, function=ALARMS_FUNCTION, payload={"job": ALARM_SWEEP_JOB}
)
ALARM_SCHEDULES: tuple[ScheduleDef, ...] = (ALARM_SWEEP,)

# --- notifications (alarm transitions to each tenant's SNS topic and webhooks) -----------------
# AlarmChanged / ExportWritten events → notify (fan-out: one message per tenant channel) →
# deliveries queue → deliver (one attempt per message; a failed one comes back with a delay).
NOTIFY_EVENTS_QUEUE = QueueDef(
    construct_id="NotifyEvents",
    env_var="HEMERA_NOTIFY_EVENTS_QUEUE_URL",
    local_name="hemera-notify-events",
    dlq_local_name="hemera-notify-events-dlq",
    visibility_timeout_s=6 * 30,
    batch_size=10,
    batch_window_s=1,
)
# Retries are new messages (DelaySeconds), not redeliveries: the redrive policy only catches
# messages whose handling itself failed (storage, queue), three times.
NOTIFY_DELIVERIES_QUEUE = QueueDef(
    construct_id="NotifyDeliveries",
    env_var="HEMERA_NOTIFY_DELIVERIES_QUEUE_URL",
    local_name="hemera-notify-deliveries",
    dlq_local_name="hemera-notify-deliveries-dlq",
    visibility_timeout_s=6 * 30,
    batch_size=10,
    batch_window_s=1,
)
NOTIFY_FUNCTION = FunctionDef(
    name="notify", code_dir="notify", handler="handler.lambda_handler", memory_mb=256, timeout_s=30
)
# The attempts of a batch run in parallel, each bounded by the webhook timeout (5 s).
DELIVER_FUNCTION = FunctionDef(
    name="deliver", code_dir="deliver", handler="handler.lambda_handler", memory_mb=256, timeout_s=30
)
NOTIFY_ALARM_RULE = EventRuleDef(
    name="hemera_notify_alarm_changed",
    source=ALARMS_SOURCE,
    detail_type=ALARM_CHANGED,
    queue=NOTIFY_EVENTS_QUEUE,
)
NOTIFY_EXPORT_RULE = EventRuleDef(
    name="hemera_notify_export_written",
    source=BILLING_SOURCE,
    detail_type=EXPORT_WRITTEN,
    queue=NOTIFY_EVENTS_QUEUE,
)
NOTIFY_QUEUES: tuple[QueueDef, ...] = (NOTIFY_EVENTS_QUEUE, NOTIFY_DELIVERIES_QUEUE)
NOTIFY_FUNCTIONS: tuple[FunctionDef, ...] = (NOTIFY_FUNCTION, DELIVER_FUNCTION)
NOTIFY_CONSUMERS: tuple[QueueConsumer, ...] = (
    QueueConsumer(NOTIFY_EVENTS_QUEUE, NOTIFY_FUNCTION),
    # Many tenants' deliveries at once; each batch's attempts run in parallel too.
    QueueConsumer(NOTIFY_DELIVERIES_QUEUE, DELIVER_FUNCTION, max_concurrency=10),
)
NOTIFY_EVENT_RULES: tuple[EventRuleDef, ...] = (NOTIFY_ALARM_RULE, NOTIFY_EXPORT_RULE)
NOTIFY_SCHEDULES: tuple[ScheduleDef, ...] = ()

# --- billing determinants and exports ----------------------------------------------------------
# One function runs the billing exports: the hourly "exports due" job (every tenant's schedules;
# idempotent, so the hour it runs in does not matter), the on-demand exports the portal accepted,
# the recording of changed final days inside exported periods, and the restatements job that
# renders them. Rendering a month of a tenant's meters wants time.
BILLING_EXPORTS_FUNCTION = FunctionDef(
    name="billing_exports",
    code_dir="billing_exports",
    handler="handler.lambda_handler",
    memory_mb=1024,
    timeout_s=300,
)
# An on-demand export the portal accepted (state `pending`): detail {"tenant", "export_id"}; or
# one part of a version rendered in parts (put by the billing function itself): detail
# {"tenant", "export_id", "version", "part"}.
EXPORT_REQUESTED = "ExportRequested"
# FinalDaysChanged events: each changed day inside an exported period is recorded as a pending
# restatement of that export (cheap writes; the restatements job renders). Visibility is six times
# the function timeout plus the window, as Lambda's SQS event source asks.
EXPORT_RESTATEMENTS_QUEUE = QueueDef(
    construct_id="ExportRestatements",
    env_var="HEMERA_EXPORT_RESTATEMENTS_QUEUE_URL",
    local_name="hemera-export-restatements",
    dlq_local_name="hemera-export-restatements-dlq",
    visibility_timeout_s=6 * 300 + 30,
    batch_size=50,
    batch_window_s=30,
)
EXPORT_RESTATEMENTS_RULE = EventRuleDef(
    name="hemera_billing_final_days_changed",
    source=VEE_SOURCE,
    detail_type=SERIES_VALIDATED,
    queue=EXPORT_RESTATEMENTS_QUEUE,
)
# On-demand exports and the parts of versions rendered in parts, one per invocation (each may take
# the function's whole timeout), without a batching window (the caller polls GET /v1/exports/{id}).
# After three failed receives the export is marked `failed` by the last attempt (the message then
# goes to the DLQ).
EXPORT_REQUESTS_QUEUE = QueueDef(
    construct_id="ExportRequests",
    env_var="HEMERA_EXPORT_REQUESTS_QUEUE_URL",
    local_name="hemera-export-requests",
    dlq_local_name="hemera-export-requests-dlq",
    visibility_timeout_s=6 * 300,
    batch_size=1,
    batch_window_s=0,
)
EXPORT_REQUESTS_RULE = EventRuleDef(
    name="hemera_billing_export_requested",
    source=BILLING_SOURCE,
    detail_type=EXPORT_REQUESTED,
    queue=EXPORT_REQUESTS_QUEUE,
)
EXPORTS_DUE_JOB = "exports_due"
EXPORTS_DUE_SCHEDULE = ScheduleDef(
    "hemera_exports_due", rate_minutes=60, function=BILLING_EXPORTS_FUNCTION, payload={"job": EXPORTS_DUE_JOB}
)
# Restatements are debounced: every 15 minutes each export with pending changes gets ONE new
# version with all of them (a late batch, its re-reads and an edit land in one version).
RESTATEMENTS_JOB = "restatements"
RESTATEMENTS_SCHEDULE = ScheduleDef(
    "hemera_restatements",
    rate_minutes=15,
    function=BILLING_EXPORTS_FUNCTION,
    payload={"job": RESTATEMENTS_JOB},
)
BILLING_QUEUES: tuple[QueueDef, ...] = (EXPORT_RESTATEMENTS_QUEUE, EXPORT_REQUESTS_QUEUE)
BILLING_FUNCTIONS: tuple[FunctionDef, ...] = (BILLING_EXPORTS_FUNCTION,)
# Restatement recordings are idempotent puts: two batches at most (the mapping's minimum). Requests
# and parts: up to ten renders at once, so a large version's parts run side by side (5,000 meters x
# 31 days is ~310 parts of ~30 s: ~16 minutes) while the function's account concurrency stays
# bounded; two deliveries of one request race on the index's conditional writes (one wins).
EXPORT_REQUESTS_CONCURRENCY = 10
BILLING_CONSUMERS: tuple[QueueConsumer, ...] = (
    QueueConsumer(EXPORT_RESTATEMENTS_QUEUE, BILLING_EXPORTS_FUNCTION, max_concurrency=2),
    QueueConsumer(
        EXPORT_REQUESTS_QUEUE, BILLING_EXPORTS_FUNCTION, max_concurrency=EXPORT_REQUESTS_CONCURRENCY
    ),
)
BILLING_EVENT_RULES: tuple[EventRuleDef, ...] = (EXPORT_RESTATEMENTS_RULE, EXPORT_REQUESTS_RULE)
BILLING_SCHEDULES: tuple[ScheduleDef, ...] = (EXPORTS_DUE_SCHEDULE, RESTATEMENTS_SCHEDULE)

# --- commands housekeeping: automatic re-reads of missing data, expiry of unanswered commands -----
COMMAND_SWEEPS_FUNCTION = FunctionDef(
    name="command_sweeps", code_dir="command_sweeps", handler="handler.lambda_handler", timeout_s=300
)
REREADS_JOB = "rereads"
EXPIRE_COMMANDS_JOB = "expire_commands"
COMMAND_SCHEDULES: tuple[ScheduleDef, ...] = (
    # Hourly: a gap is re-read within the hour it is found; `RereadPolicy` bounds each run.
    ScheduleDef(
        "hemera_rereads", rate_minutes=60, function=COMMAND_SWEEPS_FUNCTION, payload={"job": REREADS_JOB}
    ),
    # The ack deadline is an hour: a command is reported expired at most 15 minutes after it.
    ScheduleDef(
        "hemera_expire_commands",
        rate_minutes=15,
        function=COMMAND_SWEEPS_FUNCTION,
        payload={"job": EXPIRE_COMMANDS_JOB},
    ),
)

# --- everything, as the CDK app and the local cloud build it -------------------------------------
QUEUES = (
    TELEMETRY_QUEUE,
    CURATE_QUEUE,
    COMMAND_ACK_QUEUE,
    *VEE_QUEUES,
    *EVENTS_QUEUES,
    *ALARM_QUEUES,
    *NOTIFY_QUEUES,
    *BILLING_QUEUES,
)
FUNCTIONS = (
    TRANSLATE_FUNCTION,
    CURATE_FUNCTION,
    COMMAND_ACK_FUNCTION,
    *VEE_FUNCTIONS,
    *EVENTS_FUNCTIONS,
    *ALARM_FUNCTIONS,
    *NOTIFY_FUNCTIONS,
    *BILLING_FUNCTIONS,
    COMMAND_SWEEPS_FUNCTION,
)
TOPIC_RULES = (TELEMETRY_RULE, COMMAND_ACK_RULE, *EVENTS_TOPIC_RULES, *ALARM_TOPIC_RULES)
# Every queue that feeds a function, whoever fills the queue (a topic rule, an event rule).
QUEUE_CONSUMERS = (
    TELEMETRY_CONSUMER,
    CURATE_CONSUMER,
    COMMAND_ACK_CONSUMER,
    *VEE_CONSUMERS,
    *EVENTS_CONSUMERS,
    *ALARM_CONSUMERS,
    *NOTIFY_CONSUMERS,
    *BILLING_CONSUMERS,
)
# Rules on the platform bus (EventBridge in AWS and on the local cloud's moto server alike).
EVENT_RULES = (
    CURATE_RULE,
    *VEE_EVENT_RULES,
    *EVENTS_EVENT_RULES,
    *ALARM_EVENT_RULES,
    *NOTIFY_EVENT_RULES,
    *BILLING_EVENT_RULES,
)
# Periodic jobs: EventBridge schedules in AWS, the local scheduler in the local cloud.
SCHEDULES: tuple[ScheduleDef, ...] = (
    *VEE_SCHEDULES,
    *EVENTS_SCHEDULES,
    *ALARM_SCHEDULES,
    *NOTIFY_SCHEDULES,
    *BILLING_SCHEDULES,
    *COMMAND_SCHEDULES,
)

# --- portal API --------------------------------------------------------------------------------
PORTAL_API_DIR = "portal_api"
PORTAL_API_NAME = "hemera-portal-api"

# Environment variables every function receives: tables and buckets by their definitions.
RESOURCE_ENV_VARS = (*(d.env_var for d in (*TABLES, *BUCKETS)), EVENT_BUS.env_var)
