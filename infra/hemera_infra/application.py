"""Builds the CDK app: validates the tenant files, composes the stack, runs cdk-nag at synth."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from hemera.tenants import load_tenant_dir
from hemera_infra.constants import (
    BUNDLING_STACKS_CONTEXT_KEY,
    CDK_JSON,
    REPO_ROOT,
    SKIP_BUNDLING_CONTEXT_KEY,
    STACK_NAME,
    TENANTS_DIR,
    TENANTS_DIR_CONTEXT_KEY,
)
from hemera_infra.stack import HemeraStack


def project_context() -> dict[str, Any]:
    """The `context` of cdk.json (feature flags), so tests synthesize what `cdk synth` does."""
    return dict(json.loads(CDK_JSON.read_text()).get("context", {}))


def build_app(
    tenants_dir: Path | None = None,
    *,
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    env: Environment | None = None,
) -> App:
    """The Hemera app; raises `InvalidTenantFile` when a tenant file is invalid.

    `tenants_dir` defaults to the context value `hemera:tenantsDir`, then to `tenants/`. With the
    context `hemera:skipBundling=true` (e.g. `cdk synth -c hemera:skipBundling=true`) the layer is
    not built, for fast offline synth checks; never deploy such an assembly.
    """
    app = App(context={**project_context(), **(context or {})}, outdir=outdir)
    if str(app.node.try_get_context(SKIP_BUNDLING_CONTEXT_KEY)).lower() == "true":
        # The CLI rejects user context under `aws:` (`-c aws:cdk:bundling-stacks=[]`) and asks for
        # bundling of every stack on synth; this switch, set before any stack exists, skips it.
        app.node.set_context(BUNDLING_STACKS_CONTEXT_KEY, [])
    folder = tenants_dir or REPO_ROOT / (app.node.try_get_context(TENANTS_DIR_CONTEXT_KEY) or TENANTS_DIR)
    if not folder.is_dir():
        raise FileNotFoundError(f"tenants folder {folder} does not exist")
    tenants = load_tenant_dir(folder)
    HemeraStack(app, STACK_NAME, tenants=tenants, env=env)
    add_compliance_checks(app)
    return app


def add_compliance_checks(app: App) -> None:
    """cdk-nag's AWS Solutions pack runs at synth; an unacknowledged finding fails the synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
