"""The OpenAPI contract is valid OpenAPI 3.1 and names exactly the routes the Chalice app serves."""

from __future__ import annotations

import importlib.util
import sys

import yaml
from openapi_spec_validator import validate

from tests.conftest import REPO_ROOT
from tests.openapi_contract import SPEC

# A path item also holds `parameters`, `summary`, `servers`…: only these keys are operations.
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _portal_app():
    spec = importlib.util.spec_from_file_location(
        "portal_app_routes", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_app_routes"] = module
    spec.loader.exec_module(module)
    return module.app


def test_the_spec_is_valid_openapi_3_1():
    document = yaml.safe_load(SPEC.read_text())
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_the_spec_and_the_app_have_the_same_routes_and_methods():
    document = yaml.safe_load(SPEC.read_text())
    in_spec = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    in_app = {(path, method) for path, methods in _portal_app().routes.items() for method in methods}
    assert sorted(in_app - in_spec) == [], "served by the app but missing from the spec"
    assert sorted(in_spec - in_app) == [], "in the spec but not served by the app"


def test_every_route_but_health_requires_the_api_key_or_a_bearer_token():
    document = yaml.safe_load(SPEC.read_text())
    assert document["security"] == [{"ApiKey": []}, {"Bearer": []}]
    assert document["components"]["securitySchemes"]["Bearer"] == {
        **document["components"]["securitySchemes"]["Bearer"],
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    operations = {
        (path, method.upper()): operation.get("security", document["security"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    public = [route for route, security in operations.items() if security == []]
    assert public == [("/v1/health", "GET")]
    # Every other route: each alternative names a credential, and no alternative is anonymous.
    for route, security in operations.items():
        if route in public:
            continue
        assert security and all(requirement.keys() & {"ApiKey", "Bearer"} for requirement in security), route


def _resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = document["components"][section][name]
    return node


def _object_schemas(document: dict, node: object, where: str, seen: set[int]) -> list[tuple[str, dict]]:
    """Every object schema (with `properties`) reachable from `node`, named by where it is. The
    parts of an `allOf` are left out: their composite is closed by `unevaluatedProperties`."""
    if not isinstance(node, dict):
        return []
    node = _resolve(document, node)
    if id(node) in seen:
        return []
    seen.add(id(node))
    found = [(where, node)] if "properties" in node else []
    for key, child in node.items():
        if key == "properties":
            for name, prop in child.items():
                found += _object_schemas(document, prop, f"{where}.{name}", seen)
        elif key in ("items", "additionalProperties", "anyOf", "oneOf"):
            for sub in child if isinstance(child, list) else [child]:
                found += _object_schemas(document, sub, f"{where}[{key}]", seen)
    return found


# RFC 9457: problem details are extensible by design (members beyond type/title/status/detail).
EXTENSIBLE = ("Problem",)


def test_response_schemas_are_closed_so_the_conformance_checks_see_any_drift():
    """Schema-level drift: every object a response can carry allows no property the spec does
    not name (`additionalProperties` or, for compositions, `unevaluatedProperties` false), so
    schemathesis and the functional tests' `assert_conforms` fail when the implementation adds or
    renames a field; `required` lists make them fail when it drops one."""
    document = yaml.safe_load(SPEC.read_text())
    extensible = {id(document["components"]["schemas"][name]) for name in EXTENSIBLE}
    open_schemas = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for status, response in operation.get("responses", {}).items():
                response = _resolve(document, response)
                for media, content in response.get("content", {}).items():
                    where = f"{method.upper()} {path} {status} {media}"
                    for name, schema in _object_schemas(document, content.get("schema", {}), where, set()):
                        closed = (
                            schema.get("additionalProperties") is False
                            or schema.get("unevaluatedProperties") is False
                        )
                        if not closed and id(schema) not in extensible:
                            open_schemas.append(name)
    assert sorted(set(open_schemas)) == []
