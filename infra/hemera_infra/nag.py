"""cdk-nag acknowledgements (v3: CDK's native `Validations.of(...).acknowledge`), each with its reason.

cdk-nag 3 dropped `NagSuppressions`; a finding is acknowledged on the construct that raises it,
and a finding that names a resource (IAM5 wildcards) is acknowledged under its exact finding id.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

XRAY_REASON = (
    "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; "
    "CDK adds them with Resource * when active tracing is on."
)
OBJECT_KEYS_REASON = (
    "Object keys are tenant-prefixed and dynamic (T#<tenant>/...); the statement is limited to one "
    "bucket's objects and per-tenant prefixes are enforced by the STS session policy at run time."
)
ACCESS_LOGS_REASON = (
    "Server access logs belong to the account's logging baseline (one log bucket per account and "
    "region, or CloudTrail S3 data events), not to each application stack."
)
RUNTIME_REASON = (
    "Python 3.11 on purpose: `chalice package` builds for the local interpreter and the layer's "
    "wheels are cross-installed for cp311; all functions move to a newer runtime together."
)


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def arn_wildcard_finding(construct: IConstruct, suffix: str) -> str:
    """The IAM5 finding id cdk-nag reports for `<ARN of construct><suffix>` in a policy."""
    resource = construct.node.default_child or construct
    if not isinstance(resource, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    stack = Stack.of(resource)
    logical_id = stack.resolve(stack.get_logical_id(resource))
    return f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>{suffix}]"
