"""The one AWS client factory: real AWS, the local cloud (moto) or LocalStack, by configuration."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3

from hemera.config import AwsMode, AwsTarget


def endpoint_url(target: AwsTarget, service: str) -> str | None:
    """Endpoint of `service` for `target`; None means boto3's default (real AWS)."""
    if target.mode is AwsMode.LOCALSTACK and not target.endpoint_url:
        # Imported here: localstack-client is a development dependency, not in the Lambda layer.
        from localstack_client.config import get_service_endpoint

        return str(get_service_endpoint(service))
    return target.endpoint_url


@cache
def client(target: AwsTarget, service: str) -> Any:
    """A cached boto3 client (clients are thread-safe; one per target and service). A target with
    a tenant's scoped credentials gives a client that can reach only that tenant's data."""
    return boto3.client(
        service,
        region_name=target.region,
        endpoint_url=endpoint_url(target, service),
        **credential_args(target),
    )


def credential_args(target: AwsTarget) -> dict[str, str]:
    """boto3's explicit credential arguments for a scoped target; none for the default chain."""
    scoped = target.credentials
    if scoped is None:
        return {}
    return {
        "aws_access_key_id": scoped.access_key_id,
        "aws_secret_access_key": scoped.secret_access_key,
        "aws_session_token": scoped.session_token,
    }
