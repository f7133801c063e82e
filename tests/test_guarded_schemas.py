"""Every request schema of every registered endpoint uses the project's guarded fields (app/platform/api).

Bad input must be a 4xx naming the field, never a 500: text is checked for NUL characters and lone
surrogates by `RequestSchema`, timestamps are `UTCDateTime` (bounded years), integers and numbers
carry a range that fits the database's columns, text has a maximum length, booleans are
`StrictBoolean` (true or false, never 0 or 1). A new endpoint whose
schema bypasses these fails here, before a fuzzer or a user finds the 500.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.platform.api import MAX_TEXT_LENGTH, RequestSchema, StrictBoolean, UTCDate, UTCDateTime
from app.platform.db import MAX_ID

INT_MIN, INT_MAX = -(2**31), MAX_ID  # PostgreSQL `integer`


def request_schemas(app) -> list[tuple[str, ma.Schema]]:
    """(endpoint and method, schema) for every argument schema of every registered view."""
    found = []
    for endpoint, view in app.view_functions.items():
        view_class = getattr(view, "view_class", None)
        methods = (
            [(m, getattr(view_class, m.lower(), None)) for m in view_class.methods or ()]
            if view_class
            else [("", view)]
        )
        for method, func in methods:
            arguments = (getattr(func, "_apidoc", None) or {}).get("arguments", {})
            for parameter in arguments.get("parameters", []):
                schema = parameter["schema"]
                schema = schema() if isinstance(schema, type) else schema
                found.append((f"{method} {endpoint} ({parameter['in']})", schema))
    return found


def _range_of(field: fields.Field) -> validate.Range | None:
    validators = field.validators
    for validator in validators:
        if isinstance(validator, validate.Range) and validator.min is not None and validator.max is not None:
            return validator
    return None


def _max_length_of(field: fields.Field) -> int | None:
    for validator in field.validators:
        if isinstance(validator, validate.Length) and validator.max is not None:
            return validator.max
        if isinstance(validator, validate.OneOf):
            return max((len(str(c)) for c in validator.choices), default=0)
    return None


def field_problems(name: str, field: fields.Field) -> list[str]:
    """Why `field` bypasses the guards (empty when it does not)."""
    if field.metadata.get("guarded_by") or getattr(field, "guarded_by", None):
        return []  # a field of its own, or free-form on purpose: what it names bounds it
    if isinstance(field, fields.Nested):
        nested = field.schema
        return schema_problems(nested, prefix=f"{name}.")
    if isinstance(field, fields.List | fields.Tuple):
        inners = [field.inner] if isinstance(field, fields.List) else list(field.tuple_fields)
        problems = (
            []
            if _max_length_of(field) or isinstance(field, fields.Tuple)
            else [f"{name}: a list without a maximum length (validate.Length(max=...))"]
        )
        for inner in inners:
            problems += field_problems(f"{name}[]", inner)
        return problems
    if isinstance(field, fields.Dict):
        problems = []
        for part, inner in (("keys", field.key_field), ("values", field.value_field)):
            if inner is not None:
                problems += field_problems(f"{name}.<{part}>", inner)
        return problems
    if isinstance(field, fields.Date):  # before DateTime: marshmallow's Date is a DateTime
        return [] if isinstance(field, UTCDate) else [f"{name}: a date that is not UTCDate"]
    if isinstance(field, fields.DateTime):
        return [] if isinstance(field, UTCDateTime) else [f"{name}: a datetime that is not UTCDateTime"]
    if isinstance(field, fields.Integer):
        bounds = _range_of(field)
        if bounds is None or bounds.min < INT_MIN or bounds.max > INT_MAX:
            return [f"{name}: an integer without a range inside the database's integer (id_field or Range)"]
        return []
    if isinstance(field, fields.Number):  # Float, Decimal
        return [] if _range_of(field) else [f"{name}: a number without a range"]
    if isinstance(field, fields.String):
        limit = _max_length_of(field)
        if limit is None or limit > MAX_TEXT_LENGTH:
            return [f"{name}: text without a maximum length (validate.Length(max=...))"]
        return []
    if isinstance(field, fields.Boolean):  # marshmallow's own takes 0 and 1 (and "yes") as booleans
        return [] if isinstance(field, StrictBoolean) else [f"{name}: a boolean that is not StrictBoolean"]
    if isinstance(field, fields.Constant):
        return []
    return [f"{name}: a {type(field).__name__} field the guards do not cover"]


def schema_problems(schema: ma.Schema, prefix: str = "") -> list[str]:
    problems = []
    if not isinstance(schema, RequestSchema):
        problems.append(f"{prefix or 'schema'}: {type(schema).__name__} is not a RequestSchema")
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        problems += field_problems(prefix + name, field)
    return problems


def test_every_request_schema_uses_the_guarded_fields(app):
    schemas = request_schemas(app)
    assert len(schemas) > 50, "the walk found the app's request schemas"
    problems = [f"{where}: {problem}" for where, schema in schemas for problem in schema_problems(schema)]
    assert problems == []


def test_the_walk_flags_an_unguarded_schema():
    class Unguarded(ma.Schema):
        when = fields.AwareDateTime()
        count = fields.Integer()
        name = fields.String()
        tags = fields.List(fields.String(validate=validate.Length(max=10)))
        active = fields.Boolean()

    problems = schema_problems(Unguarded())
    assert len(problems) == 6, problems
