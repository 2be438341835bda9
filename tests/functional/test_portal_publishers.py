"""The portal reads and writes a tenant's data through that tenant's session, but publishes
platform events and device commands with its own role: the session policy reaches only the
tenant's items and objects, so in AWS a publish through it would be refused (moto does not check
IAM, so this test looks at whose credentials each client carries)."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

TENANT = "sul-energia"


def _access_key(client: Any) -> str:
    return str(client._request_signer._credentials.get_frozen_credentials().access_key)


@pytest.fixture
def portal(moto_cloud) -> Any:
    spec = importlib.util.spec_from_file_location(
        "portal_publishers_app", REPO_ROOT / "functions/portal_api/app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portal_publishers_app"] = module
    spec.loader.exec_module(module)
    from chalicelib import alarms, commands, edits, scope

    return scope, alarms, commands, edits


def test_publishers_act_with_the_api_role_and_data_with_the_tenant_session(portal) -> None:
    scope, alarms, commands, edits = portal
    # Given the caller's tenant resolved (what `portal_route` does for each request)
    with scope.acting_for(TENANT):
        session = scope.settings().aws.credentials
        alarm_ports, command_ports, vee_ports = alarms._ports(), commands._ports(), edits._ports()
    assert session is not None and session.tenant_id == TENANT

    # Then what puts events on the bus or publishes to the RTUs carries the API's own credentials
    assert _access_key(alarm_ports.announcer._events) != session.access_key_id
    assert _access_key(vee_ports.announcer._events) != session.access_key_id
    publisher_target = getattr(command_ports.publisher, "_target", None)
    assert publisher_target is None or publisher_target.credentials is None
    # and the tenant's data is still reached through the tenant's session only
    assert scope.settings().aws.credentials is None  # outside the request: the API's settings
    with scope.acting_for(TENANT):
        assert scope.settings().aws.credentials == session
