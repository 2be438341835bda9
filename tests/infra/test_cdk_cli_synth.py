"""`cdk synth` through the pinned CLI, as a developer or CI runs it (slow: node + chalice)."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from hemera_infra.constants import REPO_ROOT, STACK_NAME

CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def _cli_environment() -> dict[str, str]:
    # Fake credentials: synth needs none, but the CLI resolves a default environment.
    return {
        **os.environ,
        "CDK_DISABLE_VERSION_CHECK": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.mark.slow
def test_cli_synth_emits_the_whole_platform(tmp_path: Path) -> None:
    if not CDK.exists():
        pytest.skip("the pinned CDK CLI is not installed (npm ci)")
    out = tmp_path / "cdk.out"

    # `-c aws:cdk:bundling-stacks=[]` is refused by the CLI (reserved `aws:` prefix); the app's
    # own switch skips the layer's pip install instead.
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "-c", "hemera:skipBundling=true", "--output", str(out)],
        cwd=REPO_ROOT,
        env=_cli_environment(),
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert result.returncode == 0, result.stderr[-4000:]
    template = json.loads((out / f"{STACK_NAME}.template.json").read_text())
    types = Counter(resource["Type"] for resource in template["Resources"].values())
    for resource_type in (
        "AWS::IoT::TopicRule",
        "AWS::IoT::Policy",
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::EventSourceMapping",
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        # `chalice package` emits SAM: the REST API and its function, expanded by the transform.
        "AWS::Serverless::Api",
        "AWS::Serverless::Function",
    ):
        assert types[resource_type] >= 1, resource_type
    assert types["AWS::SQS::Queue"] >= 2
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert not (REPO_ROOT / "chalice.out").exists(), "chalice packages belong in a temporary folder"
