"""Message templates: a clinic's reusable email and SMS texts, validated when saved, previewed,
and resolved when a rule, a sequence or a person sends one.

The texts use the merge fields of rules and sequences, rendered by the one bounded renderer
(merge_fields.py: `merge_field_error` when saved, `merge` when sent), with the values of
`merge_values` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.auth.models import Clinic, User
from app.domains.lead_messages import booking_link, merge_fields, stats
from app.domains.lead_messages.models import EMAIL, MessageTemplate, MessageTemplateUse
from app.domains.leads import service as leads
from app.domains.pipeline.models import PipelineStage
from app.platform import clock, phi_policy
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound, ValidationFailed
from app.platform.roles import Actor

if TYPE_CHECKING:
    from app.domains.leads.models import Lead

EDITABLE = ("name", "subject", "body")
# What a preview without a lead shows: a made-up lead of the clinic.
SAMPLE_LEAD = {
    "first_name": "Jane",
    "last_name": "Doe",
    "patient_first_name": "Emma",
    "stage": "New Lead",
    "task_due_at": "Mon 23 Nov 10:00",
    "email_goes_at": "goes at 8:00 AM unless they reply or book first",
    "consultation_time": "Tue 24 Nov at 3:30 PM",
    "records_expire_on": "Thu 31 Dec",
}
SAMPLE_TOKEN = "sample-link"  # a sample lead's links: shaped as a family's, opening nothing


def list_templates(
    *, session: UnitOfWork, clinic_id: int, channel: str | None = None
) -> list[MessageTemplate]:
    stmt = sa.select(MessageTemplate).where(
        MessageTemplate.clinic_id == clinic_id, MessageTemplate.deleted_at.is_(None)
    )
    if channel is not None:
        stmt = stmt.where(MessageTemplate.channel == channel)
    return list(session.scalars(stmt.order_by(MessageTemplate.name, MessageTemplate.id)))


def _live(session: UnitOfWork, clinic_id: int, template_id: int) -> MessageTemplate | None:
    return session.scalar(
        sa.select(MessageTemplate).where(
            MessageTemplate.id == template_id,
            MessageTemplate.clinic_id == clinic_id,
            MessageTemplate.deleted_at.is_(None),
        )
    )


def get_template(*, session: UnitOfWork, clinic_id: int, template_id: int) -> MessageTemplate:
    """The clinic's live template, else 404 (another clinic's template does not exist for this caller)."""
    template = _live(session, clinic_id, template_id)
    if template is None:
        raise NotFound(f"message template {template_id} not found")
    return template


def template_for(*, session: UnitOfWork, clinic_id: int, template_id: int, channel: str) -> MessageTemplate:
    """The template a rule, sequence step or message names, on the channel it sends by; else a 422
    naming `template_id` (missing, deleted, another clinic's, or of the other channel)."""
    template = _live(session, clinic_id, template_id)
    if template is None:
        raise ValidationFailed("template_id", f"no message template {template_id} in this clinic")
    if template.channel != channel:
        raise ValidationFailed("template_id", f"template {template_id} is an {template.channel} template")
    return template


def _check_texts(channel: str, subject: str | None, body: str) -> None:
    """422 naming the text that cannot be sent: a missing subject, or a merge-field error."""
    errors: dict = {}
    if channel == EMAIL and not (subject or "").strip():
        errors["subject"] = ["required for an email template"]
    elif channel != EMAIL and subject is not None:
        errors["subject"] = ["an SMS has no subject"]
    for name, text in (("subject", subject), ("body", body)):
        if text and name not in errors and (error := merge_fields.merge_field_error(text)):
            errors[name] = [error]
    if errors:
        raise ValidationFailed(errors)


def _name_taken(session: UnitOfWork, clinic_id: int, name: str, except_id: int | None) -> bool:
    stmt = sa.select(MessageTemplate.id).where(
        MessageTemplate.clinic_id == clinic_id,
        MessageTemplate.name == name,
        MessageTemplate.deleted_at.is_(None),
    )
    if except_id is not None:
        stmt = stmt.where(MessageTemplate.id != except_id)
    return session.scalar(stmt.limit(1)) is not None


def _flush(session: UnitOfWork, name: str) -> None:
    """Flush, turning a concurrent twin's name into the same 409 as the pre-check."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"a message template named {name!r} exists in this clinic", code="name_taken"
        ) from None


def create_template(*, session: UnitOfWork, actor: Actor, data: dict, now: datetime) -> MessageTemplate:
    """A new template; its texts are checked against the merge fields and bounds now, not at send time."""
    _check_texts(data["channel"], data.get("subject"), data["body"])
    if _name_taken(session, actor.clinic_id, data["name"], None):
        raise Conflict(f"a message template named {data['name']!r} exists in this clinic", code="name_taken")
    template = MessageTemplate(
        clinic_id=actor.clinic_id,
        name=data["name"],
        channel=data["channel"],
        subject=data.get("subject"),
        body=data["body"],
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    _flush(session, template.name)
    _audit(session, actor, "message_template.create", template, now)
    return template


def update_template(
    *, session: UnitOfWork, actor: Actor, template_id: int, data: dict, now: datetime
) -> MessageTemplate:
    """Change a template's name or texts (not its channel); the next message made from it uses them."""
    template = get_template(session=session, clinic_id=actor.clinic_id, template_id=template_id)
    merged = {key: data.get(key, getattr(template, key)) for key in EDITABLE}
    _check_texts(template.channel, merged["subject"], merged["body"])
    if "name" in data and _name_taken(session, actor.clinic_id, data["name"], template.id):
        raise Conflict(f"a message template named {data['name']!r} exists in this clinic", code="name_taken")
    for key, value in merged.items():
        setattr(template, key, value)
    template.updated_at = now
    _flush(session, template.name)
    _audit(session, actor, "message_template.update", template, now)
    return template


def delete_template(*, session: UnitOfWork, actor: Actor, template_id: int, now: datetime) -> None:
    """Soft delete: rules and sequences naming it skip their message from now on (on the why-trail)."""
    template = get_template(session=session, clinic_id=actor.clinic_id, template_id=template_id)
    template.deleted_at = template.updated_at = now
    _audit(session, actor, "message_template.delete", template, now)


def _audit(session: UnitOfWork, actor: Actor, action: str, template: MessageTemplate, now: datetime) -> None:
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=template.clinic_id,
            actor=actor.ref,
            action=action,
            subject_type="message_template",
            subject_id=template.id,
            after={"name": template.name, "channel": template.channel},
            at=now,
        ),
    )


def merge_values(
    *, session: UnitOfWork, lead: Lead, extra: dict | None = None, texts: tuple[str, ...] = ()
) -> dict:
    """The values a clinic's text may use ({{ first_name }}, {{ clinic_name }}, ...).

    Given the `texts` to fill, the coordinator and the stage are only looked up when one uses them.
    """
    clinic = session.get(Clinic, lead.clinic_id)
    owner = None
    if lead.assigned_to_id and (not texts or any("coordinator_name" in text for text in texts)):
        owner = session.get(User, lead.assigned_to_id)
    stage = None
    if not texts or any("stage" in text for text in texts):
        stage = session.scalar(
            sa.select(PipelineStage.name).where(
                PipelineStage.clinic_id == lead.clinic_id, PipelineStage.slug == lead.pipeline_stage
            )
        )
    return {
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "patient_first_name": lead.patient_first_name or lead.first_name,
        "clinic_name": clinic.name,
        "coordinator_name": owner.name if owner else clinic.name,
        "stage": stage or lead.pipeline_stage,
        "booking_link": _booking_link(session, lead, texts),
        **(extra or {}),
    }


def _booking_link(session: UnitOfWork, lead: Lead, texts: tuple[str, ...]) -> str:
    """The lead's signed booking link, signed only for a text that uses it."""
    if texts and not any("booking_link" in text for text in texts):
        return ""
    return booking_link.booking_url(session.database.settings, lead.clinic_id, lead.id, clock.now())


def merge_for_staff(text: str, values: dict) -> str:
    """`text` merged for a stored staff-facing text (a task's title, an inbox item): the lead's PHI
    merge fields show as `[patient_first_name]`. It is written once and read later by staff with and
    without `lead:phi` (front desk, a key, the iCal feed), so it is written as the least of them may
    see it; the full text, where it is kept, goes into a PHI field (a task's description)."""
    return merge_fields.merge(text, phi_policy.withhold_merge_values(values, None))


def merge_task_texts(title: str, description: str | None, values: dict) -> tuple[str, str | None]:
    """A task's title and description merged (a rule's or a sequence's). Everyone who reads tasks
    reads the title (front desk, a key without `lead:phi`, the iCal feed, "New task: ..." in the
    inbox), so a PHI merge field stays `[patient_first_name]` there; the description is PHI, so when
    the title withheld something the full title opens the description."""
    shown = merge_for_staff(title, values)
    full = merge_fields.merge(title, values)
    merged_description = merge_fields.merge(description or "", values)
    if full != shown:
        merged_description = f"{full}\n\n{merged_description}" if merged_description else full
    return shown, merged_description or None


def preview(
    *, session: UnitOfWork, actor: Actor, template_id: int, lead_id: int | None, now: datetime
) -> dict:
    """The template rendered for one of the clinic's leads (the read audited), or for a sample lead.
    A lead's PHI merge fields (the patient's name) show as `[name]` to a reader without `lead:phi`."""
    template = get_template(session=session, clinic_id=actor.clinic_id, template_id=template_id)
    if lead_id is None:
        values = _sample_values(session, actor.clinic_id)
    else:
        lead = leads.read_lead(session=session, actor=actor, lead_id=lead_id, now=now)
        values = merge_values(session=session, lead=lead, texts=(template.subject or "", template.body))
        values = phi_policy.withhold_merge_values(values, actor)
    return {
        "template_id": template.id,
        "channel": template.channel,
        "lead_id": lead_id,
        "subject": merge_fields.merge(template.subject, values) if template.subject else None,
        "body": merge_fields.merge(template.body, values),
    }


def _sample_values(session: UnitOfWork, clinic_id: int) -> dict:
    """The merge values of a made-up family of the clinic, its links shaped as a family's."""
    clinic = session.get(Clinic, clinic_id)
    base = session.database.settings.public_base_url.rstrip("/")
    return {
        **SAMPLE_LEAD,
        "clinic_name": clinic.name,
        "coordinator_name": clinic.name,
        "booking_link": f"{base}{booking_link.LINK_PATH}{SAMPLE_TOKEN}",
        "consultation_link": f"{base}{booking_link.CHANGE_PATH}{SAMPLE_TOKEN}",
    }


def preview_text(*, session: UnitOfWork, actor: Actor, channel: str, subject: str | None, body: str) -> dict:
    """Texts not saved yet (a template being written or edited) as a sample family will read them;
    refused as saving them would be (a missing subject, an unknown merge field: 422 naming it)."""
    _check_texts(channel, subject, body)
    values = _sample_values(session, actor.clinic_id)
    return {
        "channel": channel,
        "subject": merge_fields.merge(subject, values) if subject else None,
        "body": merge_fields.merge(body, values),
    }


@dataclass(frozen=True)
class TemplateUse:
    """One message made from a template: the template, the message's notification and channel, and
    who sent it."""

    template_id: int
    notification_id: int
    channel: str
    sent_by: str


def record_use(*, session: UnitOfWork, lead, use: TemplateUse, now: datetime) -> None:
    """Count one message made from the template (what its usage and reply counts are made of)."""
    row = MessageTemplateUse(
        clinic_id=lead.clinic_id,
        template_id=use.template_id,
        lead_id=lead.id,
        notification_id=use.notification_id,
        channel=use.channel,
        sent_by=use.sent_by,
        sent_at=now,
    )
    try:
        with session.begin_nested():  # a message already counted (a re-run of the same send) stays once
            session.add(row)
    except IntegrityError:
        pass


def _with_counts(template: MessageTemplate, counts: dict) -> dict:
    fields = {key: getattr(template, key) for key in ("id", "name", "channel", "subject", "body")}
    return {**fields, "created_at": template.created_at, "updated_at": template.updated_at, **counts}


def list_with_counts(*, session: UnitOfWork, clinic_id: int, channel: str | None = None) -> list[dict]:
    found = list_templates(session=session, clinic_id=clinic_id, channel=channel)
    counts = stats.counts(session=session, clinic_id=clinic_id, template_ids=[t.id for t in found])
    return [_with_counts(t, counts[t.id]) for t in found]


def get_with_counts(*, session: UnitOfWork, clinic_id: int, template_id: int) -> dict:
    template = get_template(session=session, clinic_id=clinic_id, template_id=template_id)
    counts = stats.counts(session=session, clinic_id=clinic_id, template_ids=[template.id])
    return _with_counts(template, counts[template.id])
