"""No answer outside the document for an oversized request: a request line over the engine's limit
is its JSON 414 `uri_too_long`, oversized headers a JSON 431 `headers_too_large`, through the
Procfile's real gunicorn; and a long filter list that gunicorn's default (4,094 bytes) refused as an
HTML 400 now reaches the app."""

from __future__ import annotations

import http.client
import json

import pytest

from app.devtools.local_redis import free_port
from app.platform.api import MAX_REQUEST_LINE
from tests.workers import gunicorn, worker_env


def _long_filter(length: int) -> str:
    """`/api/leads/tasks?assigned_to_id=1000000001&...` of at least `length` bytes."""
    path, n = "/api/leads/tasks?", 1_000_000_001
    while len(path) < length:
        path += f"assigned_to_id={n}&"
        n += 1
    return path.rstrip("&")


def test_an_oversized_request_line_is_a_json_414_in_the_app(client, tenant):
    resp = client.get(_long_filter(MAX_REQUEST_LINE + 100), headers=tenant.headers())
    body = resp.get_json()
    assert resp.status_code == 414 and body["code"] == "uri_too_long" and body["message"]


@pytest.fixture(scope="module")
def web(app):
    port = free_port()
    with gunicorn(worker_env(app.config["SETTINGS"]), port, workers=1):
        yield port


def _get(port: int, target: str, headers: dict | None = None) -> tuple[int, str, dict | str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", target, headers=headers or {})
        answer = connection.getresponse()
        raw = answer.read().decode()
        content_type = answer.getheader("Content-Type", "")
        return answer.status, content_type, json.loads(raw) if "json" in content_type else raw
    finally:
        connection.close()


def test_through_gunicorn_a_long_filter_list_reaches_the_app(web, tenant):
    # Past gunicorn's default line limit: the app reads it (and says the list is too long for it).
    status, content_type, body = _get(web, _long_filter(6000), tenant.headers())
    assert (status, content_type) == (422, "application/json"), body
    assert body["code"] == "validation_error" and "assigned_to_id" in body["errors"]["query"]


@pytest.mark.parametrize("length", [MAX_REQUEST_LINE + 100, 9000, 20_000])
def test_through_gunicorn_an_oversized_request_line_is_the_json_414(web, tenant, length):
    status, content_type, body = _get(web, _long_filter(length), tenant.headers())
    assert (status, content_type) == (414, "application/json"), body
    assert body["code"] == "uri_too_long" and body["message"]


@pytest.mark.parametrize("headers", [{"X-Big": "x" * 9000}, {f"X-H{n}": "1" for n in range(120)}])
def test_through_gunicorn_oversized_headers_are_the_json_431(web, headers):
    status, content_type, body = _get(web, "/api/me", headers)
    assert (status, content_type) == (431, "application/json"), body
    assert body["code"] == "headers_too_large" and body["message"]
