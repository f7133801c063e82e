"""Every integer field of every request refuses a fraction: a 422 naming the field, never a silent
truncation (issue 62: `PUT /api/task-templates/{id}` took `due_offset_minutes: 2.6e-42` as 0).

One case per integer field the OpenAPI document names in a JSON body (top level, in a nested object,
in a list of objects, a list of integers) and per integer query parameter, sent through the API
with a fraction: the answer is a 422 whose errors name that field. The guard is in one place
(app/platform/api RequestSchema), so a new endpoint's integers follow without a line of its own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.platform.api import NOT_WHOLE
from tests.leadkit import post_signed

DOCUMENT = json.loads((Path(__file__).resolve().parents[1] / "openapi.json").read_text())
COMPONENTS = DOCUMENT["components"]["schemas"]
FRACTIONS = (2.6e-42, 1.5)
# The signed capture endpoints take their scope's signature before they read the body.
SIGNED_SCOPES = {"/api/capture/appointment": "appointment", "/api/capture/call": "call"}


def _resolved(schema: dict) -> dict:
    while "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _is_integer(schema: dict) -> bool:
    kind = _resolved(schema).get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


def _integer_places(schema: dict, depth: int = 0):
    """(path of names, body builder) for each integer a JSON body of `schema` may hold."""
    for name, prop in _resolved(schema).get("properties", {}).items():
        prop = _resolved(prop)
        if _is_integer(prop):
            yield (name,), lambda v, n=name: {n: v}
        elif prop.get("type") == "array" and _is_integer(prop.get("items", {})):
            yield (name,), lambda v, n=name: {n: [v]}
        elif depth < 2 and prop.get("type") == "array" and _resolved(prop.get("items", {})).get("properties"):
            for inner, build in _integer_places(prop["items"], depth + 1):
                yield (name, *inner), lambda v, n=name, b=build: {n: [b(v)]}
        elif depth < 2 and prop.get("properties"):
            for inner, build in _integer_places(prop, depth + 1):
                yield (name, *inner), lambda v, n=name, b=build: {n: b(v)}


def _cases():
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                for names, build in _integer_places(body["schema"]):
                    yield pytest.param(method, path, names, build, id=f"{method} {path} {'.'.join(names)}")
            for parameter in operation.get("parameters", []):
                in_query = isinstance(parameter, dict) and parameter.get("in") == "query"
                if in_query and _is_integer(parameter.get("schema", {})):
                    name = parameter["name"]
                    yield pytest.param(method, path, ("?", name), None, id=f"{method} {path} ?{name}")


CASES = list(_cases())


def _named(errors, names: tuple[str, ...]) -> bool:
    """Whether `errors` (marshmallow's, by field; a list's by index) name the field at `names`."""
    if not names:
        return True
    if not isinstance(errors, dict):
        return False
    if names[0] in errors:
        return _named(errors[names[0]], names[1:])
    return any(_named(inner, names) for key, inner in errors.items() if str(key).isdigit())


PLATFORM_TOKEN = "platform-operator-token-0123456789abcdef"


def _send(client, tenant, method: str, path: str, body: dict | None, query: dict | None):
    url = re.sub(r"\{[^}]+\}", "1", path)  # any id: the body is read before the record is
    if path in SIGNED_SCOPES:
        return post_signed(client, tenant.clinic, path, body, SIGNED_SCOPES[path])
    # The platform operator's API takes the operator's token, not a clinic's.
    headers = (
        {"Authorization": f"Bearer {PLATFORM_TOKEN}"}
        if path.startswith("/api/platform/")
        else tenant.headers()
    )
    return client.open(url, method=method.upper(), json=body, query_string=query, headers=headers)


def test_the_document_has_the_integer_fields_of_issue_62():
    ids = {case.id for case in CASES}
    assert "put /api/task-templates/{template_id} due_offset_minutes" in ids
    assert "put /api/clinic settings.no_show_grace_minutes" in ids
    assert len(ids) > 50


@pytest.mark.parametrize("fraction", FRACTIONS)
@pytest.mark.parametrize(("method", "path", "names", "build"), CASES)
def test_a_fraction_for_an_integer_is_a_422_naming_the_field(
    app, client, tenant, monkeypatch, method, path, names, build, fraction
):
    monkeypatch.setattr(app.config["SETTINGS"], "platform_token", PLATFORM_TOKEN)
    if names[0] == "?":
        resp = _send(client, tenant, method, path, None, {names[1]: str(fraction)})
        where, names = "query", names[1:]
    else:
        resp = _send(client, tenant, method, path, build(fraction), None)
        where = "json"
    assert resp.status_code == 422, resp.get_json()
    errors = resp.get_json()["errors"][where]
    assert _named(errors, names), errors
    if where == "json" and len(names) == 1:
        assert errors[names[0]] == [NOT_WHOLE]
