"""Fixtures of the CDK synth tests: the Hemera app is built once per module.

Building it runs `chalice package` for the portal API (seconds, more on a cold cache), so every
test of a module shares one synthesized template. Bundling is skipped (`aws:cdk:bundling-stacks`
= []): the layer's pip install runs only in the slow bundling test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from hemera_infra.application import build_app
from hemera_infra.constants import STACK_NAME
from hemera_infra.stack import HemeraStack

SKIP_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


def logical_id_in(stack: Stack, construct: Any) -> str:
    """The logical id of an L2 construct's CloudFormation resource (or of a Cfn resource)."""
    resource = getattr(construct.node, "default_child", None) or construct
    return str(stack.resolve(stack.get_logical_id(resource)))


@pytest.fixture(scope="module")
def hemera_stack() -> HemeraStack:
    app = build_app(context=SKIP_BUNDLING)
    stack = app.node.find_child(STACK_NAME)
    assert isinstance(stack, HemeraStack)
    return stack


@pytest.fixture(scope="module")
def template(hemera_stack: HemeraStack) -> Template:
    # Synthesizing runs cdk-nag too: an unacknowledged finding fails here.
    return Template.from_stack(hemera_stack)


@pytest.fixture(scope="module")
def logical_id(hemera_stack: HemeraStack) -> Callable[[Any], str]:
    return lambda construct: logical_id_in(hemera_stack, construct)
