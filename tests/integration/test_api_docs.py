"""The local cloud serves Swagger UI for the portal API: the page, its bundled files (no CDN), the
spec aimed at this local cloud, and "Try it out" calls that reach the API."""

from __future__ import annotations

import pytest
import requests
import yaml

from tests.openapi_contract import SPEC

pytestmark = pytest.mark.integration

TITLE = yaml.safe_load(SPEC.read_text())["info"]["title"]


def test_the_swagger_ui_page_and_its_files_are_served_locally(local_cloud):
    page = requests.get(f"{local_cloud.docs_url}/", timeout=10)
    assert page.status_code == 200
    assert f"<title>{TITLE}</title>" in page.text.replace("&amp;", "&")
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert requests.get(f"{local_cloud.docs_url}/{asset}", timeout=10).status_code == 200, asset
    assert requests.get(f"{local_cloud.docs_url}/../pyproject.toml", timeout=10).status_code == 404


def test_the_spec_is_served_with_this_local_cloud_as_its_server(local_cloud):
    response = requests.get(f"{local_cloud.docs_url}/openapi.yaml", timeout=10)
    assert response.status_code == 200
    served = yaml.safe_load(response.text)
    assert served["info"]["title"] == TITLE
    assert served["paths"] == yaml.safe_load(SPEC.read_text())["paths"]
    assert [server["url"] for server in served["servers"]] == [local_cloud.docs_url]


def test_try_it_out_reaches_the_local_api(local_cloud, api_keys):
    base = yaml.safe_load(requests.get(f"{local_cloud.docs_url}/openapi.yaml", timeout=10).text)["servers"][0]
    meters = requests.get(
        f"{base['url']}/v1/meters", headers={"x-api-key": api_keys["sul-energia"]}, timeout=10
    )
    assert meters.status_code == 200
    assert "sul-m-1001" in [meter["id"] for meter in meters.json()["items"]]
    refused = requests.get(f"{base['url']}/v1/meters", headers={"x-api-key": "hmk_wrong"}, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == "application/problem+json"
