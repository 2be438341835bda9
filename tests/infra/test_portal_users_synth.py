"""The portal's Cognito user pool: groups and attributes from the definitions, no self sign-up,
an app client that signs in with a password (or SRP) and whose ids reach the portal API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_cdk.assertions import Match, Template

from hemera.definitions import (
    USER_POOL_CLIENT_ID_ENV_VAR,
    USER_POOL_CLIENT_NAME,
    USER_POOL_CUSTOM_ATTRIBUTES,
    USER_POOL_GROUPS,
    USER_POOL_ID_ENV_VAR,
    USER_POOL_NAME,
)
from hemera_infra.stack import HemeraStack

LogicalId = Callable[[Any], str]


def _pool(template: Template) -> dict[str, Any]:
    (pool,) = template.find_resources("AWS::Cognito::UserPool").values()
    return dict(pool["Properties"])


def test_the_pool_is_admin_only_with_a_strong_password_policy_and_threat_protection(
    template: Template,
) -> None:
    pool = _pool(template)
    assert pool["UserPoolName"] == USER_POOL_NAME
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(
        policy[k] for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols")
    )
    assert pool["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}


def test_the_pool_carries_the_tenant_and_customer_attributes(template: Template) -> None:
    schema = {a["Name"]: a for a in _pool(template)["Schema"]}
    for name in USER_POOL_CUSTOM_ATTRIBUTES:
        assert schema[name]["AttributeDataType"] == "String"


def test_one_group_per_role(template: Template) -> None:
    groups = template.find_resources("AWS::Cognito::UserPoolGroup").values()
    assert sorted(g["Properties"]["GroupName"] for g in groups) == sorted(USER_POOL_GROUPS)


def test_the_app_client_signs_in_with_a_password_and_cannot_write_tenancy(template: Template) -> None:
    (client,) = template.find_resources("AWS::Cognito::UserPoolClient").values()
    properties = client["Properties"]
    assert properties["ClientName"] == USER_POOL_CLIENT_NAME
    assert {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"} <= set(properties["ExplicitAuthFlows"])
    assert properties["GenerateSecret"] is False
    assert {f"custom:{n}" for n in USER_POOL_CUSTOM_ATTRIBUTES} <= set(properties["ReadAttributes"])
    assert not any(a.startswith("custom:") for a in properties["WriteAttributes"])


def test_the_portal_api_gets_the_pool_and_client_ids(
    template: Template, hemera_stack: HemeraStack, logical_id: LogicalId
) -> None:
    users = hemera_stack.portal_users
    template.has_resource_properties(
        "AWS::Serverless::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        USER_POOL_ID_ENV_VAR: {"Ref": logical_id(users.user_pool)},
                        USER_POOL_CLIENT_ID_ENV_VAR: {"Ref": logical_id(users.client)},
                    }
                )
            }
        },
    )
