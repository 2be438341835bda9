"""The JSON Web Key Set of a Cognito user pool, fetched over HTTPS (stdlib only: the Lambda
layer carries no HTTP client)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

# A cold start waits at most this long for the key set; a slow IdP must not hold a request.
FETCH_TIMEOUT_S = 5.0


def fetch_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
        document: dict[str, Any] = json.loads(response.read())
    return document


class HttpKeySet:
    """A zero-argument loader of one pool's key set, for `CognitoTokenVerifier`."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self) -> dict[str, Any]:
        return fetch_json(self.url)
