"""Lambda functions built from `FunctionDef`s, each once, whichever capability asks first.

A function can serve several capabilities (a topic rule and a schedule); building it here, under
one scope, keeps its logical id stable whichever capability wires it. Every function gets the
Hemera layer and the shared environment (physical names of tables, buckets and queues under the
variable names their definitions give); grants stay with the capability that needs them.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from hemera.definitions import FunctionDef
from hemera_infra.constants import (
    AWS_MODE,
    AWS_MODE_ENV_VAR,
    FUNCTIONS_DIR,
    LAMBDA_ARCHITECTURE,
    LAMBDA_RUNTIME,
    LOG_RETENTION,
    METRICS_NAMESPACE,
    POWERTOOLS_NAMESPACE_ENV_VAR,
    POWERTOOLS_SERVICE_ENV_VAR,
)
from hemera_infra.nag import RUNTIME_REASON, XRAY_REASON, acknowledge

_NOT_SHIPPED = ["**/__pycache__", "**/*.pyc"]


def base_environment() -> dict[str, str]:
    """What every Hemera function (Lambda or Chalice) runs with, before resource names."""
    return {AWS_MODE_ENV_VAR: AWS_MODE, POWERTOOLS_NAMESPACE_ENV_VAR: METRICS_NAMESPACE}


class FunctionCatalog(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, layer: lambda_.ILayerVersion) -> None:
        super().__init__(scope, construct_id)
        self._layer = layer
        self._environment = base_environment()
        self._functions: dict[str, lambda_.Function] = {}

    @property
    def environment(self) -> Mapping[str, str]:
        return dict(self._environment)

    def add_environment(self, variables: Mapping[str, str]) -> None:
        """Adds variables to every function, those built already and those to come."""
        self._environment.update(variables)
        for function in self._functions.values():
            for key, value in variables.items():
                function.add_environment(key, value)

    def function(self, definition: FunctionDef) -> lambda_.Function:
        if definition.name not in self._functions:
            self._functions[definition.name] = self._build_function(definition)
        return self._functions[definition.name]

    def _build_function(self, definition: FunctionDef) -> lambda_.Function:
        scope = Construct(self, definition.name)
        log_group = self._build_log_group(scope)
        function = lambda_.Function(
            scope,
            "Function",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR / definition.code_dir), exclude=_NOT_SHIPPED),
            handler=definition.handler,
            memory_size=definition.memory_mb,
            timeout=Duration.seconds(definition.timeout_s),
            layers=[self._layer],
            environment={**self._environment, POWERTOOLS_SERVICE_ENV_VAR: definition.name},
            role=self._build_role(scope, log_group),
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            description=f"Hemera {definition.name} ({definition.code_dir}/{definition.handler})",
        )
        acknowledge(function, "AwsSolutions-L1", RUNTIME_REASON)
        return function

    def _build_log_group(self, scope: Construct) -> logs.LogGroup:
        return logs.LogGroup(scope, "Logs", retention=LOG_RETENTION)

    def _build_role(self, scope: Construct, log_group: logs.LogGroup) -> iam.Role:
        # An own role with logs scoped to the function's log group, instead of the AWS managed
        # AWSLambdaBasicExecutionRole (which allows every log group of the account).
        role = iam.Role(scope, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        log_group.grant_write(role)
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)
        return role
