"""The Hemera Lambda layer: the first-party `hemera` package plus its third-party runtime.

Built by CDK *local* bundling (no Docker on build machines): the package is copied to
`python/hemera` and the wheels of `layers/requirements.txt` are cross-installed for the Lambda
platform with pip. When the context `aws:cdk:bundling-stacks` is `[]` CDK skips bundling, which
keeps synth tests fast and offline.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from hemera_infra.constants import (
    LAMBDA_ARCHITECTURE,
    LAMBDA_RUNTIME,
    LAYER_PACKAGE,
    LAYER_REQUIREMENTS,
    LAYERS_DIR,
    PIP_PLATFORM,
    PYTHON_VERSION,
)

# Bytecode is built for the local interpreter; Lambda compiles its own.
_NOT_SHIPPED = ("__pycache__", "*.pyc", "ruff.toml")


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """Lays out a Python layer (`python/...`) in the asset output folder, without Docker: the
    first-party `package` (if any) and the wheels of `requirements`."""

    def __init__(self, source_dir: Path, package: str | None, requirements: str) -> None:
        self._source_dir = source_dir
        self._package = package
        self._requirements = requirements

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: object) -> bool:
        site = Path(output_dir) / "python"
        if self._package:
            shutil.copytree(
                self._source_dir / self._package,
                site / self._package,
                ignore=shutil.ignore_patterns(*_NOT_SHIPPED),
                dirs_exist_ok=True,
            )
        self._install_requirements(site)
        return True

    def _install_requirements(self, site: Path) -> None:
        # Wheels only, for the Lambda platform and interpreter: never a local sdist build.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--requirement",
                str(self._source_dir / self._requirements),
                "--target",
                str(site),
                "--platform",
                PIP_PLATFORM,
                "--implementation",
                "cp",
                "--python-version",
                PYTHON_VERSION,
                "--only-binary=:all:",
            ],
            check=True,
        )


class HemeraLayer(Construct):
    """`lambda.LayerVersion` holding `hemera` and its runtime dependencies."""

    def __init__(self, scope: Construct, construct_id: str, *, source_dir: Path = LAYERS_DIR) -> None:
        super().__init__(scope, construct_id)
        self.layer_version = self._build_layer_version(source_dir)

    def _build_layer_version(self, source_dir: Path) -> lambda_.LayerVersion:
        return pip_layer(
            self,
            "LayerVersion",
            source_dir,
            LAYER_PACKAGE,
            "Hemera domain, ports and adapters with their third-party runtime",
            exclude=[f"**/{pattern}" for pattern in _NOT_SHIPPED],
        )


def pip_layer(
    scope: Construct,
    construct_id: str,
    source_dir: Path,
    package: str | None,
    description: str,
    exclude: Sequence[str] = (),
) -> lambda_.LayerVersion:
    """A Lambda layer bundled locally by `PipLayerBundler` (no Docker): `source_dir`'s
    requirements for the Lambda platform, plus `package` from it if given."""
    code = lambda_.Code.from_asset(
        str(source_dir),
        exclude=list(exclude),
        bundling=BundlingOptions(
            # Never pulled: the local bundler always succeeds or raises.
            image=DockerImage.from_registry("none"),
            local=PipLayerBundler(source_dir, package, LAYER_REQUIREMENTS),
        ),
    )
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=code,
        compatible_runtimes=[LAMBDA_RUNTIME],
        compatible_architectures=[LAMBDA_ARCHITECTURE],
        description=description,
    )
