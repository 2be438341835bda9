"""Runtime configuration, parsed once from the environment at cold start.

Handlers call `RuntimeSettings.from_environ(os.environ)` once (cached) and pass the settings
down; logic never reads the environment itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator

from hemera.definitions import (
    API_KEYS_TABLE,
    CURATED_BUCKET,
    EVENT_BUS,
    EXPORTS_BUCKET,
    QUARANTINE_BUCKET,
    RAW_BUCKET,
    READINGS_TABLE,
    USER_POOL_CLIENT_ID_ENV_VAR,
    USER_POOL_ID_ENV_VAR,
)


class AwsMode(StrEnum):
    AWS = "aws"  # real AWS: default endpoints and credentials
    LOCAL = "local"  # the local cloud: one moto server endpoint for every service
    LOCALSTACK = "localstack"  # a LocalStack endpoint (through localstack-client)


class ScopedCredentials(BaseModel):
    """Temporary credentials of one tenant (STS AssumeRole with the tenant's session policy,
    `hemera.adapters.tenant_credentials`): every client and table built with them is confined
    to that tenant's items and objects by IAM itself."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: datetime


class AwsTarget(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: AwsMode = AwsMode.AWS
    region: str = "us-east-1"
    endpoint_url: str | None = None
    # None: the function's own role (the platform's view); set: one tenant's scoped session.
    credentials: ScopedCredentials | None = None

    @model_validator(mode="after")
    def _endpoint(self) -> AwsTarget:
        if self.mode is AwsMode.LOCAL and not self.endpoint_url:
            raise ValueError("HEMERA_AWS_MODE=local needs HEMERA_AWS_ENDPOINT (the moto server URL)")
        return self

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> AwsTarget:
        return cls(
            mode=AwsMode(env.get("HEMERA_AWS_MODE", "aws")),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=env.get("HEMERA_AWS_ENDPOINT") or None,
        )

    def environ(self) -> dict[str, str]:
        """The environment variables that select this target (for child processes)."""
        env = {
            "HEMERA_AWS_MODE": self.mode.value,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        if self.endpoint_url:
            env["HEMERA_AWS_ENDPOINT"] = self.endpoint_url
        return env


LOCAL_MQTT_ENV_VAR = "HEMERA_LOCAL_MQTT"
# The role a function assumes, with a tenant's session policy, to act for that tenant only.
TENANT_ROLE_ENV_VAR = "HEMERA_TENANT_ROLE_ARN"
# The local cloud's stand-in for that role (moto accepts AssumeRole on it; it enforces no IAM).
LOCAL_TENANT_ROLE_ARN = "arn:aws:iam::123456789012:role/hemera-tenant-data"


class RuntimeSettings(BaseModel):
    """What every function needs: where AWS is and the physical names of the resources."""

    model_config = ConfigDict(frozen=True)

    aws: AwsTarget
    readings_table: str
    api_keys_table: str
    raw_bucket: str
    quarantine_bucket: str
    exports_bucket: str
    curated_bucket: str
    event_bus: str
    # The Cognito user pool whose JWTs the portal accepts; unset = API keys only.
    user_pool_id: str | None = None
    user_pool_client_id: str | None = None
    # The local cloud only: its MQTT broker as `port|cert|key|ca` (the rules bridge's identity),
    # which stands in for IoT Core's data endpoint when commands are sent to RTUs.
    local_mqtt: str | None = None
    # The tenant data role (`TENANT_ROLE_ENV_VAR`); unset = no tenant-scoped sessions.
    tenant_role_arn: str | None = None

    @property
    def user_pool_jwks_url(self) -> str | None:
        """Where the pool's signing keys are: Cognito's URL in AWS, the emulator's path locally."""
        if self.user_pool_id is None:
            return None
        if self.aws.endpoint_url:
            return f"{self.aws.endpoint_url.rstrip('/')}/{self.user_pool_id}/.well-known/jwks.json"
        return (
            f"https://cognito-idp.{self.aws.region}.amazonaws.com/{self.user_pool_id}/.well-known/jwks.json"
        )

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> RuntimeSettings:
        missing = [
            d.env_var
            for d in (
                READINGS_TABLE,
                API_KEYS_TABLE,
                RAW_BUCKET,
                QUARANTINE_BUCKET,
                EXPORTS_BUCKET,
                CURATED_BUCKET,
                EVENT_BUS,
            )
            if not env.get(d.env_var)
        ]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            aws=AwsTarget.from_environ(env),
            readings_table=env[READINGS_TABLE.env_var],
            api_keys_table=env[API_KEYS_TABLE.env_var],
            raw_bucket=env[RAW_BUCKET.env_var],
            quarantine_bucket=env[QUARANTINE_BUCKET.env_var],
            exports_bucket=env[EXPORTS_BUCKET.env_var],
            curated_bucket=env[CURATED_BUCKET.env_var],
            event_bus=env[EVENT_BUS.env_var],
            user_pool_id=env.get(USER_POOL_ID_ENV_VAR) or None,
            user_pool_client_id=env.get(USER_POOL_CLIENT_ID_ENV_VAR) or None,
            local_mqtt=env.get(LOCAL_MQTT_ENV_VAR) or None,
            tenant_role_arn=env.get(TENANT_ROLE_ENV_VAR) or None,
        )

    @classmethod
    def local(cls, aws: AwsTarget) -> RuntimeSettings:
        """Settings of the local cloud, whose resources carry their definitions' local names."""
        return cls(
            aws=aws,
            readings_table=READINGS_TABLE.local_name,
            api_keys_table=API_KEYS_TABLE.local_name,
            raw_bucket=RAW_BUCKET.local_name,
            quarantine_bucket=QUARANTINE_BUCKET.local_name,
            exports_bucket=EXPORTS_BUCKET.local_name,
            curated_bucket=CURATED_BUCKET.local_name,
            event_bus=EVENT_BUS.local_name,
            tenant_role_arn=LOCAL_TENANT_ROLE_ARN,
        )

    def environ(self) -> dict[str, str]:
        return {
            **self.aws.environ(),
            READINGS_TABLE.env_var: self.readings_table,
            API_KEYS_TABLE.env_var: self.api_keys_table,
            RAW_BUCKET.env_var: self.raw_bucket,
            QUARANTINE_BUCKET.env_var: self.quarantine_bucket,
            EXPORTS_BUCKET.env_var: self.exports_bucket,
            CURATED_BUCKET.env_var: self.curated_bucket,
            EVENT_BUS.env_var: self.event_bus,
            **({USER_POOL_ID_ENV_VAR: self.user_pool_id} if self.user_pool_id else {}),
            **({USER_POOL_CLIENT_ID_ENV_VAR: self.user_pool_client_id} if self.user_pool_client_id else {}),
            **({LOCAL_MQTT_ENV_VAR: self.local_mqtt} if self.local_mqtt else {}),
            **({TENANT_ROLE_ENV_VAR: self.tenant_role_arn} if self.tenant_role_arn else {}),
        }
