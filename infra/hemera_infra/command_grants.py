"""Who may publish meter commands to the RTUs: the portal API (operators' requests) and the command
sweeps (automatic re-reads). One grant, so both are held to the same topics."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from hemera_infra.nag import XRAY_REASON, acknowledge

# Every RTU's command topic: commands go to the meters of one tenant only (checked before
# publishing); IoT topic ARNs take no finer condition on the tenant here.
COMMAND_TOPIC_PATTERN = "hemera/*/*/down/cmd"
COMMANDS_REASON = (
    "iot:DescribeEndpoint has no resource-level permissions; iot:Publish is limited to the RTUs' "
    "command topics (hemera/<tenant>/<rtu>/down/cmd), the tenant being checked before publishing."
)


def grant_command_publish(scope: Construct, role: iam.IRole) -> None:
    """iot:Publish on the RTUs' command topics and iot:DescribeEndpoint (the data endpoint is
    looked up once), with the cdk-nag acknowledgements that say why (the role's Resource::*
    finding also covers X-Ray)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iot:Publish"],
            resources=[
                Stack.of(scope).format_arn(
                    service="iot", resource="topic", resource_name=COMMAND_TOPIC_PATTERN
                )
            ],
        )
    )
    role.add_to_principal_policy(iam.PolicyStatement(actions=["iot:DescribeEndpoint"], resources=["*"]))
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:topic/"
        f"{COMMAND_TOPIC_PATTERN}]",
        COMMANDS_REASON,
    )
    acknowledge(role, "AwsSolutions-IAM5[Resource::*]", f"{XRAY_REASON} {COMMANDS_REASON}")
