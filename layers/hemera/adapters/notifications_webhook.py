"""Webhook POSTs with the standard library (urllib): one attempt, a short timeout, no redirects."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from hemera.domain.errors import DeliveryFailed

USER_AGENT = "Hemera-Webhooks/1"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would re-send (or drop) a signed body to a URL the tenant never configured.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibWebhookSender:
    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirects())

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
        )
        try:
            with self._opener.open(request, timeout=timeout_s) as response:
                status = int(response.status)
        except urllib.error.HTTPError as error:
            raise DeliveryFailed(f"HTTP {error.code}") from error
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DeliveryFailed(f"unreachable: {type(reason).__name__}: {reason}") from error
        if not 200 <= status < 300:
            raise DeliveryFailed(f"HTTP {status}")
        return status
