"""The small cached factory that picks adapters for a runtime: AWS/local cloud or in-memory."""

from __future__ import annotations

from functools import cache

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
from hemera.adapters.instantaneous_dynamodb import DynamoInstantaneousStore, instantaneous_model
from hemera.adapters.jwks import HttpKeySet
from hemera.adapters.s3 import S3Quarantine, S3RawArchive
from hemera.config import RuntimeSettings
from hemera.definitions import EVENT_BUS
from hemera.ports.commands import CommandPublisher
from hemera.ports.rate_limits import RequestCounter
from hemera.services.access import PortalPorts
from hemera.services.callers import CognitoTokenVerifier, UserPool
from hemera.services.commands import CommandPorts
from hemera.services.curate import CuratePorts
from hemera.services.ingest import IngestPorts


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
        publisher=_command_publisher(settings),
    )


def _command_publisher(settings: RuntimeSettings) -> CommandPublisher:
    """IoT Core's data endpoint; on the local cloud, its mosquitto broker."""
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
