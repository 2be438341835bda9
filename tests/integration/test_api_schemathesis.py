"""The contract against the running API: schemathesis generates requests from `api_spec/openapi.yaml`
(valid ones and ones that break the schema) and sends them to `chalice local` with a demo tenant's
key. No request may cause a 5xx, and every response must be one the spec documents: its status
code, its content type and its body's schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.openapi_contract import SPEC

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# Loaded from the file; the base URL (this run's `chalice local`, on a free port) is given per call.
schema = schemathesis.openapi.from_path(SPEC)
# Methods a route does not have are sent too (each must be a 4xx), but not TRACE and QUERY:
# `chalice local`'s http.server has no handler for them (501 of its own) and API Gateway never
# passes them to the function.
schema.config.phases.coverage.unexpected_methods = {"get", "put", "post", "delete", "options", "patch"}


# Bounded and repeatable: at most 25 examples per operation, derandomized (same cases every run),
# no deadline (the first call to a cold `chalice local` route may take a while).
@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_the_contract_says(case, local_cloud, api_keys):
    # As Sul Energia (a tenant key); only loopback is ever called.
    case.call_and_validate(
        base_url=local_cloud.api_url,
        headers={"x-api-key": api_keys["sul-energia"]},
        checks=CHECKS,
        timeout=10,
    )
