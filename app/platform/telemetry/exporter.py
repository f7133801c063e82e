"""A worker or beat container's own /metrics, on FOLLOWUP_METRICS_PORT.

Under docker-compose each container keeps its prometheus-client files in a directory of its own
(files are named by pid, and every container has small pids: a shared one mixes them), so the web's
/metrics sums the web's processes only. Each worker container serves here the samples of its own
processes (the worker and its pool children) for Prometheus to scrape, behind the web's bearer token
(METRICS_TOKEN): without a token or a port, nothing listens.
"""

from __future__ import annotations

import hmac
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.platform.telemetry import metrics


def metrics_app(token: str):
    """The WSGI app: GET /metrics with `Authorization: Bearer <token>`; 401 without it, 404 elsewhere."""
    expected = f"Bearer {token}".encode()

    def serve(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            return _answer(start_response, "404 Not Found", b"not found\n")
        given = environ.get("HTTP_AUTHORIZATION", "").encode()
        if not hmac.compare_digest(given, expected):
            return _answer(start_response, "401 Unauthorized", b"bearer token required\n")
        return _answer(
            start_response, "200 OK", generate_latest(metrics.process_samples()), CONTENT_TYPE_LATEST
        )

    return serve


def _answer(start_response, status: str, body: bytes, content_type: str = "text/plain; charset=utf-8"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        """No access log line per scrape (stderr is the JSON log stream)."""


def start(*, settings, host: str = "0.0.0.0") -> WSGIServer | None:
    """Serve this process's /metrics from a daemon thread when the settings ask for it."""
    if not (settings.metrics_port and settings.metrics_token):
        return None
    server = make_server(
        host,
        settings.metrics_port,
        metrics_app(settings.metrics_token),
        server_class=_Server,
        handler_class=_Quiet,
    )
    threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True).start()
    return server
