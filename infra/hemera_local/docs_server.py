"""Swagger UI for the Customer Portal API, served by the local cloud from `api_spec/openapi.yaml`.

A small HTTP server on 127.0.0.1 serves the Swagger UI page, its static files (from the
`swagger-ui-bundle-v2` package: no CDN at run time) and the spec with `servers` pointing at this
local cloud. It also forwards `/v1/…` to `chalice local`, so "Try it out" in the browser calls the
local API from the page's own origin: the portal API sends no CORS headers and needs none in AWS,
where the utility's portal calls it from its backend.
"""

from __future__ import annotations

import http.client
import mimetypes
import threading
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from swagger_ui_bundle import swagger_ui_path

# Hop-by-hop headers (RFC 9110 §7.6.1) are the forwarding server's own, never passed on.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


def spec_for_local_cloud(spec: dict[str, Any], docs_url: str, api_url: str) -> dict[str, Any]:
    """The spec as the local Swagger UI shows it: one server, this page's origin, which forwards
    to the local cloud's portal API."""
    server = {"url": docs_url, "description": f"The local cloud's portal API ({api_url}), via this page"}
    return {**spec, "servers": [server]}


def swagger_ui_page(title: str) -> str:
    """The Swagger UI page: the bundled scripts and styles, loading `openapi.yaml` beside it."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{escape(title)}</title>
  <link rel="stylesheet" href="swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js"></script>
  <script src="swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "openapi.yaml",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    }});
  </script>
</body>
</html>
"""


class ApiDocsServer:
    """Swagger UI at `url`, the spec at `url/openapi.yaml`, `/v1/…` forwarded to `api_url`."""

    def __init__(self, spec_path: Path, api_url: str, port: int = 0) -> None:
        self.spec_path = spec_path
        self.api_url = api_url
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> ApiDocsServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="api-docs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ApiDocsServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _spec(self) -> dict[str, Any]:
        # Read per request: an edited spec shows on reload, without restarting the local cloud.
        document: dict[str, Any] = yaml.safe_load(self.spec_path.read_text())
        return spec_for_local_cloud(document, self.url, self.api_url)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        docs = self
        static_dir = Path(str(swagger_ui_path))
        # Only the bundle's own files, by name: no path from a request ever reaches the filesystem.
        static = {entry.name: entry for entry in static_dir.iterdir() if entry.is_file()}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path.startswith("/v1/"):
                    self._forward()
                elif path in ("/", "/index.html"):
                    title = str(docs._spec()["info"]["title"])
                    self._send(200, "text/html; charset=utf-8", swagger_ui_page(title).encode())
                elif path == "/openapi.yaml":
                    body = yaml.safe_dump(docs._spec(), sort_keys=False, allow_unicode=True).encode()
                    self._send(200, "application/yaml; charset=utf-8", body)
                elif path.lstrip("/") in static:
                    file = static[path.lstrip("/")]
                    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                    self._send(200, kind, file.read_bytes())
                else:
                    self._send(404, "text/plain; charset=utf-8", b"not found\n")

            def do_HEAD(self) -> None:
                if self.path.startswith("/v1/"):
                    self._forward()
                else:
                    self.do_GET()

            def _forward_any(self) -> None:
                if self.path.startswith("/v1/"):
                    self._forward()
                else:
                    self._send(405, "text/plain; charset=utf-8", b"method not allowed\n")

            do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _forward_any

            def _forward(self) -> None:
                """Pass the request to `chalice local` and its answer back, as they are."""
                target = urlsplit(docs.api_url)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                connection = http.client.HTTPConnection(
                    target.hostname or "127.0.0.1", target.port, timeout=30
                )
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    content = answer.read()
                except OSError as exc:
                    message = f"the local portal API at {docs.api_url} did not answer: {exc}\n"
                    self._send(502, "text/plain; charset=utf-8", message.encode())
                    return
                finally:
                    connection.close()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the console is the demo's; chalice local logs the API calls

        return Handler
