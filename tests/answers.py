"""Every JSON answer the suite receives, held to the API's own document (openapi.json).

The session's app hands out `CheckedClient`s (tests/conftest.py): each 2xx JSON answer of an `/api`
operation is validated against the schema its operation documents for that status — a field the
document marks `required` must be there, a field not `nullable` must not be null, no field the
document does not name — so a generated client that trusts the document (contract/example) never
meets an answer it was not told about. A mismatch fails the test that received it.
"""

from __future__ import annotations

import functools
import json

import jsonschema
from flask.testing import FlaskClient
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map

NOT_CHECKED = ("/api/openapi.json", "/api/docs")


def as_json_schema(node):
    """OpenAPI 3.0's `nullable` as JSON Schema's null type (the rest is JSON Schema already)."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


class AnswerChecker:
    """The document's response schemas, by (path template, method, status), compiled once."""

    def __init__(self, document: dict, url_map: Map):
        self.document = document
        self.components = as_json_schema(document["components"])
        self.url_map = url_map
        self.checked: set[str] = set()  # the operations whose answers were held to the document

    def operation(self, path: str, method: str) -> tuple[str, dict] | None:
        try:
            rule, _ = self.url_map.bind("localhost").match(path, method=method, return_rule=True)
        except (NotFound, MethodNotAllowed):
            return None
        template = rule.rule
        for argument in rule.arguments:
            template = template.replace(f"<{argument}>", f"{{{argument}}}")
            for converter in ("int", "string", "path", "uuid"):
                template = template.replace(f"<{converter}:{argument}>", f"{{{argument}}}")
        found = self.document["paths"].get(template, {}).get(method.lower())
        return (template, found) if found else None

    @functools.cache  # noqa: B019 - one checker a session; its schemas are fixed
    def _validator(self, template: str, method: str, status: str) -> jsonschema.Draft4Validator | None:
        answer = self.document["paths"][template][method]["responses"].get(status)
        if isinstance(answer, dict) and "$ref" in answer:
            answer = self.document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        schema = (answer or {}).get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            return None
        return jsonschema.Draft4Validator({**as_json_schema(schema), "components": self.components})

    def check(self, method: str, path: str, response) -> None:
        if not (200 <= response.status_code < 300) or response.mimetype != "application/json":
            return
        if not path.startswith("/api/") or path.startswith(NOT_CHECKED):
            return
        found = self.operation(path, method)
        assert found is not None, f"{method} {path} answered {response.status_code}: not in the document"
        template, operation = found
        status = str(response.status_code)
        assert status in operation["responses"], f"{method} {template}: {status} is not documented"
        validator = self._validator(template, method.lower(), status)
        if validator is None:
            return
        errors = sorted(validator.iter_errors(response.get_json()), key=lambda error: list(error.path))
        if errors:
            where = "; ".join(
                f"{'/'.join(map(str, e.path)) or '(body)'}: {e.message[:200]}" for e in errors[:5]
            )
            raise AssertionError(
                f"{method} {template} {status}: the answer is not what the document says: {where}"
            )
        self.checked.add(f"{method.upper()} {template}")


def checker_for(app) -> AnswerChecker:
    checker = app.extensions.get("tests.answer_checker")
    if checker is None:
        with app.test_request_context():
            document = json.loads(
                json.dumps(app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict())
            )
        checker = app.extensions["tests.answer_checker"] = AnswerChecker(document, app.url_map)
    return checker


class CheckedClient(FlaskClient):
    """Flask's test client, holding every answer to the document (`AnswerChecker.check`)."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        checker_for(self.application).check(request.method, request.path, response)
        return response
