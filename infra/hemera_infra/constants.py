"""Names and settings of the CDK app that are not resource definitions.

Tables, buckets, queues, functions, topic rules and schedules are declared once in
`hemera.definitions` (shared with the local cloud); this module holds only what the CDK app alone
needs: construct ids, paths, the Lambda runtime and the few settings no definition carries.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from hemera.definitions import API_KEYS_TABLE, EXPORTS_BUCKET, QUARANTINE_BUCKET, RAW_BUCKET, READINGS_TABLE

# --- paths (the package is installed in editable mode from infra/) -----------------------------
REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = REPO_ROOT / "cdk.json"
FUNCTIONS_DIR = REPO_ROOT / "functions"
LAYERS_DIR = REPO_ROOT / "layers"
LAYER_PACKAGE = "hemera"
LAYER_REQUIREMENTS = "requirements.txt"
# The curate function's extra layer: third-party wheels only (pyarrow), no first-party package.
ANALYTICS_LAYER_DIR = LAYERS_DIR / "analytics-layer"
TENANTS_DIR = REPO_ROOT / "tenants"

# --- app and construct ids ---------------------------------------------------------------------
STACK_NAME = "HemeraStack"
STACK_DESCRIPTION = "Hemera Cloud: multi-tenant serverless smart-metering platform"
TENANTS_DIR_CONTEXT_KEY = "hemera:tenantsDir"
SKIP_BUNDLING_CONTEXT_KEY = "hemera:skipBundling"
BUNDLING_STACKS_CONTEXT_KEY = "aws:cdk:bundling-stacks"
STORAGE_ID = "Storage"
LAYER_ID = "HemeraLayer"
FUNCTIONS_ID = "Functions"
INGEST_ID = "Ingest"
SCHEDULES_ID = "Schedules"
COMMAND_SWEEPS_ID = "CommandSweeps"
PORTAL_API_ID = "PortalApi"
PORTAL_USERS_ID = "PortalUsers"
ANALYTICS_ID = "Analytics"
VEE_ID = "Vee"

# --- Lambda ------------------------------------------------------------------------------------
# `chalice package` builds for the local interpreter, so every function (and the layer's wheels)
# follow the Python of the build machine: 3.11.
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_11
LAMBDA_ARCHITECTURE = lambda_.Architecture.X86_64
PYTHON_VERSION = "3.11"
# pip cross-installs the layer's wheels for the Lambda platform (x86_64, glibc 2.17+).
PIP_PLATFORM = "manylinux2014_x86_64"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
AWS_MODE_ENV_VAR = "HEMERA_AWS_MODE"
AWS_MODE = "aws"
POWERTOOLS_SERVICE_ENV_VAR = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_NAMESPACE_ENV_VAR = "POWERTOOLS_METRICS_NAMESPACE"
METRICS_NAMESPACE = "Hemera"

# --- storage -----------------------------------------------------------------------------------
# Raw frames and billing exports are evidence (restatements, disputes): keep every version.
VERSIONED_BUCKETS = frozenset({RAW_BUCKET, EXPORTS_BUCKET})
# Raw frames are re-read only for re-translation of recent data; after 90 days they are cold.
RAW_ARCHIVE_TRANSITION = Duration.days(90)
ABORT_INCOMPLETE_UPLOADS = Duration.days(7)
# Metering data outlives a stack: tables and buckets survive `cdk destroy`.
DATA_REMOVAL_POLICY = RemovalPolicy.RETAIN

# --- ingest ------------------------------------------------------------------------------------
IOT_SQL_VERSION = "2016-03-23"
DLQ_RETENTION = Duration.days(14)
# What a translate function may touch: it writes readings, archives raw frames and quarantines
# poison messages with their reason.
INGEST_READ_WRITE_TABLES = (READINGS_TABLE,)
INGEST_WRITE_BUCKETS = (RAW_BUCKET, QUARANTINE_BUCKET)
# Device topics, thing attributes and IoT policies: `hemera.domain.policies`.

# --- analytics ---------------------------------------------------------------------------------
# The curate function reads meter-days and writes Parquet under the dataset's prefix only.
CURATE_READ_TABLES = (READINGS_TABLE,)
CURATE_TABLE_ACTIONS = ("dynamodb:BatchGetItem",)
# Glue's Parquet classes: Athena reads the table through the Hive Parquet SerDe.
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

# --- schedules ---------------------------------------------------------------------------------
SCHEDULE_RETRY_ATTEMPTS = 2

# --- portal API --------------------------------------------------------------------------------
# The Chalice stage in `.chalice/config.json` whose settings (API stage, memory, timeout) the
# deployed API uses; the construct adds layer, role and environment on top.
CHALICE_STAGE = "dev"
# The API reads readings and resolves API keys; it writes nothing.
PORTAL_API_READ_TABLES = (READINGS_TABLE, API_KEYS_TABLE)

# --- VEE ---------------------------------------------------------------------------------------
# The VEE function reads meter-days, history, edits, device events and registers (BatchGetItem,
# GetItem, Query) and writes final days with a condition on their version (PutItem).
VEE_TABLE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem")
# The portal API stores operators' edits (BatchWriteItem) and recomputes their days at once.
VEE_PORTAL_TABLE_ACTIONS = ("dynamodb:BatchWriteItem", "dynamodb:PutItem")

# --- billing exports -----------------------------------------------------------------------------
BILLING_ID = "Billing"
# Export files and manifests under each tenant's prefix: tenants/<tenant>/exports/<id>/v<n>/<file>.
EXPORTS_OBJECTS_PATTERN = "tenants/*/exports/*"
# Final days, meters and the export index are read with Query/GetItem (and final days in batches);
# index items are written with conditional puts, and the parts of a version rendered in parts are
# recorded with conditional updates (UpdateItem ADD); pending restatements are written and cleared
# in batches (BatchWriteItem puts and deletes).
EXPORTS_TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
)
# The portal's export routes: read the index (Query/GetItem) and index a pending request (PutItem,
# and a conditional put marking it failed when it could not be queued).
EXPORTS_PORTAL_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem")

# --- notifications -------------------------------------------------------------------------------
NOTIFICATIONS_ID = "Notifications"
# notify reads a tenant's channels (GetItem); deliver claims and settles a delivery with
# conditional writes (UpdateItem, PutItem), reads its state (GetItem) and stores dead letters.
NOTIFY_TABLE_ACTIONS = ("dynamodb:GetItem",)
DELIVER_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")

# --- alarms --------------------------------------------------------------------------------------
ALARMS_ID = "Alarms"
# The alarms function reads interval days, instantaneous values, device activity, the registry and
# its own items (GetItem, Query, BatchGetItem), and writes alarms with transactions conditioned
# on each key's version (TransactWriteItems needs PutItem and ConditionCheckItem) and the VEE
# tally (PutItem, DeleteItem).
ALARMS_TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
)
# The portal API acknowledges alarms (the same conditional transaction).
ALARMS_PORTAL_TABLE_ACTIONS = ("dynamodb:PutItem", "dynamodb:ConditionCheckItem")
