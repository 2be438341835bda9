"""The Hemera layer bundles locally, without Docker (slow: pip downloads wheels from PyPI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Stack

from hemera_infra.layer import HemeraLayer


@pytest.mark.slow
def test_layer_bundles_hemera_and_linux_wheels_under_python(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path / "cdk.out"))  # bundling on: every stack
    HemeraLayer(Stack(app, "LayerOnly"), "Layer")

    app.synth()

    (site,) = (tmp_path / "cdk.out").glob("asset.*/python")
    assert (site / "hemera" / "definitions.py").is_file()
    assert (site / "hemera" / "py.typed").is_file()
    assert not list(site.joinpath("hemera").rglob("__pycache__")), "bytecode of the build machine leaked"
    # Third-party runtime, built for Lambda (CPython 3.11, manylinux x86_64), not for this machine.
    assert (site / "aws_lambda_powertools").is_dir()
    assert (site / "pynamodb").is_dir()
    assert list(site.glob("pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so"))
    assert list(site.glob("yaml/_yaml.cpython-311-x86_64-linux-gnu.so"))
    (wheel,) = site.glob("pydantic_core-*.dist-info/WHEEL")
    assert "manylinux" in wheel.read_text()
