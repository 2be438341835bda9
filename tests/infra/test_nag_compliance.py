"""cdk-nag runs at synth: an unacknowledged AWS Solutions finding fails the synth.

The Hemera stack itself synthesizes in the other modules, which proves each of its findings is
acknowledged with a reason; this module proves the check is really active.
"""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs

from hemera_infra.application import add_compliance_checks
from hemera_infra.nag import acknowledge


def _app_with_a_queue_without_dlq(acknowledged: bool) -> App:
    app = App()
    stack = Stack(app, "NagProbe")
    queue = sqs.Queue(stack, "Orphan", enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED)
    if acknowledged:
        acknowledge(queue, "AwsSolutions-SQS3", "Probe queue in a test.")
    add_compliance_checks(app)
    return app


def test_unacknowledged_finding_fails_synth() -> None:
    with pytest.raises(RuntimeError, match="AwsSolutions-SQS3"):
        _app_with_a_queue_without_dlq(acknowledged=False).synth()


def test_acknowledged_finding_synthesizes() -> None:
    assembly = _app_with_a_queue_without_dlq(acknowledged=True).synth()

    assert assembly.get_stack_by_name("NagProbe").template["Resources"]
