"""The portal's Cognito user pool on the local cloud (moto's cognito-idp), built from the same
definitions as the CDK construct, and the users the demo and tests log in with.

moto signs every pool's tokens with one fixed RS256 key and serves it at
`<endpoint>/<pool id>/.well-known/jwks.json`; the issuer is the AWS one
(`https://cognito-idp.<region>.amazonaws.com/<pool id>`), so the API checks tokens exactly as
in AWS and only fetches the key set from the emulator.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from hemera.definitions import (
    USER_POOL_CLIENT_NAME,
    USER_POOL_CUSTOM_ATTRIBUTES,
    USER_POOL_GROUPS,
    USER_POOL_NAME,
)


@dataclass(frozen=True, slots=True)
class UserPoolIds:
    pool_id: str
    client_id: str


def ensure_user_pool(cognito: Any) -> UserPoolIds:
    """The pool (found by name, else created) with its groups and its portal app client."""
    pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
    pool_id = next((p["Id"] for p in pools if p["Name"] == USER_POOL_NAME), None)
    if pool_id is None:
        schema = [
            {"Name": name, "AttributeDataType": "String", "Mutable": True}
            for name in USER_POOL_CUSTOM_ATTRIBUTES
        ]
        pool_id = cognito.create_user_pool(PoolName=USER_POOL_NAME, Schema=schema)["UserPool"]["Id"]
    for group in USER_POOL_GROUPS:
        with contextlib.suppress(cognito.exceptions.GroupExistsException):
            cognito.create_group(UserPoolId=pool_id, GroupName=group)
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next((c["ClientId"] for c in clients if c["ClientName"] == USER_POOL_CLIENT_NAME), None)
    if client_id is None:
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=USER_POOL_CLIENT_NAME,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
    return UserPoolIds(pool_id, client_id)


def add_user(
    cognito: Any,
    pool: UserPoolIds,
    username: str,
    password: str,
    group: str,
    tenant_id: str,
    customer_id: str | None = None,
) -> None:
    """A confirmed user with a permanent password in one group (idempotent)."""
    attributes = [{"Name": "custom:tenant", "Value": tenant_id}]
    if customer_id is not None:
        attributes.append({"Name": "custom:customer", "Value": customer_id})
    with contextlib.suppress(cognito.exceptions.UsernameExistsException):
        cognito.admin_create_user(
            UserPoolId=pool.pool_id, Username=username, UserAttributes=attributes, MessageAction="SUPPRESS"
        )
    cognito.admin_set_user_password(
        UserPoolId=pool.pool_id, Username=username, Password=password, Permanent=True
    )
    cognito.admin_add_user_to_group(UserPoolId=pool.pool_id, Username=username, GroupName=group)


def login(cognito: Any, pool: UserPoolIds, username: str, password: str) -> dict[str, str]:
    """USER_PASSWORD_AUTH, as a portal front end would: IdToken, AccessToken, RefreshToken."""
    result = cognito.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    return dict(result["AuthenticationResult"])
