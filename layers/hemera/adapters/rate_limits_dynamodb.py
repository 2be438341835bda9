"""Request counters in the readings table: one item per tenant and window.

`pk = T#<tenant>#RATE`, `sk = W#<window start epoch>`, `count` incremented with one atomic
`UpdateItem ADD` (no read first: concurrent function instances cannot lose a count), and
`expires_at` for the table's TTL so spent windows disappear without a cleanup job.
"""

from __future__ import annotations

from typing import Any

from hemera.domain.rate_limits import Window, rate_pk, window_sk
from hemera.domain.tenancy import TenantContext


class DynamoRequestCounter:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb  # a boto3 DynamoDB client
        self._table = table

    def hit(self, ctx: TenantContext, window: Window) -> int:
        answer = self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": rate_pk(ctx)}, "sk": {"S": window_sk(window)}},
            # `count` is a DynamoDB reserved word.
            UpdateExpression="ADD #count :one SET expires_at = if_not_exists(expires_at, :expires)",
            ExpressionAttributeNames={"#count": "count"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":expires": {"N": str(window.expires_at)}},
            ReturnValues="UPDATED_NEW",
        )
        return int(answer["Attributes"]["count"]["N"])
