"""Quick entry's work, for the page in quick_entry.py: the typed form read as the API reads a new lead
(its LeadIn schema), the possible duplicates of what is typed so far (the capture's own duplicate
finder), and the capture itself under an idempotency key (the API's keys and rules: the same key and
the same form make one lead; the replay names the lead the first submit made)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from marshmallow import ValidationError

from app.console.wording import PATIENT_WORDS
from app.console.workspace.form_input import patient_errors, posted_patient
from app.domains.auth import service as auth
from app.domains.intake import service as intake
from app.domains.leads import duplicates as duplicate_leads
from app.domains.leads import service as leads
from app.domains.leads import sources
from app.domains.leads.schemas import LeadIn
from app.platform.errors import ValidationFailed
from app.platform.idempotency import service as keys
from app.platform.roles import Actor

FIELDS = ("first_name", "last_name", "phone", "email", "source_id", "treatment_interest", "notes")
# What the duplicate check reads while the user types: the contact's name, phone and email.
PROBED = ("first_name", "last_name", "phone", "email")
LEAD_IN = LeadIn()


def lead_fields(form) -> dict:
    """The form's fields as the API's body would carry them: blank ones left out, the interests a list."""
    data = {}
    for name in FIELDS:
        if name == "treatment_interest":
            chosen = [value for value in form.getlist(name) if value]
            if chosen:
                data[name] = chosen
            continue
        value = (form.get(name) or "").strip()
        if value:  # the selector's id comes as text; the API's schema takes a number (else names it)
            data[name] = int(value) if name == "source_id" and value.isdigit() else value
    patient = posted_patient(form)
    if patient is not None:
        data["patients"] = [patient]
    return data


def field_errors(data: dict) -> tuple[dict, dict]:
    """(the loaded lead, {}) or ({}, the errors by field) as the API's schema finds them."""
    try:
        return LEAD_IN.load(data), {}
    except ValidationError as error:
        return {}, form_errors(error.messages)


def form_errors(messages: dict) -> dict[str, list[str]]:
    """The API's errors by the form's field names (a patient's by the patient section's fields)."""
    errors = {name: list(_flat(texts)) for name, texts in messages.items() if name != "patients"}
    if "patients" in messages:
        errors.update(patient_errors(messages["patients"], unreadable_age=PATIENT_WORDS["age_unreadable"]))
    return errors


def _flat(messages):
    if isinstance(messages, dict):
        for value in messages.values():
            yield from _flat(value)
    elif isinstance(messages, list):
        for value in messages:
            yield from _flat(value)
    else:
        yield str(messages)


def possible_duplicates(*, session, actor: Actor, typed: dict, now: datetime) -> list[dict]:
    """The clinic's open leads that what is typed so far may be (the capture's duplicate finder):
    [{"lead_id", "matched"}]. A phone or email not yet whole matches nothing, rather than an error."""
    data = {name: typed[name] for name in PROBED if typed.get(name)}
    if not (data.get("phone") or data.get("email")):
        return []
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    try:
        fields = leads.prepare_new_lead(
            session=session, clinic=clinic, data=LEAD_IN.load(data, partial=True), now=now
        )
    except (ValidationError, ValidationFailed):
        return []
    return duplicate_leads.find_duplicates(session=session, clinic_id=actor.clinic_id, fields=fields)


def source_choices(*, session, actor: Actor) -> list[tuple[int, str]]:
    """The clinic's active sources, for the source selector."""
    return [(s.id, s.name) for s in sources.list_sources(session=session, actor=actor, is_active=True)]


@dataclass(frozen=True)
class Submission:
    """One submit of the form: who, its idempotency key, the digest of what was sent, the lead."""

    actor: Actor
    key: str
    path: str
    digest: str
    data: dict


def capture_once(*, db, submission: Submission, now: datetime) -> int:
    """The lead's id: made now, or by the first submit with this key and the same form. The key is
    reserved in its own transaction, then the lead and the stored answer commit together (the API's
    protocol, app/platform/idempotency/service.py); a failure frees the key for a corrected submit."""
    keyed = keys.KeyedRequest(
        actor=submission.actor,
        key=submission.key,
        method="POST",
        path=submission.path,
        digest=submission.digest,
    )
    with db.unit_of_work() as session:
        lease = timedelta(seconds=db.settings.idempotency_lease_seconds)
        stored = keys.reserve(session=session, request=keyed, lease=lease, now=now)
        if stored is not None:
            return int(json.loads(stored.response_body)["lead_id"])
    reservation = keys.Reservation(actor=submission.actor, key=submission.key, reserved_at=now)
    try:
        with db.unit_of_work() as session:
            made = intake.capture_lead(
                session=session, actor=submission.actor, new=intake.NewLead(data=submission.data), now=now
            )
            lead_id = made.lead.id
            body = json.dumps({"lead_id": lead_id})
            keys.complete(
                session=session, reservation=reservation, status=201, body=body,
                content_type="application/json", now=now,
            )  # fmt: skip
    except BaseException:
        with db.unit_of_work() as session:
            keys.release(session=session, reservation=reservation)
        raise
    return lead_id
