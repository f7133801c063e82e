"""The PHI field policy walked over every response schema of app/ (no database, no request): a schema
with a field the policy names dumps none of them for a reader without `lead:phi`, and all of them for
one with it. A new schema that carries lead, task or activity PHI past the policy fails here.

Schemas are found by introspection: every marshmallow Schema subclass defined under app/ that is not
a request schema and has a field (or a nested schema, at any depth) whose name is in the policy's PHI
field set. Each is dumped from a sample holding a value in every such field."""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from types import SimpleNamespace

import pytest
from marshmallow import Schema, class_registry, fields

import app
from app.api import RequestSchema
from app.auth import phi_policy
from app.auth.roles import ROLE_PERMISSIONS, Actor, Permission, Role

# Fields named like PHI that hold none: the clinic's own configuration, written by its staff about
# its process, never about a patient. (schema, field) -> why.
NOT_PHI = {
    ("LeadSourceOut", "description"): "a lead source's description: the clinic's marketing channel",
    ("RuleOut", "description"): "an automation rule's description: the clinic's process",
    ("SequenceOut", "description"): "a sequence's description: the clinic's process",
    ("StageOut", "description"): "a pipeline stage's description: the clinic's process",
    ("TemplateOut", "description"): "a task template's text: the same for every lead",
    ("WebhookOut", "description"): "a webhook subscription's label",
    ("WebhookCreatedOut", "description"): "a webhook subscription's label",
}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _app_response_schemas() -> list[type[Schema]]:
    for info in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(info.name)
    found = {
        cls
        for cls in _subclasses(Schema)
        if cls.__module__.startswith("app.") and not issubclass(cls, RequestSchema)
    }
    return sorted(found, key=lambda cls: (cls.__module__, cls.__name__))


def _nested(field) -> type[Schema] | None:
    """The schema class a field nests (directly or as a list's items), if any."""
    inner = getattr(field, "inner", field)
    if not isinstance(inner, fields.Nested):
        return None
    nested = inner.nested
    if isinstance(nested, str):  # by name, from marshmallow's registry
        nested = class_registry.get_class(nested, all=False)
    elif callable(nested) and not isinstance(nested, type):  # a lambda returning a schema
        nested = nested()
    return type(nested) if isinstance(nested, Schema) else nested


def _phi_named(schema: type[Schema]) -> list[str]:
    return [
        name
        for name in schema._declared_fields
        if name in phi_policy.ALL_FIELDS and (schema.__name__, name) not in NOT_PHI
    ]


def _carries_phi(schema: type[Schema], seen: frozenset = frozenset()) -> bool:
    if schema in seen:
        return False
    return bool(_phi_named(schema)) or any(
        (inner := _nested(field)) is not None and _carries_phi(inner, seen | {schema})
        for field in schema._declared_fields.values()
    )


def _sample_value(field):
    if isinstance(field, fields.List):
        return [_sample_value(field.inner)]
    if isinstance(field, fields.DateTime):
        return dt.datetime(2020, 1, 2, 3, 4, tzinfo=dt.UTC)
    if isinstance(field, fields.Date):
        return dt.date(2013, 4, 2)
    if isinstance(field, fields.Number):
        return 1
    if isinstance(field, fields.Boolean):
        return True
    return "sample text"


def _sample(schema: type[Schema]) -> SimpleNamespace:
    """An object holding a value in every PHI-named field and in every nested schema that has one."""
    values = {}
    for name, field in schema._declared_fields.items():
        inner = _nested(field)
        attribute = field.attribute or name
        if "." in attribute:
            continue
        if inner is not None and _carries_phi(inner):
            one = _sample(inner)
            values[attribute] = [one] if isinstance(field, fields.List) else one
        elif name in _phi_named(schema):
            values[attribute] = _sample_value(field)
    return SimpleNamespace(**values)


def _phi_keys(dumped, path="") -> list[str]:
    """Every PHI-named key anywhere in a dump (by its path)."""
    if isinstance(dumped, list):
        return [key for item in dumped for key in _phi_keys(item, path)]
    if not isinstance(dumped, dict):
        return []
    found = [f"{path}{key}" for key in dumped if key in phi_policy.ALL_FIELDS]
    return found + [key for name, value in dumped.items() for key in _phi_keys(value, f"{path}{name}.")]


def _user(role: Role) -> Actor:
    return Actor(clinic_id=1, permissions=ROLE_PERMISSIONS[role], user_id=7, role=role.value)


def _key(*permissions: Permission) -> Actor:
    return Actor(clinic_id=1, permissions=frozenset(permissions), api_key_id=3)


PHI_SCHEMAS = [schema for schema in _app_response_schemas() if _carries_phi(schema)]
WITHOUT_PHI = {
    "front_desk": _user(Role.FRONT_DESK),
    "api key with lead:read": _key(Permission.READ, Permission.CREATE, Permission.UPDATE),
    "the engine": Actor.engine(1, "automation"),
    "nobody bound": None,
}
WITH_PHI = {
    "treatment_coordinator": _user(Role.TREATMENT_COORDINATOR),
    "clinic_admin": _user(Role.CLINIC_ADMIN),
    "doctor": _user(Role.DOCTOR),
    "api key with lead:phi": _key(Permission.READ, Permission.READ_PHI),
}


def test_the_walk_finds_the_lead_task_and_activity_schemas():
    names = {schema.__name__ for schema in PHI_SCHEMAS}
    assert {"LeadOut", "LeadCreatedOut", "TaskOut", "MyTaskOut", "ActivityOut"} <= names


@pytest.mark.parametrize("schema", PHI_SCHEMAS, ids=lambda schema: schema.__name__)
@pytest.mark.parametrize("reader", list(WITHOUT_PHI), ids=str)
def test_a_reader_without_lead_phi_gets_no_phi_field(schema, reader):
    with phi_policy.reading_as(WITHOUT_PHI[reader]):
        dumped = schema().dump(_sample(schema))
    assert _phi_keys(dumped) == [], f"{schema.__name__} dumps PHI past the policy (app/auth/phi_policy.py)"


@pytest.mark.parametrize("schema", PHI_SCHEMAS, ids=lambda schema: schema.__name__)
@pytest.mark.parametrize("reader", list(WITH_PHI), ids=str)
def test_a_reader_with_lead_phi_gets_every_phi_field(schema, reader):
    with phi_policy.reading_as(WITH_PHI[reader]):
        dumped = schema().dump(_sample(schema))
    assert set(_phi_named(schema)) <= set(dumped)


def test_every_phi_field_is_withheld_by_kind_not_left_to_chance():
    """Each PHI-named field of a PhiSchema is one of its kind's policy fields (else no reader sees it,
    or a reader without the permission would, depending on the kind chosen)."""
    for schema in PHI_SCHEMAS:
        if issubclass(schema, phi_policy.PhiSchema) and schema.PHI_KIND:
            assert set(_phi_named(schema)) <= set(phi_policy.FIELDS[schema.PHI_KIND]), schema.__name__


def test_roles_and_keys_hold_lead_phi_as_the_policy_says():
    assert [role for role in Role if phi_policy.may_read_phi(_user(role))] == [
        Role.TREATMENT_COORDINATOR,
        Role.CLINIC_ADMIN,
        Role.DOCTOR,
    ]
    assert not phi_policy.may_read_phi(_key(*(set(Permission) - {Permission.READ_PHI})))
    assert phi_policy.may_read_phi(_key(Permission.READ_PHI))


def test_the_openapi_document_describes_withheld_fields_as_optional(client):
    spec = client.get("/api/openapi.json").get_json()
    components = spec["components"]["schemas"]
    for name, kind in (("LeadOut", "lead"), ("TaskOut", "task"), ("ActivityOut", "activity")):
        schema = components[name]
        for field in phi_policy.FIELDS[kind]:
            if field in schema["properties"]:
                assert field not in schema.get("required", []), (name, field)
                assert "lead:phi" in schema["properties"][field]["description"], (name, field)
    assert {"notes", "patient_dob", "insurance_member_id", "address_line1"} <= set(
        components["LeadOut"]["properties"]
    )
