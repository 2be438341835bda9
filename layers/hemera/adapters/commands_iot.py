"""Commands to RTUs through AWS IoT Core: `iot-data` Publish, QoS 1, on the device's down topic.

The account's data endpoint is asked for once (`iot:DescribeEndpoint`, ATS) and kept.
"""

from __future__ import annotations

from typing import Any

from hemera import aws
from hemera.config import AwsTarget


class IotDataPublisher:
    def __init__(self, target: AwsTarget) -> None:
        self._target = target
        self._client: Any = None

    def endpoint(self) -> str:
        """The data endpoint: the target's (LocalStack, moto server), else the account's ATS one."""
        configured = aws.endpoint_url(self._target, "iot-data")
        if configured is not None:
            return configured
        described = aws.client(self._target, "iot").describe_endpoint(endpointType="iot:Data-ATS")
        return "https://" + str(described["endpointAddress"])

    def _data(self) -> Any:
        if self._client is None:
            import boto3

            region = self._target.region
            self._client = boto3.client("iot-data", region_name=region, endpoint_url=self.endpoint())
        return self._client

    def publish(self, topic: str, payload: bytes) -> None:
        self._data().publish(topic=topic, qos=1, payload=payload)
