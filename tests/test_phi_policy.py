"""The PHI field policy walked over every response schema of app/ (no database, no request): a schema
with a field the policy names dumps none of them for a reader without `lead:phi`, and all of them for
one with it. A new schema that carries lead, task or activity PHI past the policy fails here.

Schemas are found by introspection: every marshmallow Schema subclass defined under app/ that is not
a request schema and has a field (or a nested schema, at any depth) whose name is in the policy's PHI
field set. Each is dumped from a sample holding a value in every such field."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import pkgutil
from types import SimpleNamespace

import pytest
from marshmallow import Schema, class_registry, fields

import app
from app.platform import phi_policy
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema
from app.platform.roles import ROLE_PERMISSIONS, Actor, Permission, Role

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
    assert _phi_keys(dumped) == [], (
        f"{schema.__name__} dumps PHI past the policy (app/platform/phi_policy.py)"
    )


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


# --- every response schema, and the JSON values inside them -----------------------------------------

# Response schemas that carry no PHI, and why. Every other response schema passes the policy: a
# PhiSchema of a kind, a PolicedJSON field, a schema nesting one of those, or a hook in POLICED_BY_HOOK.
# A new response schema fails `test_every_response_schema_passes_the_policy_or_says_why_not` until it
# is one of those or is added here with its reason.
CARRIES_NO_PHI = {
    "AttemptOut": "an attempt of the why-trail: its activity's id and type, when it went and failed",
    "HandedOut": "a waiting message's id, the clinic it was handed to and when",
    "UnclaimedMessageOut": (
        "the platform operator's queue of messages no clinic can claim yet: only the operator's token "
        "reads it (platform_only), to tell which clinic a message is for; no clinic's role or key can"
    ),
    "FollowUpPassOut": "a follow-up pass's window, counts and skipped leads' ids with the reasons",
    "FollowUpReportOut": "the follow-up figures: counts and rates",
    "_SequenceConversion": "a sequence's name and its counts",
    "_StepLeads": "a sequence step's position and how many leads take it next",
    "_StepMessage": "a sequence step's position and its counts",
    "DismissedOut": "two lead ids and when the pair was dismissed",
    "ErrorSchema": "an error's message and the names of the request's fields",
    "ApiKeyCreatedOut": "an API key: its name, prefix, permissions and secret",
    "ApiKeyOut": "an API key: its name, prefix and permissions",
    "ClinicOut": "the clinic's own settings",
    "PlatformClinicOut": "a clinic's own settings",
    "SenderDomainOut": "an email sender domain the platform operator verified for a clinic",
    "MeOut": "the staff user's own account",
    "RecoveryCodesOut": "a user's own new recovery codes",
    "SecondFactorConfirmedOut": "a user's own recovery codes and session tokens",
    "SecondFactorEnrolmentOut": "a user's own new second factor: its secret, URI and QR code",
    "SecondFactorStatusOut": "whether a user has a second factor and how many recovery codes are left",
    "SmsSenderOut": "an SMS number or Messaging Service the platform operator assigned to a clinic",
    "SigningSecretCreatedOut": "an integration's signing secret, shown once, its name and scopes",
    "SigningSecretOut": "an integration's signing secret's name, key id, scopes and times",
    "InstagramAccountOut": "the clinic's Instagram account id, its times and its token masked (last 4)",
    "InstagramContactOut": "a family's Instagram handle and scoped id (contact, like a phone) and times",
    "WebhookSecretOut": "whether the clinic's single web-form secret still works",
    "ReceivedOut": "that a signed call was received (no lead named)",
    "MediaOut": "a message's media: its number, kind, type and the engine's URL (the bytes need lead:phi)",
    "SettingsOut": "a clinic's booking settings (buffer, notice, horizon)",
    "BookingPageSettingsOut": "a clinic's booking page address, embedding origins, change cut-off",
    "ProviderOut": "a provider's or chair's name, hours and feed status (the feed address is never shown)",
    "TypeOut": "a clinic's consultation type: its name, length and providers",
    "ClosureOut": "the clinic's closed days, in its own words (a holiday)",
    "SlotOut": "free times and the providers free then: nothing of any family",
    "ClashOut": "two consultations' ids, a provider and times: nothing of either family",
    "UserOut": "a staff user's account",
    "TokenOut": "a session's tokens",
    "RuleOut": "the clinic's rule as its staff wrote it: what it compares with, never a lead's value",
    "RuleVersionOut": "a past version of the clinic's rule, as its staff wrote it",
    "RuleStatsOut": "counts of a rule's steps",
    "SimulateOut": "counts of what a rule would have made",
    "TrailEnrollmentOut": "a sequence enrolment's ids, status, times and path (step keys, outcomes)",
    "CalendarTokenOut": "a calendar feed's address and token",
    "StreamTokenOut": "a stream token and the stream's address",
    "WebFormOut": "the id of the lead a web form made",
    "BestContactTimesOut": "answer rates by hour",
    "ContactSlotOut": "an hour's answer rate",
    "ForecastOut": "expected conversions by month",
    "MonthForecastOut": "expected conversions of a month",
    "NextTaskContactTimeOut": "an hour's answer rate",
    "NextTaskSlaOut": "an SLA clock's kind and times",
    "NextTaskWhyOut": "why a task is next: priority, times, score",
    "DuplicateOut": "the id of a lead matched as a duplicate",
    "LeadSourceOut": "the clinic's marketing channel",
    "NextActionOut": "the engine's suggested next action (a kind and a time)",
    "ScoreFactorOut": "a lead score's feature names and weights",
    "MessageTemplateOut": "the clinic's template as its staff wrote it, merge fields unfilled",
    "MessageTemplateStatsOut": "the clinic's template, with counts",
    # Not free of PHI by nature: a rule's notify, a task's "New task: <title>" are merged from a lead.
    "InboxItemOut": "a staff notification's title and text: written once, for staff with and without "
    "lead:phi, so a lead's PHI merge field is stored as `[patient_first_name]` "
    "(messaging.service.merge_for_staff; tests/test_phi_every_answer.py reads the inbox as front desk)",
    "PreferencesOut": "a staff user's notification preferences",
    "RetryCountOut": "a count",
    "StageOut": "the clinic's pipeline stage",
    "ErasureOut": "counts of what an erasure removed",
    "DelayOut": "a sequence step's delay",
    "EnrollmentOut": "a sequence enrolment's ids, status, times and path (step keys, outcomes)",
    "SequenceOut": "the clinic's sequence as its staff wrote it, merge fields unfilled",
    "SequenceStepOut": "a sequence step as the clinic's staff wrote it",
    "SequenceStatsOut": "counts of a sequence's enrolments",
    "VariantStatsOut": "counts of a step's variants",
    "SlaClockOut": "an SLA clock's kind and times",
    "ConsultationOut": "a consultation's times, status and the clinic's own place and provider names",
    "AppointmentOut": "a consultation's id and status",
    "OutreachPauseOut": "the clinic's outreach pause times",
    "StatusCountsOut": "task counts",
    "AssigneeCountsOut": "task counts of a staff user",
    "TaskSummaryOut": "task counts",
    "TemplateOut": "the clinic's task template",
    "WebhookOut": "a webhook subscription",
    "WebhookCreatedOut": "a webhook subscription and its secret",
    "WebhookDeliveryOut": "a webhook delivery's status (its payload is not in the answer)",
    "EngagementStatsOut": "counts of the clinic's messages to leads sent, opened and clicked",
    "LeadEngagementOut": "a lead's id and its messages' engagement (ids, counts, times)",
    "MessageEngagementOut": "a message's id and channel, open and click counts and times (no text, no URL)",
    "LinkClicksOut": "a link's place in a message and its click count (not the URL)",
    # Conversations (app/domains/conversations): the texts are in MessageOut and LastMessageOut.
    "ReadOut": "a read mark's ids and an unread count",
    "InboxLeadOut": "a lead's id and name (no PHI field: front desk reads names)",
    "ContactOut": "an unknown sender's channel and number or address (contact details)",
    "LinkOut": "ids",
    "StatusOut": "a conversation's ids and whether it is open or resolved",
}
# Schemas that apply the policy in a hook of their own (each through a phi_policy function).
POLICED_BY_HOOK = {
    "EvaluatedCondition": "post_dump: phi_policy.withhold_seen",
    "DeliveryOut": "post_dump: phi_policy.withhold_rendered (a message's title to a lead)",
    "LeadMessageOut": (
        "rendered for the reader: phi_policy.withhold_merge_values (app/domains/lead_messages/send.py)"
    ),
    "MessageOut": "post_dump: phi_policy.may_read_phi (a message's subject, body and full text)",
    "LastMessageOut": "post_dump: phi_policy.may_read_phi (the last message's preview)",
    "PreviewOut": (
        "rendered for the reader: phi_policy.withhold_merge_values (app/domains/lead_messages/templates.py)"
    ),
}
# Schemas only ever nested in a PHI field of their container, which withholds them whole.
POLICED_BY_CONTAINER = {
    "PatientOut": "only in a lead's `patients` (LeadOut, LeadMatchOut): a PHI field (phi_policy.LEAD_LISTS)",
}
# JSON values (Raw, Dict, a list of them) that are not a PolicedJSON, and why they hold no PHI. Each
# other JSON value of a response passes `phi_policy.withhold_nested` for its reader.
JSON_NOT_PHI = {
    ("FollowUpPassOut", "skipped"): "each skipped lead's id, the reason in words, a task's id",
    ("ErrorSchema", "errors"): "validation messages keyed by the request's field names",
    ("ClinicOut", "business_hours"): "the clinic's opening hours",
    ("ClinicOut", "settings"): "the clinic's settings",
    ("EvaluatedCondition", "value"): "withheld by its schema's hook (POLICED_BY_HOOK)",
    ("EvaluatedCondition", "seen"): "withheld by its schema's hook (POLICED_BY_HOOK)",
    ("RuleOut", "conditions"): "the clinic's rule as written",
    ("RuleOut", "actions"): "the clinic's rule as written",
    ("RuleVersionOut", "definition"): "the clinic's rule as written",
    ("RuleStatsOut", "steps"): "counts by status",
    ("RuleStatsOut", "skipped_reasons"): "counts by reason",
    ("SimulateOut", "totals"): "counts by action type",
    ("SimulateOut", "per_day"): "counts by day",
    ("SimulateOut", "per_coordinator"): "counts by staff user",
    ("BulkJobOut", "outcomes"): "counts by outcome",
    ("PreferencesOut", "channels"): "a staff user's channels by notification kind",
    ("PreferencesOut", "quiet_hours"): "a staff user's quiet hours",
    ("SequenceStatsOut", "unenrolled_by_reason"): "counts by reason",
    ("SequenceStepOut", "variants"): "the clinic's message variants as written, merge fields unfilled",
    ("VariantStatsOut", "variants"): "counts by variant",
    ("SequenceStepOut", "wait"): "the events a step waits for and its timeout, as written",
    ("SequenceStepOut", "on"): "step keys by outcome, as written",
    ("SequenceStepOut", "content_variables"): "a WhatsApp template's values as the clinic wrote them",
    ("SequenceOut", "entry_conditions"): "the clinic's criteria as written, as a rule's conditions",
    ("SequenceOut", "exit_conditions"): "the clinic's criteria as written, as a rule's conditions",
    ("EnrollmentOut", "path"): "step numbers and keys, outcome names, event ids and times",
    ("TrailEnrollmentOut", "path"): "step numbers and keys, outcome names, event ids and times",
    (
        "MessageOut",
        "origin",
    ): "the automation's rule, sequence and step ids (ids only, app/domains/lead_messages/to_lead.py)",
    ("MessageOut", "media"): "always empty: media are a later channel's work",
    ("StatusCountsOut", "by_status"): "counts",
    ("StatusCountsOut", "by_due"): "counts",
    ("AssigneeCountsOut", "by_status"): "counts",
    ("AssigneeCountsOut", "by_due"): "counts",
    ("ProviderOut", "hours"): "a provider's weekly hours and days off",
}

# Less the bases every answer's schema builds on (app/platform/answers.py, the PHI policy's own).
BASES = (AnswerSchema, phi_policy.PhiSchema)
RESPONSE_SCHEMAS = [schema for schema in _app_response_schemas() if schema not in BASES]


def _json_fields(schema: type[Schema]) -> dict[str, fields.Field]:
    """The schema's free JSON values: a Raw or a Dict, or a list of them, that no nested schema shapes."""
    found = {}
    for name, field in schema._declared_fields.items():
        inner = getattr(field, "inner", field)
        if type(inner) in (fields.Raw, fields.Dict, fields.Mapping, phi_policy.PolicedJSON):
            found[name] = inner
    return found


def _policed(schema: type[Schema], seen: frozenset = frozenset()) -> bool:
    if schema in seen:
        return False
    if (issubclass(schema, phi_policy.PhiSchema) and schema.PHI_KIND) or schema.__name__ in {
        *POLICED_BY_HOOK,
        *POLICED_BY_CONTAINER,
    }:
        return True
    if any(isinstance(field, phi_policy.PolicedJSON) for field in _json_fields(schema).values()):
        return True
    return any(
        (inner := _nested(field)) is not None and _policed(inner, seen | {schema})
        for field in schema._declared_fields.values()
    )


def test_every_response_schema_passes_the_policy_or_says_why_not():
    unaccounted = [
        schema.__name__
        for schema in RESPONSE_SCHEMAS
        if not _policed(schema) and schema.__name__ not in CARRIES_NO_PHI
    ]
    assert unaccounted == [], "a response schema neither passes the PHI policy nor says it carries no PHI"
    stale = set(CARRIES_NO_PHI) - {schema.__name__ for schema in RESPONSE_SCHEMAS if not _policed(schema)}
    assert stale == set(), "declared as carrying no PHI, yet gone or policed: drop them from CARRIES_NO_PHI"


def test_every_json_value_of_a_response_passes_the_policy_or_says_why_not():
    unpoliced = [
        f"{schema.__name__}.{name}"
        for schema in RESPONSE_SCHEMAS
        for name, field in _json_fields(schema).items()
        if not isinstance(field, phi_policy.PolicedJSON) and (schema.__name__, name) not in JSON_NOT_PHI
    ]
    assert unpoliced == [], "a JSON value of a response skips phi_policy.withhold_nested"


def test_every_schema_of_the_api_document_is_walked(client):
    """What the API answers (every schema its document names in a response) is a schema the walk
    above sees: an answer cannot come from a schema defined where the walk does not look."""
    spec = client.get("/api/openapi.json").get_json()
    answered = set()

    def refs(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in answered:
                    answered.add(name)
                    refs(spec["components"]["schemas"][name])
            for value in node.values():
                refs(value)
        elif isinstance(node, list):
            for value in node:
                refs(value)

    refs([operation.get("responses") for ops in spec["paths"].values() for operation in ops.values()
          if isinstance(operation, dict)])  # fmt: skip
    walked = {schema.__name__ for schema in RESPONSE_SCHEMAS} | {"Error", "PaginationMetadata"}
    assert answered and answered <= walked


# A JSON value as a rule, an update or a job may hold it: PHI keys at any depth, conditions on PHI fields.
PHI_IN_JSON = {
    "rule_id": 4,
    "conditions": [
        {
            "field": "lead.city",
            "operator": "equals",
            "value": "Springfield",
            "seen": "Springfield",
            "result": True,
        },
        {
            "field": "event.activity_type",
            "operator": "equals",
            "value": "NOTE",
            "seen": "NOTE",
            "result": True,
        },
    ],
    "address_line1": "12 Elm Street",
    "nested": [{"patient_first_name": "Tim", "insurance_carrier": "Delta", "notes": "knee"}],
}
PHI_VALUES_IN_JSON = ("Springfield", "12 Elm Street", "Tim", "Delta", "knee")


def _policed_json_names(schema: type[Schema]) -> list[str]:
    return [name for name, field in _json_fields(schema).items() if isinstance(field, phi_policy.PolicedJSON)]


@pytest.mark.parametrize(
    "schema", [schema for schema in RESPONSE_SCHEMAS if _policed_json_names(schema)], ids=lambda s: s.__name__
)
def test_a_policed_json_value_keeps_phi_from_a_reader_without_lead_phi(schema):
    names = _policed_json_names(schema)
    sample = SimpleNamespace(
        **{name: [PHI_IN_JSON] if isinstance(schema._declared_fields[name], fields.List) else PHI_IN_JSON
           for name in names}
    )  # fmt: skip
    for reader in WITHOUT_PHI.values():
        with phi_policy.reading_as(reader):
            text = json.dumps(schema(only=names).dump(sample))
        assert not [value for value in PHI_VALUES_IN_JSON if value in text], schema.__name__
        assert "NOTE" in text and "lead.city" in text  # what is not PHI stays
    with phi_policy.reading_as(WITH_PHI["treatment_coordinator"]):
        text = json.dumps(schema(only=names).dump(sample))
    assert all(value in text for value in PHI_VALUES_IN_JSON)
