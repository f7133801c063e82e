"""What the lead page's forms change, each through the API's own request schema (the same
validation, the same field names in its errors) and the API's own use case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from marshmallow import ValidationError

from app.console import wording
from app.console.workspace.form_input import (
    FORM_WIDE,
    changed_fields,
    load,
    local_time,
    patient_errors,
    posted_patient,
    schema_choices,
    text_fields,
)
from app.domains.activities import schemas as activity_schemas
from app.domains.activities import service as activities
from app.domains.activities.models import ActivityDirection, ActivityType, CallOutcome
from app.domains.assignment import schemas as assignment_schemas
from app.domains.assignment import service as assignment
from app.domains.consultations import schemas as consultation_schemas
from app.domains.consultations import service as consultations
from app.domains.lead_messages import replies
from app.domains.lead_messages import schemas as message_schemas
from app.domains.leads import schemas as lead_schemas
from app.domains.leads import service as leads
from app.domains.pipeline import schemas as pipeline_schemas
from app.domains.pipeline import service as pipeline
from app.domains.pipeline.rules import LOST, PENDING_DECISION
from app.domains.tasks import outcomes, series
from app.domains.tasks import schemas as task_schemas
from app.domains.tasks import service as tasks
from app.platform import phi_policy
from app.platform.api import etag_for
from app.platform.errors import Forbidden, NotFound, PreconditionFailed, ValidationFailed
from app.platform.roles import Actor

# The details the edit form offers, in its order; a reader without `lead:phi` is offered none of
# the PHI fields among them (phi_policy.fields_for).
EDITABLE = (
    "first_name", "last_name", "email", "phone", "phone_alt", "preferred_contact", "preferred_time",
    "priority", "patient_first_name", "patient_last_name", "patient_dob", "patient_birth_year",
    "patient_relationship",
    "insurance_carrier", "insurance_member_id", "address_line1", "address_line2", "city", "state",
    "postal_code", "notes", "source_id", "source_campaign", "source_detail", "treatment_interest",
    "do_not_contact", "sms_opt_out", "email_opt_out", "whatsapp_opt_out", "consent_reason",
    "consent_source",
)  # fmt: skip
# Details the form offers as boxes to tick: yes or no, and the treatments a family asks about.
FLAGS = ("do_not_contact", "sms_opt_out", "email_opt_out", "whatsapp_opt_out")
LISTED = ("treatment_interest",)
CHOICES = {
    "preferred_contact": ("PHONE", "EMAIL", "TEXT", "ANY"),
    "patient_relationship": ("SELF", "CHILD", "SPOUSE", "OTHER"),
    "priority": ("normal", "high", "urgent"),
    "treatment_interest": schema_choices(lead_schemas.LeadUpdateIn(), "treatment_interest"),
    "consent_source": ("", *schema_choices(lead_schemas.LeadUpdateIn(), "consent_source")),
}


@dataclass(frozen=True)
class Change:
    """Who changes what, when, and the form they posted (its fields as text)."""

    actor: Actor
    posted: dict
    now: datetime
    zone: ZoneInfo


def editable_for(actor: Actor) -> tuple[str, ...]:
    return phi_policy.fields_for(actor, "lead", EDITABLE)


def lead_etag(lead) -> str:
    """The lead's ETag as `GET /api/leads/{id}` gives it to this reader (phi_policy bound)."""
    schema = lead_schemas.LeadOut()
    return etag_for(schema.dump(lead), schema.ETAG_DERIVED)


def edit_lead(*, session, lead_id: int, change: Change):
    """`PUT /api/leads/{id}` from the form: refused (412) when the lead changed since the page showed
    it (its ETag, sent back by the form, as If-Match), else only the fields changed are sent."""
    current = leads.get_lead(
        session=session, clinic_id=change.actor.clinic_id, lead_id=lead_id, for_update=True
    )
    if change.posted.get("etag") != lead_etag(current):
        raise PreconditionFailed(
            "someone changed this lead since you opened it: reload the page to see their change, then edit"
        )
    shown = lead_schemas.LeadOut().dump(current)
    changes = details_changed(change.posted, shown, editable_for(change.actor))
    body = load(lead_schemas.LeadUpdateIn(), changes)
    return leads.update_lead(
        session=session, actor=change.actor, lead_id=lead_id, changes=body, now=change.now
    )


def details_changed(posted: dict, shown: dict, editable: tuple[str, ...]) -> dict:
    """The details the form changed: text as typed (an emptied field is none), a box as yes or no (its
    hidden "false" is posted first, the ticked box's "true" after it), a group of boxes as the list
    ticked (after its hidden empty value)."""
    texts = tuple(name for name in editable if name not in FLAGS + LISTED)
    changes = changed_fields({k: v for k, v in posted.items() if isinstance(v, str)}, shown, texts)
    for name in (name for name in editable if name in posted and name not in texts):
        values = posted[name] if isinstance(posted[name], list) else [posted[name]]
        if name in FLAGS and (values[-1] == "true") != bool(shown.get(name)):
            changes[name] = values[-1] == "true"
        ticked = [value for value in values if value]
        if name in LISTED and sorted(ticked) != sorted(shown.get(name) or []):
            changes[name] = ticked
    return changes


def _checked_lead(session, change: Change, lead_id: int):
    """The lead, locked, unless it changed since the page showed it (the form's ETag: a 412). Its
    patients are PHI: only a reader who may see them changes them here (the page shows them no other)."""
    if not phi_policy.may_read_phi(change.actor):
        raise Forbidden("only staff who may see patient details change a lead's patients")
    current = leads.get_lead(
        session=session, clinic_id=change.actor.clinic_id, lead_id=lead_id, for_update=True
    )
    if change.posted.get("etag") != lead_etag(current):
        raise PreconditionFailed(
            "someone changed this lead since you opened it: reload the page to see their change, then edit"
        )
    return current


def _new_patients(session, change: Change, lead_id: int, patients: list[dict]):
    """`PUT /api/leads/{id}` with `patients`; its refusal by the patient form's field names."""
    try:
        body = load(lead_schemas.LeadUpdateIn(), {"patients": patients})
        return leads.update_lead(
            session=session, actor=change.actor, lead_id=lead_id, changes=body, now=change.now
        )
    except ValidationError as error:
        named = error.messages.get("patients", {}) if isinstance(error.messages, dict) else {}
    except ValidationFailed as error:
        named = error.errors.get("json", {}).get("patients", {})
        if not isinstance(named, dict):
            raise
    unreadable = wording.PATIENT_WORDS["age_unreadable"]
    raise ValidationFailed(patient_errors(named, unreadable_age=unreadable) or {FORM_WIDE: [unreadable]})


def add_patient(*, session, lead_id: int, change: Change):
    """A further patient of the family, after those the lead has (its first, when it has none)."""
    current = _checked_lead(session, change, lead_id)
    typed = posted_patient(change.posted) or {"relationship": change.posted.get("patient_relationship")}
    listed = leads.lead_patients(session=session, lead=current)
    return _new_patients(session, change, lead_id, [*listed, typed])


def remove_patient(*, session, lead_id: int, index: int, change: Change):
    """A further patient no longer: the first is the lead's own, changed with its details."""
    current = _checked_lead(session, change, lead_id)
    listed = leads.lead_patients(session=session, lead=current)
    if not 1 <= index < len(listed):
        raise NotFound(f"patient {index} not found on lead {lead_id}")
    return _new_patients(session, change, lead_id, listed[:index] + listed[index + 1 :])


def _task_of_lead(session, change: Change, lead_id: int, task_id: int) -> None:
    """A task posted under another lead's page (of the clinic) is not this page's: a 404."""
    task = tasks.get_task(session=session, clinic_id=change.actor.clinic_id, task_id=task_id)
    if task.lead_id != lead_id:
        raise NotFound(f"task {task_id} not found on lead {lead_id}")


def _consultation_of_lead(session, change: Change, lead_id: int, consultation_id: int):
    found = consultations.get_consultation(
        session=session, clinic_id=change.actor.clinic_id, consultation_id=consultation_id
    )
    if found.lead_id != lead_id:
        raise NotFound(f"consultation {consultation_id} not found on lead {lead_id}")
    return found


def create_task(*, session, lead_id: int, change: Change):
    posted = change.posted
    data = text_fields(posted, ("title", "description", "type", "priority", "assigned_to_id"))
    if posted.get("due_at"):
        data["due_at"] = local_time(posted["due_at"], change.zone)
    body = load(task_schemas.TaskCreateIn(), data)
    return series.create(session=session, actor=change.actor, lead_id=lead_id, data=body, now=change.now)


def complete_task(*, session, lead_id: int, task_id: int, change: Change):
    _task_of_lead(session, change, lead_id, task_id)
    return outcomes.complete(
        session=session, actor=change.actor, task_id=task_id, completion=completion_of(change), now=change.now
    )


def completion_of(change: Change) -> outcomes.Completion:
    """A task's completion form (Today's call, the lead page's task) as the API's request schema reads
    it: the outcome (a call's, for a call task), notes, the callback time in the clinic's zone, the
    reason a family is not interested."""
    posted = text_fields(change.posted, ("outcome", "notes", "lost_reason"))
    callback_at = local_time(change.posted.get("callback_at"), change.zone)
    if posted.get("outcome") == "callback_requested" and callback_at:
        posted["callback_at"] = callback_at
    if posted.get("outcome") != "not_interested":
        posted.pop("lost_reason", None)  # the form offers it beside every outcome
    try:
        return outcomes.Completion(**load(task_schemas.CompleteIn(), posted))
    except ValidationError as error:  # Today has no form section to show it in: said as a refusal
        raise ValidationFailed(error.messages) from None


def snooze_task(*, session, lead_id: int, task_id: int, change: Change):
    _task_of_lead(session, change, lead_id, task_id)
    body = load(task_schemas.SnoozeIn(), text_fields(change.posted, ("minutes",)))
    return tasks.snooze_task(
        session=session, actor=change.actor, task_id=task_id, until=None, minutes=body["minutes"],
        now=change.now,
    )  # fmt: skip


def reassign_task(*, session, lead_id: int, task_id: int, change: Change):
    _task_of_lead(session, change, lead_id, task_id)
    body = load(task_schemas.TaskUpdateIn(), text_fields(change.posted, ("assigned_to_id",)))
    apply_to = body.pop("apply_to")
    return series.update(
        session=session, actor=change.actor, task_id=task_id, changes=body, apply_to=apply_to, now=change.now
    )


def book(*, session, lead_id: int, change: Change):
    """Book the slot chosen ("<start>|<provider id>" of the availability service's free slots) or a
    time typed in, as `POST /api/leads/{id}/consultations`."""
    posted = change.posted
    data = text_fields(posted, ("type_id", "location"))
    slot = posted.get("slot") or ""
    if slot:
        starts_at, _, provider_id = slot.partition("|")
        data["starts_at"] = starts_at
        if provider_id:
            data["provider_id"] = int(provider_id) if provider_id.isdigit() else provider_id
    elif posted.get("starts_at"):
        data["starts_at"] = local_time(posted["starts_at"], change.zone)
    body = load(consultation_schemas.ConsultationIn(), data)
    return consultations.book(
        session=session, actor=change.actor, lead_id=lead_id, booking=consultations.Booking(**body),
        now=change.now,
    )  # fmt: skip


def reschedule(*, session, lead_id: int, consultation_id: int, change: Change):
    _consultation_of_lead(session, change, lead_id, consultation_id)
    data = {"starts_at": local_time(change.posted.get("starts_at"), change.zone)}
    body = load(consultation_schemas.ConsultationChangeIn(), {k: v for k, v in data.items() if v})
    return consultations.reschedule(
        session=session, actor=change.actor, consultation_id=consultation_id, changes=body, now=change.now
    )


def check_in(*, session, lead_id: int, consultation_id: int, change: Change):
    visit = _consultation_of_lead(session, change, lead_id, consultation_id)
    try:
        return consultations.check_in(
            session=session, actor=change.actor, consultation_id=consultation_id, now=change.now
        )
    except ValidationFailed as refused:
        if consultations.CHECKED_IN_AT not in refused.errors["json"]:
            raise
        # The form has no time field to name: the API's refusal said as a sentence, in the clinic's time.
        sentence = wording.not_started(visit.starts_at, wording.Names(zone=change.zone))
        raise ValidationFailed({FORM_WIDE: [sentence]}) from refused


def no_show(*, session, lead_id: int, consultation_id: int, change: Change):
    _consultation_of_lead(session, change, lead_id, consultation_id)
    return consultations.mark_no_show(
        session=session, actor=change.actor, consultation_id=consultation_id, now=change.now
    )


SEND_BOOKING_LINK = "booking_link"  # the reply form's second button


def reply(*, session, lead_id: int, change: Change):
    """`POST /api/leads/{id}/conversation/messages`: the form's idempotency key (made when the page
    was drawn) sends a double submit once. Its "Send the booking link" button sends the clinic's
    standard message with the family's own link (merged as it goes) instead of what was typed."""
    posted = text_fields(change.posted, ("channel", "subject", "body"))
    if change.posted.get("send") == SEND_BOOKING_LINK:
        posted["body"] = wording.BOOKING_LINK_MESSAGE["body"]
        if posted.get("channel") == "email":
            posted["subject"] = posted.get("subject") or wording.BOOKING_LINK_MESSAGE["subject"]
        else:
            posted.pop("subject", None)
    body = load(message_schemas.ConversationReplyIn(), posted)
    return replies.reply(
        session=session, actor=change.actor, lead_id=lead_id, data=body, now=change.now,
        idempotency_key=change.posted.get("idempotency_key") or None,
    )  # fmt: skip


def assign(*, session, lead_id: int, change: Change):
    """`POST /api/leads/{id}/assign`: the lead given to the person chosen."""
    body = load(assignment_schemas.AssignIn(), text_fields(change.posted, ("user_id",)))
    return assignment.assign_lead(
        session=session, actor=change.actor, lead_id=lead_id, user_id=body["user_id"], reason=None,
        now=change.now,
    )  # fmt: skip


def edit_task(*, session, lead_id: int, task_id: int, change: Change):
    """A task's title, due time (clinic time) and assignee, as `PUT /api/leads/tasks/{id}` changes them."""
    _task_of_lead(session, change, lead_id, task_id)
    data = text_fields(change.posted, ("title", "assigned_to_id"))
    if "title" in change.posted:
        data["title"] = change.posted["title"].strip()  # emptied: refused by the schema, beside it
    if change.posted.get("due_at"):
        data["due_at"] = local_time(change.posted["due_at"], change.zone)
    body = load(task_schemas.TaskUpdateIn(), data)
    apply_to = body.pop("apply_to")
    return series.update(
        session=session, actor=change.actor, task_id=task_id, changes=body, apply_to=apply_to, now=change.now
    )


def log_call(*, session, lead_id: int, change: Change):
    """`POST /api/leads/{id}/activities` with an outbound PHONE_CALL: its outcome, notes, the time a
    family asked to be called back, the reason a family is not interested (each only with its outcome)."""
    posted = text_fields(change.posted, ("outcome", "notes", "lost_reason"))
    outcome = posted.get("outcome")
    if not outcome:
        raise ValidationFailed("outcome", wording.LEAD_ACTIONS["choose_outcome"])
    callback_at = local_time(change.posted.get("callback_at"), change.zone)
    if outcome == CallOutcome.CALLBACK_REQUESTED and callback_at:
        posted["callback_at"] = callback_at
    if outcome != CallOutcome.NOT_INTERESTED:
        posted.pop("lost_reason", None)  # the form offers it beside every outcome
    call = {"type": ActivityType.PHONE_CALL.value, "direction": ActivityDirection.OUTBOUND.value, **posted}
    body = load(activity_schemas.ActivityIn(), call)
    return activities.log_activity(
        session=session, actor=change.actor, lead_id=lead_id, data=body, now=change.now
    )


# A stage that needs a reason, and the form field that gives it (said in words when left empty).
NEEDS_WHY = {LOST: "reason", PENDING_DECISION: "hesitation_reason"}


def move_stage(*, session, lead_id: int, change: Change):
    """`POST /api/leads/{id}/stage`, the board's move (forward, or to lost with a reason)."""
    given = text_fields(change.posted, ("stage", "reason", "hesitation_reason", "notes"))
    needed = NEEDS_WHY.get(given.get("stage"))
    if needed and not given.get(needed):
        raise ValidationFailed(needed, wording.MOVE_NEEDS_WHY[given["stage"]])
    if needed != "reason":
        given.pop("reason", None)  # the form offers each reason beside every stage
    if needed != "hesitation_reason":
        given.pop("hesitation_reason", None)
    body = load(pipeline_schemas.StageChangeIn(), given)
    return pipeline.change_stage(
        session=session, actor=change.actor, lead_id=lead_id, change=pipeline.StageChange(**body),
        now=change.now,
    )  # fmt: skip


def mark_lost(*, session, lead_id: int, change: Change):
    """`POST /api/leads/{id}/lost`: the lead closed as lost, with the reason chosen."""
    given = text_fields(change.posted, ("reason", "notes"))
    if not given.get("reason"):
        raise ValidationFailed("reason", wording.MOVE_NEEDS_WHY[LOST])
    body = load(pipeline_schemas.LostIn(), given)
    return pipeline.mark_lost(
        session=session, actor=change.actor, lead_id=lead_id, reason=body["reason"],
        notes=body.get("notes"), now=change.now,
    )  # fmt: skip


def convert(*, session, lead_id: int, change: Change):
    """`POST /api/leads/{id}/convert`: treatment started, with what it is worth if typed."""
    body = load(pipeline_schemas.ConvertIn(), text_fields(change.posted, ("treatment_value",)))
    return pipeline.convert_lead(
        session=session, actor=change.actor, lead_id=lead_id, now=change.now,
        treatment_value=body.get("treatment_value"),
    )  # fmt: skip
