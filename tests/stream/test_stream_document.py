"""The event stream in openapi.json: `GET /api/me/events` documented with a server of its own and its
event types, and what the real stream process serves at that path matches it (its answer's type, an
error's body, each event's type and fields)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import httpx
import pytest

from app.devtools import openapi
from app.domains.conversations import service as conversations
from app.domains.conversations import threads
from app.domains.outbound.inbox import STREAM_TYPES
from app.platform.stream import document, feed
from tests.leadkit import create_lead
from tests.stream.kit import StreamReader, only_assignee, stream_process

ROOT = Path(__file__).resolve().parent.parent.parent
COMMITTED = json.loads((ROOT / openapi.COMMITTED_PATH).read_text())


def _literal_note_types() -> set[str]:
    """Every `StreamNote(type="...")` the code writes with a literal type."""
    found = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == (
                "StreamNote"
            ):
                for keyword in node.keywords:
                    if keyword.arg == "type" and isinstance(keyword.value, ast.Constant):
                        found.add(keyword.value.value)
    return found


def test_every_event_type_the_engine_sends_is_documented_and_no_other():
    sent = _literal_note_types() | set(STREAM_TYPES.values()) | {"notification", "sla.breach", feed.RESET}
    sent |= {conversations.MESSAGE_EVENT, threads.READ_EVENT, threads.STATUS_EVENT}
    assert sent == set(document.EVENT_TYPES)
    operation = COMMITTED["paths"][document.PATH]["get"]
    schema = operation["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert set(schema["properties"]["type"]["enum"]) == sent


def test_the_stream_has_a_server_of_its_own_in_the_document():
    operation = COMMITTED["paths"][document.PATH]["get"]
    [server] = operation["servers"]
    assert server["url"] != COMMITTED["servers"][0]["url"]  # not the API's: the stream process's
    assert server["variables"]["stream"]["default"].startswith("http")
    assert operation["operationId"] == "streamMyEvents"


@pytest.fixture
def stream(app):
    with stream_process(app.config["SETTINGS"]) as base:
        yield base


def test_the_documented_path_is_what_the_stream_process_serves(app, client, tenant, celery_worker, stream):
    operation = COMMITTED["paths"][document.PATH]["get"]
    url = f"{stream}{document.PATH}"  # the server's base and the documented path
    refused = httpx.get(url, timeout=10)
    assert str(refused.status_code) in operation["responses"] and refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"  # the documented Error body
    only_assignee(app, tenant, "treatment_coordinator")
    with StreamReader(url, tenant.headers("treatment_coordinator")) as reader:
        assert reader.status == 200
        assert reader.answer.headers["content-type"].startswith("text/event-stream")
        lead = create_lead(client, tenant, role="front_desk")
        event = reader.wait_for(lambda e: e["event"] == "lead.assigned")
    schema = operation["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert event["event"] in schema["properties"]["type"]["enum"]
    assert set(schema["required"]) <= set(event["data"]) and event["data"]["type"] == event["event"]
    assert event["id"] == str(event["data"]["id"]) and event["data"]["lead"]["id"] == lead["id"]
