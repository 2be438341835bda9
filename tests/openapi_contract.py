"""Checks an HTTP exchange against `api_spec/openapi.yaml` with openapi-core (request and response)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

SPEC = Path(__file__).resolve().parents[1] / "api_spec" / "openapi.yaml"


def _text(body: bytes | str, charset: str = "utf-8") -> str:
    return body.decode(charset) if isinstance(body, bytes) else body


@cache
def openapi() -> OpenAPI:
    # RFC 9457 problem documents are JSON; openapi-core only knows `application/json` by name,
    # and hands other bodies (CSV) over as bytes where the spec says string.
    deserializers = {"application/problem+json": json.loads, "text/csv": _text, "application/atom+xml": _text}
    config = Config(extra_media_type_deserializers=deserializers)
    return OpenAPI.from_file_path(str(SPEC), config=config)


def assert_conforms(
    url: str,
    headers: dict[str, str],
    status: int,
    response_headers: dict[str, str],
    body: bytes,
    method: str = "GET",
    request_body: bytes | None = None,
) -> None:
    """Raise if the request or its response does not match the contract."""
    request = requests.Request(method, url, headers=headers, data=request_body)
    response = requests.Response()
    response.status_code = status
    response.headers.update(response_headers)
    response._content = body
    openapi().validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response))
