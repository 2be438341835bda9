"""The small cached factory that picks adapters for a runtime: AWS/local cloud or in-memory."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from hemera import aws
from hemera.adapters.dynamodb import (
    DynamoApiKeys,
    DynamoConsents,
    DynamoLedger,
    DynamoReadingStore,
    DynamoRegistry,
    ReadingsModels,
    api_key_model,
    consent_model,
    readings_models,
)
from hemera.adapters.eventbridge import EventBridgeChangeEvents
from hemera.adapters.final_series_dynamodb import DynamoFinalSeries, final_series_model
from hemera.adapters.instantaneous_dynamodb import DynamoInstantaneousStore, instantaneous_model
from hemera.adapters.jwks import HttpKeySet
from hemera.adapters.s3 import S3Quarantine, S3RawArchive
from hemera.adapters.tenant_credentials import TenantSessions
from hemera.config import RuntimeSettings
from hemera.definitions import EVENT_BUS
from hemera.ports.commands import CommandPublisher
from hemera.ports.rate_limits import RequestCounter
from hemera.services.access import PortalPorts
from hemera.services.callers import CognitoTokenVerifier, UserPool
from hemera.services.commands import CommandPorts
from hemera.services.curate import CuratePorts
from hemera.services.ingest import IngestPorts
from hemera.services.notifications import NotificationPorts, NotifySettings
from hemera.services.rereads import SweepPorts


def _models(settings: RuntimeSettings) -> ReadingsModels:
    return readings_models(settings.readings_table, settings.aws, aws.endpoint_url(settings.aws, "dynamodb"))


def _readings(settings: RuntimeSettings) -> tuple[DynamoReadingStore, DynamoRegistry]:
    models = _models(settings)
    return DynamoReadingStore(models), DynamoRegistry(models)


@cache
def ingest_ports(settings: RuntimeSettings) -> IngestPorts:
    store, registry = _readings(settings)
    s3 = aws.client(settings.aws, "s3")
    return IngestPorts(
        store=store,
        registry=registry,
        archive=S3RawArchive(s3, settings.raw_bucket),
        quarantine=S3Quarantine(s3, settings.quarantine_bucket),
        events=EventBridgeChangeEvents(
            aws.client(settings.aws, "events"), settings.event_bus, EVENT_BUS.source
        ),
        ledger=DynamoLedger(_models(settings)),
        instantaneous=instantaneous_store(settings),
        device_events=device_event_ports(settings),
    )


@cache
def instantaneous_store(settings: RuntimeSettings) -> DynamoInstantaneousStore:
    """The meters' instantaneous values, in the readings table (ingest writes, the portal reads)."""
    host = aws.endpoint_url(settings.aws, "dynamodb")
    return DynamoInstantaneousStore(instantaneous_model(settings.readings_table, settings.aws, host))


@cache
def portal_ports(settings: RuntimeSettings) -> PortalPorts:
    store, registry = _readings(settings)
    host = aws.endpoint_url(settings.aws, "dynamodb")
    keys = api_key_model(settings.api_keys_table, settings.aws, host)
    consents = consent_model(settings.api_keys_table, settings.aws, host)
    return PortalPorts(
        keys=DynamoApiKeys(keys),
        registry=registry,
        store=store,
        consents=DynamoConsents(consents),
        tokens=_token_verifier(settings),
    )


def _token_verifier(settings: RuntimeSettings) -> CognitoTokenVerifier | None:
    if settings.user_pool_id is None or settings.user_pool_client_id is None:
        return None
    pool = UserPool.of(settings.aws.region, settings.user_pool_id, settings.user_pool_client_id)
    return CognitoTokenVerifier(pool, HttpKeySet(str(settings.user_pool_jwks_url)))


@cache
def curate_ports(settings: RuntimeSettings) -> CuratePorts:
    # Imported here: pyarrow ships only in the curate function's extra layer, and every other
    # function imports this module.
    from hemera.adapters.parquet import S3ParquetCuratedWriter

    store, _registry = _readings(settings)
    return CuratePorts(
        store=store, curated=S3ParquetCuratedWriter(aws.client(settings.aws, "s3"), settings.curated_bucket)
    )


@cache
def command_ports(settings: RuntimeSettings) -> CommandPorts:
    """Meter commands: the readings table, and IoT Core (iot-data) to reach the RTUs."""
    from hemera.adapters.commands_dynamodb import DynamoCommandStore, command_models

    host = aws.endpoint_url(settings.aws, "dynamodb")
    _store, registry = _readings(settings)
    return CommandPorts(
        registry=registry,
        commands=DynamoCommandStore(command_models(settings.readings_table, settings.aws, host)),
        publisher=command_publisher(settings),
    )


@cache
def command_publisher(settings: RuntimeSettings) -> CommandPublisher:
    """IoT Core's data endpoint; on the local cloud, its mosquitto broker. The portal builds it
    from its own settings: a tenant session reaches only the tenant's items and objects."""
    if settings.local_mqtt:
        from hemera.adapters.commands_mqtt import LocalBroker, LocalMqttPublisher

        return LocalMqttPublisher(LocalBroker.parse(settings.local_mqtt))
    from hemera.adapters.commands_iot import IotDataPublisher

    return IotDataPublisher(settings.aws)


@cache
def request_counter(settings: RuntimeSettings) -> RequestCounter:
    """The portal's per-tenant request counters, in the readings table (TTL on `expires_at`)."""
    from hemera.adapters.rate_limits_dynamodb import DynamoRequestCounter

    return DynamoRequestCounter(aws.client(settings.aws, "dynamodb"), settings.readings_table)


@cache
def notification_ports(settings: RuntimeSettings, notify: NotifySettings) -> NotificationPorts:
    """Notifications: channels, ledger and dead letters in the readings table; the deliveries
    queue; the tenants' SNS topics; webhooks over urllib; signing secrets in Secrets Manager."""
    from hemera.adapters.notifications_dynamodb import (
        DynamoChannelDirectory,
        DynamoDeadLetters,
        DynamoDeliveryLedger,
        notification_models,
    )
    from hemera.adapters.notifications_secrets import SecretsManagerSigningSecrets
    from hemera.adapters.notifications_sns import SnsTopicPublisher
    from hemera.adapters.notifications_sqs import SqsDeliveryQueue
    from hemera.adapters.notifications_webhook import UrllibWebhookSender
    from hemera.definitions import NOTIFY_DELIVERIES_QUEUE

    models = notification_models(
        settings.readings_table, settings.aws, aws.endpoint_url(settings.aws, "dynamodb")
    )
    sqs = aws.client(settings.aws, "sqs")
    # The local cloud passes no queue URLs: its queues carry their definitions' local names.
    queue_url = notify.deliveries_queue_url or str(
        sqs.get_queue_url(QueueName=NOTIFY_DELIVERIES_QUEUE.local_name)["QueueUrl"]
    )
    arn_prefix = notify.topic_arn_prefix
    if arn_prefix is None:
        account = aws.client(settings.aws, "sts").get_caller_identity()["Account"]
        arn_prefix = f"arn:aws:sns:{settings.aws.region}:{account}:"
    return NotificationPorts(
        channels=DynamoChannelDirectory(models),
        queue=SqsDeliveryQueue(sqs, queue_url),
        ledger=DynamoDeliveryLedger(models),
        dead_letters=DynamoDeadLetters(models),
        topics=SnsTopicPublisher(aws.client(settings.aws, "sns"), arn_prefix),
        webhooks=UrllibWebhookSender(),
        secrets=SecretsManagerSigningSecrets(aws.client(settings.aws, "secretsmanager")),
        settings=notify,
    )


@cache
def export_ports(settings: RuntimeSettings) -> ExportPorts:
    """Billing exports: final days, the export index, the tenants' schedules and the pending
    restatements (readings table), files (exports bucket), `ExportWritten` and `ExportRequested`
    on the platform bus."""
    from hemera.adapters.exports_dynamodb import (
        DynamoExportIndex,
        DynamoExportSchedules,
        DynamoPendingRestatements,
        export_model,
        export_schedules_model,
        pending_restatement_model,
    )
    from hemera.adapters.exports_s3 import EventBridgeExportEvents, S3ExportFiles
    from hemera.services.exports import ExportPorts

    host = aws.endpoint_url(settings.aws, "dynamodb")
    _store, registry = _readings(settings)
    return ExportPorts(
        registry=registry,
        final_series=final_series_store(settings),
        index=DynamoExportIndex(export_model(settings.readings_table, settings.aws, host)),
        files=S3ExportFiles(aws.client(settings.aws, "s3"), settings.exports_bucket),
        events=EventBridgeExportEvents(aws.client(settings.aws, "events"), settings.event_bus),
        schedules=DynamoExportSchedules(export_schedules_model(settings.readings_table, settings.aws, host)),
        requests=export_requests(settings),
        restatements=DynamoPendingRestatements(
            pending_restatement_model(settings.readings_table, settings.aws, host)
        ),
    )


if TYPE_CHECKING:  # the VEE service imports the engine and the holiday calendars: VEE code only
    from hemera.adapters.tenant_documents import DynamoTenantDocuments
    from hemera.services.tenant_settings import ApiLimitStore, VeeSettingsStore
    from hemera.services.vee import VeePorts


@cache
def final_series_store(settings: RuntimeSettings) -> DynamoFinalSeries:
    """The final (VEE'd) days, in the readings table (VEE writes; billing, alarms, the portal read)."""
    host = aws.endpoint_url(settings.aws, "dynamodb")
    return DynamoFinalSeries(final_series_model(settings.readings_table, settings.aws, host))


def _tenant_documents(settings: RuntimeSettings, name: str) -> DynamoTenantDocuments:
    from hemera.adapters.tenant_documents import DynamoTenantDocuments, tenant_document_model

    host = aws.endpoint_url(settings.aws, "dynamodb")
    return DynamoTenantDocuments(tenant_document_model(settings.readings_table, settings.aws, host), name)


@cache
def vee_settings_store(settings: RuntimeSettings) -> VeeSettingsStore:
    """Each tenant's VEE overrides, in the readings table (written at onboarding)."""
    from hemera.services.tenant_settings import VEE_DOCUMENT, VeeSettingsStore

    return VeeSettingsStore(_tenant_documents(settings, VEE_DOCUMENT))


@cache
def api_limit_store(settings: RuntimeSettings) -> ApiLimitStore:
    """Each tenant's portal allowance, in the readings table (written at onboarding)."""
    from hemera.services.tenant_settings import API_LIMITS_DOCUMENT, ApiLimitStore

    return ApiLimitStore(_tenant_documents(settings, API_LIMITS_DOCUMENT))


def vee_ports(settings: RuntimeSettings) -> VeePorts:
    """VEE: the readings table (meter data, final days, edits, device events and registers, the
    tenants' VEE overrides) and the platform bus (FinalDaysChanged). Not cached here: the ports
    keep each tenant's overrides for a minute, so each caller keeps the ports it builds (the VEE
    function at cold start, the portal per request)."""
    from hemera.adapters.edits_dynamodb import DynamoEdits, edit_model
    from hemera.adapters.meter_events_dynamodb import DynamoMeterEvents, DynamoRegisters, meter_event_models
    from hemera.services.vee import StoredVeeSettings, VeePorts

    host = aws.endpoint_url(settings.aws, "dynamodb")
    store, registry = _readings(settings)
    event, outage, register, _activity = meter_event_models(settings.readings_table, settings.aws, host)
    return VeePorts(
        registry=registry,
        readings=store,
        final=final_series_store(settings),
        edits=DynamoEdits(edit_model(settings.readings_table, settings.aws, host)),
        announcer=final_days_announcer(settings),
        settings=StoredVeeSettings(vee_settings_store(settings)),
        events=DynamoMeterEvents(event, outage),
        registers=DynamoRegisters(register),
    )


@cache
def sweep_ports(settings: RuntimeSettings) -> SweepPorts:
    """The command sweeps: meters and series (readings table), commands to the RTUs, the re-read
    log (readings table) and `MeterReadsExhausted` on the platform bus."""
    from hemera.adapters.eventbridge import EventBridgePublisher
    from hemera.adapters.rereads_dynamodb import DynamoRereadLog, reread_model
    from hemera.definitions import VEE_SOURCE

    store, registry = _readings(settings)
    host = aws.endpoint_url(settings.aws, "dynamodb")
    return SweepPorts(
        registry=registry,
        store=store,
        commands=command_ports(settings),
        rereads=DynamoRereadLog(reread_model(settings.readings_table, settings.aws, host)),
        events=EventBridgePublisher(aws.client(settings.aws, "events"), settings.event_bus, VEE_SOURCE),
    )


if TYPE_CHECKING:  # imported where used: the exports service pulls in the export formats
    from hemera.services.exports import ExportPorts


@cache
def meter_event_store(settings: RuntimeSettings) -> DynamoMeterEvents:
    """Device events and outages, in the readings table (translate writes; the portal, VEE and
    alarms read)."""
    from hemera.adapters.meter_events_dynamodb import DynamoMeterEvents, meter_event_models

    event, outage, _register, _activity = meter_event_models(
        settings.readings_table, settings.aws, aws.endpoint_url(settings.aws, "dynamodb")
    )
    return DynamoMeterEvents(event, outage)


@cache
def device_activity(settings: RuntimeSettings) -> DynamoDeviceActivity:
    """Last-seen times of every meter and RTU (translate touches them; the alarms sweep reads)."""
    from hemera.adapters.meter_events_dynamodb import DynamoDeviceActivity, meter_event_models

    _event, _outage, _register, activity = meter_event_models(
        settings.readings_table, settings.aws, aws.endpoint_url(settings.aws, "dynamodb")
    )
    return DynamoDeviceActivity(activity)


@cache
def device_event_ports(settings: RuntimeSettings) -> DeviceEventPorts:
    """What translate stores device events, registers, outages and activity through, and the bus
    it announces `MeterEventsRecorded` on (source `hemera.events`)."""
    from hemera.adapters.eventbridge import EventBridgePublisher
    from hemera.adapters.meter_events_dynamodb import DynamoRegisters, meter_event_models
    from hemera.definitions import EVENTS_SOURCE
    from hemera.services.device_events import DeviceEventPorts

    _event, _outage, register, _activity = meter_event_models(
        settings.readings_table, settings.aws, aws.endpoint_url(settings.aws, "dynamodb")
    )
    return DeviceEventPorts(
        events=meter_event_store(settings),
        registers=DynamoRegisters(register),
        activity=device_activity(settings),
        bus=EventBridgePublisher(aws.client(settings.aws, "events"), settings.event_bus, EVENTS_SOURCE),
    )


if TYPE_CHECKING:  # imported where used (annotations only)
    from hemera.adapters.meter_events_dynamodb import DynamoDeviceActivity, DynamoMeterEvents
    from hemera.services.device_events import DeviceEventPorts


@cache
def alarm_ports(settings: RuntimeSettings) -> AlarmPorts:
    """Alarms: their store (readings table), the tenants' alarm settings and VEE tally (the same
    store), the bus `AlarmChanged` goes to, and what the rules read (interval series,
    instantaneous values, device last-seen times, the registry)."""
    from hemera.adapters.alarms_dynamodb import DynamoAlarmStore, alarm_models
    from hemera.services.alarms import AlarmPorts

    store, registry = _readings(settings)
    alarms = DynamoAlarmStore(
        alarm_models(settings.readings_table, settings.aws, aws.endpoint_url(settings.aws, "dynamodb"))
    )
    return AlarmPorts(
        alarms=alarms,
        settings=alarms,
        vee=alarms,
        announcer=alarm_announcer(settings),
        registry=registry,
        readings=store,
        instantaneous=instantaneous_store(settings),
        activity=device_activity(settings),
        final_series=final_series_store(settings),
    )


if TYPE_CHECKING:  # imported where used (annotations only)
    from hemera.services.alarms import AlarmPorts


@cache
def portal_tenant_sessions(settings: RuntimeSettings) -> TenantSessions | None:
    """The portal's tenant-scoped sessions (None when no tenant data role is configured)."""
    from hemera.adapters.tenant_credentials import portal_scope

    if settings.tenant_role_arn is None:
        return None
    sts = aws.client(settings.aws, "sts")
    account = str(sts.get_caller_identity()["Account"])
    return TenantSessions(settings, sts, portal_scope(settings, account))


@cache
def export_requests(settings: RuntimeSettings) -> EventBridgeExportRequests:
    """`ExportRequested` on the platform bus. The portal builds it from its own settings, not a
    tenant session (those reach only the tenant's items and objects)."""
    from hemera.adapters.exports_s3 import EventBridgeExportRequests

    return EventBridgeExportRequests(aws.client(settings.aws, "events"), settings.event_bus)


if TYPE_CHECKING:  # imported where used (annotations only)
    from hemera.adapters.exports_s3 import EventBridgeExportRequests


# --- platform publishers -------------------------------------------------------------------------
# The portal builds these from its own settings, never from a tenant session: that session's
# policy reaches only the tenant's items and objects (`hemera.adapters.tenant_credentials`), so
# `events:PutEvents` and `iot:Publish` would be refused in AWS (moto does not check).
@cache
def alarm_announcer(settings: RuntimeSettings) -> EventBridgeAlarmAnnouncer:
    """`AlarmChanged` on the platform bus."""
    from hemera.adapters.alarms_eventbridge import EventBridgeAlarmAnnouncer

    return EventBridgeAlarmAnnouncer(aws.client(settings.aws, "events"), settings.event_bus)


@cache
def final_days_announcer(settings: RuntimeSettings) -> EventBridgeFinalDays:
    """`FinalDaysChanged` on the platform bus."""
    from hemera.adapters.final_series_events import EventBridgeFinalDays

    return EventBridgeFinalDays(aws.client(settings.aws, "events"), settings.event_bus)


if TYPE_CHECKING:  # imported where used (annotations only)
    from hemera.adapters.alarms_eventbridge import EventBridgeAlarmAnnouncer
    from hemera.adapters.final_series_events import EventBridgeFinalDays


def onboarding_stores(settings: RuntimeSettings) -> OnboardingStores:
    """What `onboard_tenant` writes: the registry, alarm settings, export schedules and VEE
    overrides, all in the readings table."""
    from hemera.services.onboarding import OnboardingStores

    return OnboardingStores(
        registry=ingest_ports(settings).registry,
        alarm_settings=alarm_ports(settings).settings,
        export_schedules=export_ports(settings).schedules,
        vee_settings=vee_settings_store(settings),
        api_limits=api_limit_store(settings),
    )


if TYPE_CHECKING:  # imported where used (annotations only)
    from hemera.services.onboarding import OnboardingStores
