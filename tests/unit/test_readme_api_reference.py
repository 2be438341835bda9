"""The README's API reference lists every route of the contract (and no route it does not have)."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO_ROOT
from tests.openapi_contract import SPEC

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def test_the_readme_api_reference_names_exactly_the_routes_of_the_spec():
    document = yaml.safe_load(SPEC.read_text())
    in_spec = {
        f"{m.upper()} {path}" for path, item in document["paths"].items() for m in item if m in HTTP_METHODS
    }
    readme = (REPO_ROOT / "README.md").read_text()
    after_heading = readme.split("### API reference: every route", 1)[1]
    section = after_heading.split("Details of each route follow.", 1)[0]
    in_readme = set(re.findall(r"^\| `((?:GET|POST|PUT|DELETE|PATCH) /v1[^`]*)` \|", section, re.MULTILINE))
    assert sorted(in_spec - in_readme) == [], "routes missing from the README's API reference"
    assert sorted(in_readme - in_spec) == [], "README lists routes the API does not have"
