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
    """A cached boto3 client (clients are thread-safe; one per target and service)."""
    return boto3.client(service, region_name=target.region, endpoint_url=endpoint_url(target, service))
