"""What a lead page's form posted, as the API's request schemas take it: text fields, empty meaning
"none", a local time (an <input type=datetime-local> in the clinic's timezone) as an ISO time with
its offset; and a refusal as the errors to show next to each field."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError

from app.platform.errors import DomainError

FORM_WIDE = "_form"  # an error of the whole form, not of one of its fields
# A form's name for an API field whose key a person should never read, even in the page's source.
FORM_NAMES = {"assigned_to_id": "assignee", "user_id": "owner"}
# The API's integer fields a form posts as text (its schemas take JSON numbers only).
NUMBERS = frozenset(("assigned_to_id", "user_id", "type_id", "provider_id", "minutes", "source_id"))


@dataclass(frozen=True)
class Problem:
    """A refused form: which section it was in, the errors by field and what the person typed (the
    page shows it again, so nothing typed is lost)."""

    section: str
    errors: dict[str, list[str]]
    typed: dict[str, str] = field(default_factory=dict)
    status: int = 422

    def of(self, section: str) -> dict[str, list[str]]:
        return self.errors if section == self.section else {}


def refusal(section: str, error: Exception, typed: dict[str, str]) -> Problem:
    """A schema's or a use case's refusal as a `Problem`: field errors where it names fields."""
    if isinstance(error, ValidationError):
        return Problem(section, _flat(error.messages), typed)
    assert isinstance(error, DomainError)
    named = (error.errors or {}).get("json") or {}
    errors = _flat(named) if isinstance(named, dict) and named else {}
    if not errors:  # a refusal of no one field: said above the form
        errors[FORM_WIDE] = [error.message]
    return Problem(section, errors, typed, status=error.status)


def _flat(messages) -> dict[str, list[str]]:
    """marshmallow's messages ({field: [text]} or nested) as {field: [text, ...]}."""
    if not isinstance(messages, dict):
        return {FORM_WIDE: [str(messages)]}
    out: dict[str, list[str]] = {}
    for key, value in messages.items():
        name = FORM_WIDE if key == "_schema" else FORM_NAMES.get(str(key), str(key))
        if isinstance(value, dict):
            out.setdefault(name, []).extend(text for texts in _flat(value).values() for text in texts)
        elif isinstance(value, list | tuple):
            out.setdefault(name, []).extend(str(text) for text in value)
        else:
            out.setdefault(name, []).append(str(value))
    return out


def local_time(text: str | None, zone: ZoneInfo) -> str | None:
    """An <input type=datetime-local>'s "2026-05-01T09:30", meant in the clinic's zone, as ISO with
    the offset (the API's schemas refuse a naive time where it would be ambiguous); "" is none, and
    anything else is passed on for the schema to refuse with its own words."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()


def local_input(value: str | None, zone: ZoneInfo) -> str:
    """A stored moment (ISO) as an <input type=datetime-local> holds it in the clinic's zone:
    "2026-05-01T09:30"; "" for none."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def load(schema: Schema, posted: dict) -> dict:
    """`posted` as the API's request schema loads it (its validation, its messages)."""
    return schema.load(posted)


def schema_choices(schema: Schema, name: str) -> tuple[str, ...]:
    """The values an API schema's field (or each entry of its list) accepts, in its order."""
    field = schema.fields[name]
    field = getattr(field, "inner", field)
    return tuple(choice for validator in field.validators for choice in getattr(validator, "choices", ()))


def changed_fields(posted: dict[str, str], shown: dict, editable: tuple[str, ...]) -> dict:
    """The editable fields whose posted text differs from the value shown; an emptied field is None."""
    changes = {}
    for name in editable:
        if name not in posted:
            continue
        text = posted[name].strip()
        before = shown.get(name)
        if text == ("" if before is None else str(before)):
            continue
        changes[name] = (int(text) if name in NUMBERS and text.isdigit() else text) or None
    return changes


def text_fields(posted, names: tuple[str, ...]) -> dict:
    """The named API fields the form posted (under their form names) with something in them."""
    found = {}
    for name in names:
        text = (posted.get(FORM_NAMES.get(name, name)) or "").strip()
        if text:
            found[name] = int(text) if name in NUMBERS and text.isdigit() else text
    return found


# A patient's fields as a form names them (quick entry, the lead page's "Add a patient").
PATIENT_FORM = {
    "first_name": "patient_first_name",
    "last_name": "patient_last_name",
    "relationship": "patient_relationship",
    "age": "patient_age",
    "birth_year": "patient_age",
}
OLDEST_AGE = 150  # a number above it typed as an age is a year of birth


def posted_patient(posted) -> dict | None:
    """A patient as the API's `patients` entry takes it, from a form's patient fields; None when
    nothing about a patient was typed (no name, no age). "Age or year of birth" is one field: 12 is
    an age, 2014 a year (anything else goes on as typed, for the schema to refuse)."""
    typed = {name: (posted.get(form_name) or "").strip() for name, form_name in PATIENT_FORM.items()}
    if not (typed["first_name"] or typed["last_name"] or typed["age"]):
        return None
    patient = {name: typed[name] for name in ("first_name", "last_name", "relationship") if typed[name]}
    age = typed["age"]
    if age.isdigit():
        patient["age" if int(age) <= OLDEST_AGE else "birth_year"] = int(age)
    elif age:
        patient["age"] = age
    return patient


def patient_errors(messages: dict, *, unreadable_age: str) -> dict[str, list[str]]:
    """The API's errors of a `patients` entry ({index: {field: [text]}}) by the form's field names;
    an age that is no number said in the form's words."""
    out: dict[str, list[str]] = {}
    for entry in messages.values() if isinstance(messages, dict) else ():
        for name, texts in entry.items() if isinstance(entry, dict) else ():
            form_name = PATIENT_FORM.get(str(name), FORM_WIDE)
            said = [unreadable_age] if "integer" in " ".join(map(str, texts)).lower() else list(texts)
            out.setdefault(form_name, []).extend(said)
    if not out and messages:
        out[FORM_WIDE] = [str(text) for text in _flat({"patients": messages}).get("patients", [])]
    return out
