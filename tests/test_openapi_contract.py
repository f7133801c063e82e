"""The committed contract: openapi.json is the running code's document (`make openapi` writes it),
every operation has a deliberate, unique camelCase operationId, every error answer has the Error
body with its `code`, and the headers the engine reads and writes are in the document."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from app.devtools import openapi
from app.platform.api import contract
from app.platform.api.operation_ids import OPERATION_IDS, fallback_operation_id
from app.platform.idempotency import service as idempotency
from app.platform.stream import document as stream_document

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / openapi.COMMITTED_PATH
CAMEL_CASE = re.compile(r"^[a-z]+(?:[A-Z0-9][a-z0-9]*)*$")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@pytest.fixture(scope="module")
def document() -> dict:
    return openapi.document()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def _resolve(document: dict, answer: dict) -> dict:
    if "$ref" in answer:
        return document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    return answer


def test_the_committed_document_is_the_running_codes(document):
    current = openapi.render(document)
    committed = COMMITTED.read_text() if COMMITTED.exists() else ""
    if committed != current:
        diff = difflib.unified_diff(
            committed.splitlines(),
            current.splitlines(),
            "openapi.json (committed)",
            "the code's",
            lineterm="",
        )
        shown = "\n".join(list(diff)[:60])
        pytest.fail(
            "openapi.json differs from the running code's document: run `make openapi` "
            f"(python -m app.devtools.openapi > openapi.json) and commit it.\n{shown}",
            pytrace=False,
        )


def test_the_document_is_written_the_same_way_twice(document):
    assert openapi.render(document) == openapi.render(openapi.document())


def test_every_operation_has_its_own_deliberate_camel_case_operation_id(document):
    seen: dict[str, str] = {}
    unnamed = []
    for method, path, operation in operations(document):
        name = operation["operationId"]
        key = f"{method.upper()} {path}"
        if key not in OPERATION_IDS:
            unnamed.append(f'    "{key}": "{fallback_operation_id(method, path)}",')
        assert CAMEL_CASE.match(name), (key, name)
        assert name not in seen, f"{name} names both {seen[name]} and {key}"
        seen[name] = key
    assert not unnamed, "name these operations in app/platform/api/operation_ids.py:\n" + "\n".join(unnamed)
    stale = set(OPERATION_IDS) - set(seen.values())
    assert not stale, (
        f"app/platform/api/operation_ids.py names operations that no longer exist: {sorted(stale)}"
    )


# A person opened the link (an unsubscribe link, a tracked link in a message): a 404 is a page.
PAGES_FOR_PEOPLE = {("/api/unsubscribe/{token}", "404"), ("/r/{token}", "404")}


def test_every_error_answer_has_the_error_body_with_a_code(document):
    error = document["components"]["schemas"]["Error"]
    assert {"code", "message"} <= set(error["required"]) and error["properties"]["code"]["enum"]
    for method, path, operation in operations(document):
        for status, answer in operation["responses"].items():
            if int(status) < 400 or (path, status) == ("/readyz", "503"):  # readyz says which check
                continue
            if (path, status) in PAGES_FOR_PEOPLE:
                assert list(answer["content"]) == ["text/html"], (method, path, status)
                continue
            schema = _resolve(document, answer)["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_the_headers_read_and_written_are_documented(document):
    by_id = {op["operationId"]: (path, op) for _, path, op in operations(document)}

    def headers(operation_id: str, status: str) -> set[str]:
        return set(_resolve(document, by_id[operation_id][1]["responses"][status]).get("headers", {}))

    def parameters(operation_id: str) -> set[str]:
        refs = by_id[operation_id][1].get("parameters", [])
        return {p["$ref"].rsplit("/", 1)[1] for p in refs if "$ref" in p}

    assert "IdempotencyKey" in parameters("createLead") and "Idempotent-Replayed" in headers(
        "createLead", "201"
    )
    assert "IfMatch" in parameters("updateLead") and "412" in by_id["updateLead"][1]["responses"]
    assert "ETag" in headers("getLead", "200") and "ETag" in headers("updateLead", "200")
    assert "X-Pagination" in headers("listLeads", "200")
    for operation_id, (path, operation) in by_id.items():
        if path.startswith(("/healthz", "/readyz", "/metrics")):
            continue
        if path == stream_document.PATH:  # the stream process's: no rate limit, its own errors
            continue
        for status in operation["responses"]:
            limits = {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}
            assert limits <= headers(operation_id, status), (operation_id, status)
        assert "Retry-After" in headers(operation_id, "429") and "Retry-After" in headers(operation_id, "503")
        assert {"414", "431"} <= set(operation["responses"]), operation_id


def test_the_documented_idempotency_key_length_is_the_services():
    assert contract.MAX_IDEMPOTENCY_KEY_LENGTH == idempotency.MAX_KEY_LENGTH


def test_a_browser_frontend_may_read_every_documented_response_header(document, migrated_database, redis_url):
    from app import create_app
    from tests.conftest import test_settings

    origin = "https://frontend.example"
    app = create_app(test_settings(migrated_database, redis_url, cors_origins=[origin]))
    answer = app.test_client().get("/healthz", headers={"Origin": origin})
    exposed = {name.strip() for name in answer.headers["Access-Control-Expose-Headers"].split(",")}
    documented = {
        name
        for _, _, operation in operations(document)
        for answer in operation["responses"].values()
        for name in _resolve(document, answer).get("headers", {})
    }
    assert documented <= exposed, documented - exposed
    assert {"Idempotent-Replayed", "ETag", "X-Pagination", "RateLimit-Remaining", "Retry-After"} <= exposed
