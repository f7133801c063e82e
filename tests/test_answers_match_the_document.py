"""Response types without guesswork: every answer's schema lists as `required` each field the engine
always sends, and every answer the suite receives is held to the document (tests/answers.py), so a
client generated from openapi.json (contract/example) uses a lead's `id` without checking for
`undefined`."""

from __future__ import annotations

import copy
import json

import pytest
from marshmallow import class_registry

from app.platform.answers import AnswerSchema
from tests.answers import checker_for
from tests.leadkit import create_lead


def _answer_schemas(document: dict) -> set[str]:
    """The component schemas a 2xx answer names, directly or nested."""
    schemas, found = document["components"]["schemas"], set()

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] not in found:
                found.add(ref.rsplit("/", 1)[1])
                walk(schemas[ref.rsplit("/", 1)[1]])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for operations in document["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue  # the path's own parameters
            for status, answer in operation.get("responses", {}).items():
                if status.startswith("2"):
                    walk(answer)
    return found


def test_every_answer_schema_is_an_answer_whose_fields_are_required(client):
    document = client.get("/api/openapi.json").get_json()
    names = _answer_schemas(document)
    assert len(names) > 60
    for name in sorted(names):
        [schema] = set(
            class_registry._registry.get(name, [])
        )  # marshmallow's registry of schema classes by name
        assert issubclass(schema, AnswerSchema), f"{name} is an answer: make it an AnswerSchema"
        component = document["components"]["schemas"][name]
        optional = {
            field.data_key or field_name  # the name the document gives it (`not` for `not_`)
            for field_name, field in schema().fields.items()
            if field.metadata.get("optional") or field_name in schema.phi_fields()
        }
        assert set(component.get("required", [])) == set(component["properties"]) - optional, name


def test_a_new_lead_answers_with_every_required_field_and_nulls_only_where_nullable(client, tenant):
    lead = create_lead(client, tenant, role="clinic_admin")
    schema = client.get("/api/openapi.json").get_json()["components"]["schemas"]["LeadOut"]
    assert {"id", "first_name", "assigned_to_id", "created_at"} <= set(schema["required"])
    assert set(schema["required"]) <= set(lead)
    for name, value in lead.items():
        if value is None:
            assert '"nullable": true' in json.dumps(schema["properties"][name]), name


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda body: body.pop("id"), id="a required field missing"),
        pytest.param(lambda body: body.update(first_name=None), id="null where not nullable"),
        pytest.param(lambda body: body.update(surprise=1), id="a field the document does not name"),
    ],
)
def test_an_answer_unlike_the_document_fails_the_test_that_got_it(app, client, tenant, break_it):
    """The check the whole suite runs (tests/answers.py) can fail: the real answer passes it, the
    same answer changed does not."""
    resp = client.get(f"/api/leads/{create_lead(client, tenant)['id']}", headers=tenant.headers())
    checker = checker_for(app)
    checker.check("GET", resp.request.path, resp)
    changed = copy.copy(resp)
    body = resp.get_json()
    break_it(body)
    changed.get_json = lambda: body
    with pytest.raises(AssertionError, match="not what the document says"):
        checker.check("GET", resp.request.path, changed)
