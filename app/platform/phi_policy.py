"""Who sees protected health information (PHI): the one field policy of every response, export and
webhook payload.

The PHI fields are a lead's patient details, insurance, address and notes, a task's description and
outcome notes, an activity's notes, and a recall's note. A reader sees them only with `lead:phi`
(`Permission.READ_PHI`): treatment_coordinator, clinic_admin and doctor have it; front_desk never;
an API key only when it was created with that permission. Everyone else gets the rest of the
record, the PHI fields left out (absent, not null: null means "empty" to a client).

Response schemas apply it by subclassing `PhiSchema`: the reader is the request's actor, bound by
the permission check before every request (app/domains/auth/permissions.py). Nothing bound (a worker, the
CLI, a webhook) means no reader, so a dump leaves PHI out: the policy fails closed. A JSON value of
a response (an audit event's before/after, a task's or a job's origin, a step's conditions) is a
`PolicedJSON` field: `withhold_nested` leaves out, at any depth, every key the policy names and what a
condition on a PHI field compared with, saw and whether it held. Texts rendered from merge fields
(a message's echo, a preview) are rendered again with `withhold_merge_values`; texts stored for
staff (a task's title, an inbox item) are merged with it once, for no reader
(app/domains/lead_messages/templates.py's `merge_for_staff`), as every reader of them may see them.

Webhook payloads never carry PHI (app/domains/webhooks): a subscriber is a URL, not a reader whose reads are
audited and whose permissions the clinic's admin sets; it gets ids and fetches what it needs with an
API key, which the policy then applies to.

Plain data and marshmallow, no Flask: every layer may import it (tests/test_architecture.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from marshmallow import fields, post_dump
from marshmallow.schema import SchemaMeta

from app.platform.answers import AnswerSchema
from app.platform.roles import Actor, Permission

# In the lead export's column order (app/domains/leads/export.py writes them in this order).
LEAD_FIELDS = (
    "patient_first_name",
    "patient_last_name",
    "patient_dob",
    "patient_relationship",
    "patient_birth_year",
    "treatment_interest",
    "insurance_carrier",
    "insurance_member_id",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "notes",
    "lost_notes",
)
# What a patient said may be written into a task (a call's outcome, a note on the next step).
TASK_FIELDS = ("description", "outcome_notes")
ACTIVITY_FIELDS = ("notes",)
TIMER_FIELDS = ("note",)  # a recall's note: why the patient is to be seen again
# A lead's answer also lists every patient (app/domains/leads/patients.py): not a column of its own.
LEAD_LISTS = ("patients",)
FIELDS: dict[str, tuple[str, ...]] = {
    "lead": (*LEAD_FIELDS, *LEAD_LISTS),
    "task": TASK_FIELDS,
    "activity": ACTIVITY_FIELDS,
    "timer": TIMER_FIELDS,
}
ALL_FIELDS = frozenset(name for names in FIELDS.values() for name in names)

WITHHELD_NOTE = "PHI: present only for a reader with `lead:phi`."

_reader: ContextVar[Actor | None] = ContextVar("phi_reader", default=None)


def may_read_phi(actor: Actor | None) -> bool:
    """Whether `actor` sees PHI fields (the engine acting on its own, or nobody, does not)."""
    return actor is not None and actor.can(Permission.READ_PHI)


def fields_for(actor: Actor | None, kind: str, names: Iterable[str]) -> tuple[str, ...]:
    """`names` (a record of `kind`'s fields, in order) less the PHI fields `actor` may not see."""
    hidden = () if may_read_phi(actor) else FIELDS[kind]
    return tuple(name for name in names if name not in hidden)


def withhold(data: dict, actor: Actor | None, kind: str) -> dict:
    """`data` (a dumped record of `kind`) without the PHI fields `actor` may not see."""
    if may_read_phi(actor):
        return data
    for name in FIELDS[kind]:
        data.pop(name, None)
    return data


def names_phi(path) -> bool:
    """Whether a dotted path such as a rule condition's "lead.city" names a PHI field."""
    if not isinstance(path, str):
        return False
    kind, _, name = path.partition(".")
    return name in FIELDS.get(kind, ())


# What a rule's condition on a lead field tells of that lead once evaluated: the value it compared
# with (the lead's own value when an `equals` held, and a task or step exists because it held), the
# value it saw, and whether it held.
CONDITION_WITNESSES = ("value", "seen", "result")


def withhold_seen(condition, actor: Actor | None):
    """A rule's condition as evaluated on a lead ({field, operator, value, seen, result}) without
    what it compared with, saw and whether it held, when its field is PHI `actor` may not see; a
    group of conditions ({"any": [...], "result": ...}) without its result when a condition in it is."""
    if may_read_phi(actor) or not isinstance(condition, dict):
        return condition
    if names_phi(condition.get("field")):
        return {key: value for key, value in condition.items() if key not in CONDITION_WITNESSES}
    if "field" not in condition and "result" in condition and _holds_phi_condition(condition):
        return {key: value for key, value in condition.items() if key != "result"}
    return condition


def _holds_phi_condition(value) -> bool:
    if isinstance(value, dict):
        return names_phi(value.get("field")) or any(_holds_phi_condition(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_phi_condition(item) for item in value)
    return False


def withhold_nested(value, actor: Actor | None):
    """A JSON column's value (an audit event's before/after, a task's or a job's origin and payload,
    a step's conditions: nested dicts and lists) as `actor` may see it. Without `lead:phi`: no key the
    policy names PHI at any depth (fail closed: a rule's "description" goes too), and each condition
    on a PHI field without its witnesses (`withhold_seen`)."""
    if may_read_phi(actor):
        return value
    if isinstance(value, dict):
        shown = withhold_seen(value, actor)
        return {key: withhold_nested(item, actor) for key, item in shown.items() if key not in ALL_FIELDS}
    if isinstance(value, list):
        return [withhold_nested(item, actor) for item in value]
    return value


def strip_all(value):
    """`value` (nested dicts and lists) as no reader may see it: for what leaves to no reader."""
    return withhold_nested(value, None)


def withhold_merge_values(values: dict, actor: Actor | None) -> dict:
    """A text's merge values ({{ patient_first_name }}, ...) as `actor` may see them rendered: a PHI
    field of the lead shows as `[its name]` to a reader without `lead:phi`."""
    if may_read_phi(actor):
        return values
    return {name: f"[{name}]" if names_phi(f"lead.{name}") else value for name, value in values.items()}


def withhold_rendered(data: dict, actor: Actor | None, names: Iterable[str]) -> dict:
    """A dumped message to a lead without its rendered texts `names` (a subject, the start of a body)
    for a reader without `lead:phi`: merge fields wrote the patient's name into them when sent."""
    if may_read_phi(actor) or data.get("lead_id") is None:
        return data
    for name in names:
        data.pop(name, None)
    return data


class PolicedJSON(fields.Raw):
    """A response's JSON column value (an object or a list), dumped through `withhold_nested` for the
    bound reader: what a rule saw, an audited change, a job's payload follow the one policy."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).setdefault("type", "object")
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return withhold_nested(value, _reader.get())


def bind(actor: Actor | None) -> None:
    """Make `actor` the reader of what this request (or this context) dumps; None: nobody."""
    _reader.set(actor)


def current_reader() -> Actor | None:
    return _reader.get()


@contextmanager
def reading_as(actor: Actor | None) -> Iterator[None]:
    """Dump as `actor` inside the block (outside a request: a test, a report built for a user)."""
    token = _reader.set(actor)
    try:
        yield
    finally:
        _reader.reset(token)


class _PhiSchemaMeta(SchemaMeta):
    """Marks each PHI field of the schema in its OpenAPI description: documented, yet optional."""

    def __init__(cls, name, bases, attrs):
        super().__init__(name, bases, attrs)
        for field_name in cls.phi_fields():
            field = cls._declared_fields[field_name]
            description = field.metadata.get("description", "")
            if WITHHELD_NOTE not in description:
                field.metadata["description"] = f"{description} {WITHHELD_NOTE}".strip()


class PhiSchema(AnswerSchema, metaclass=_PhiSchemaMeta):
    """Base of a response schema carrying PHI of `PHI_KIND` ("lead", "task", "activity" or "timer"): the
    policy's fields of that kind leave the dump unless the bound reader may read PHI."""

    PHI_KIND: str | None = None

    @classmethod
    def phi_fields(cls) -> tuple[str, ...]:
        if cls.PHI_KIND is None:
            return ()
        return tuple(name for name in FIELDS[cls.PHI_KIND] if name in cls._declared_fields)

    @post_dump
    def _apply_phi_policy(self, data: dict, **kwargs) -> dict:
        return withhold(data, _reader.get(), self.PHI_KIND) if self.PHI_KIND else data
