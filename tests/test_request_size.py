"""MAX_CONTENT_LENGTH: a body over the limit is a 413 before any of it is read: before the signature
check of the public web form, before authentication, before JSON parsing."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import pytest
from werkzeug.test import create_environ, run_wsgi_app

HUGE = 150 * 1024 * 1024


class CountingStream(io.RawIOBase):
    """A request body of `size` bytes, made only as it is read; counts what was read."""

    def __init__(self, size: int):
        self.left = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = b"x" * n
        self.left -= n
        self.read_bytes += n
        return n


def _post(client, path, size, headers=None):
    """POST a body of `size` bytes straight to the WSGI app (the test client would read it first)."""
    stream = CountingStream(size)
    environ = create_environ(path, method="POST", content_type="application/json", headers=headers or {})
    environ.update({"wsgi.input": stream, "CONTENT_LENGTH": str(size)})
    body, status, _headers = run_wsgi_app(client.application, environ, buffered=True)
    return Answer(int(status.split()[0]), json.loads(b"".join(body))), stream


@dataclass
class Answer:
    status_code: int
    body: dict

    def get_json(self) -> dict:
        return self.body


@pytest.mark.parametrize("path", ["/api/capture/web-form", "/api/capture/inbound", "/api/auth/login"])
def test_an_oversized_anonymous_body_is_a_413_before_it_is_read(client, app, path):
    resp, stream = _post(client, path, HUGE)
    assert resp.status_code == 413
    assert resp.get_json()["code"] == "body_too_large" and "MAX_CONTENT_LENGTH" in resp.get_json()["message"]
    assert stream.read_bytes == 0


def test_an_oversized_body_is_a_413_before_authentication(client, tenant):
    resp, stream = _post(client, "/api/leads", HUGE, headers={"Authorization": "Bearer not-a-token"})
    assert resp.status_code == 413  # not 401: the size is refused first
    assert stream.read_bytes == 0


def test_the_limit_is_the_setting_and_a_body_within_it_is_read(client, app):
    limit = app.config["SETTINGS"].max_content_length
    assert limit == 1024 * 1024 == app.config["MAX_CONTENT_LENGTH"]
    resp, _ = _post(client, "/api/capture/web-form", limit + 1)
    assert resp.status_code == 413
    resp, stream = _post(client, "/api/capture/web-form", limit)
    assert resp.status_code == 401  # unsigned: refused by the signature check, after reading it
    assert stream.read_bytes == limit


def test_the_413_is_documented_on_every_operation_with_a_body(client):
    spec = client.get("/api/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "requestBody" in operation:
                assert "413" in operation["responses"], (method, path)


def test_the_bulk_import_takes_a_bigger_body_than_the_default(client, tenant):
    limit = client.application.config["MAX_CONTENT_LENGTH"]
    resp, stream = _post(client, "/api/leads/import", limit + 1, headers=tenant.headers())
    assert resp.status_code == 422  # read (as a broken JSON array), not refused for its size
    assert stream.read_bytes == limit + 1
    resp, stream = _post(client, "/api/leads/import", HUGE, headers=tenant.headers())
    assert resp.status_code == 413 and stream.read_bytes == 0
