"""Erasing a lead: its person's data goes from every table it was copied to; a tombstone stays.

What goes: names, phones, email, date of birth, address, insurance id, notes, free text
(activities' and tasks' notes, tasks' titles), messages to and about the lead (addresses, titles,
bodies, context), the payloads of its events and webhook deliveries, the changes its audit events
recorded, stored idempotent answers naming it, import reports' rows about it.

What stays (the tombstone): the lead row with its clinic, stage, status, source, dates, owner,
value, age group and counters, so analytics counts and revenue do not change; its activities',
tasks' and messages' kinds, directions, outcomes and times; ids. An open lead is archived: nobody
works a person who asked to be forgotten. Its pending ledger jobs, automated steps and sequence
enrolments are cancelled, and its phones and email join the clinic's suppression list
(app/leads/suppression.py) so a new capture of the same person is never contacted automatically.

Payloads are reduced to their ids (`ids_only`) rather than deleted: an event's consumers and a
delivery's history still see what happened to which row.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.activities.models import LeadActivity
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.automation.models import AutomationStep, EnrollmentStatus, SequenceEnrollment, StepStatus
from app.bulk.models import BulkJobRow
from app.errors import NotFound
from app.events.models import DomainEvent
from app.idempotency.models import IdempotencyKey
from app.leads import suppression
from app.leads.models import OPEN_STATUSES, Lead, LeadStatus
from app.notifications.models import DeliveryStatus, Notification
from app.scheduling import service as ledger
from app.tasks.models import OPEN_TASK_STATUSES, LeadTask, TaskStatus
from app.webhooks.models import WebhookDelivery

ERASED = "[erased]"
ERASED_REASON = "erased"

# Every column of a lead that names or describes the person; set to None (NOT NULL ones below).
_LEAD_PERSONAL = (
    "email", "phone", "phone_alt", "preferred_time", "patient_first_name", "patient_last_name",
    "patient_dob", "patient_dob_index", "address_line1", "address_line2", "city", "postal_code",
    "source_campaign", "source_detail", "insurance_carrier", "insurance_member_id", "lost_notes",
    "notes", "submission_id", "external_id", "next_action", "score_factors",
)  # fmt: skip


def ids_only(value):
    """A payload reduced to what identifies rows: keys naming ids (`*_id`, `*_ids`, `id`) with
    integer values, and booleans; nothing else (names, text, dates of birth) survives."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for key, item in value.items():
        is_id = key == "id" or key.endswith("_id") or key.endswith("_ids")
        ids = isinstance(item, int) or (isinstance(item, list) and all(isinstance(i, int) for i in item))
        if isinstance(item, bool) or (is_id and ids):
            out[key] = item
        elif isinstance(item, dict):
            nested = ids_only(item)
            if nested:
                out[key] = nested
    return out


def get_erasable_lead(*, session: Session, clinic_id: int, lead_id: int) -> Lead | None:
    """The clinic's lead, deleted or not, locked for the erasure; None if not the clinic's."""
    return session.scalar(
        sa.select(Lead).where(Lead.id == lead_id, Lead.clinic_id == clinic_id).with_for_update()
    )


def erase(*, session: Session, clinic_id: int, lead_id: int, actor_ref: str, now: datetime) -> dict:
    """The use case: erase the clinic's lead `lead_id` (another clinic's is not found)."""
    lead = get_erasable_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
    if lead is None:
        raise NotFound("lead not found")
    return erase_lead(session=session, lead=lead, actor_ref=actor_ref, now=now)


def erase_lead(*, session: Session, lead: Lead, actor_ref: str, now: datetime) -> dict:
    """Erase `lead` (see the module's doc) in the caller's unit of work; returns what was touched.

    Erasing an erased lead again repeats the sweep of its copies (cheap, and it finds copies a
    message in flight wrote meanwhile) and is not an error."""
    suppression.suppress(
        session=session,
        clinic_id=lead.clinic_id,
        phones=(lead.phone, lead.phone_alt),
        emails=(lead.email,),
        now=now,
    )
    counts = {"lead_id": lead.id, "suppressed": True}
    task_ids = list(session.scalars(sa.select(LeadTask.id).where(LeadTask.lead_id == lead.id)))
    activity_ids = list(session.scalars(sa.select(LeadActivity.id).where(LeadActivity.lead_id == lead.id)))
    notification_ids = list(
        session.scalars(sa.select(Notification.id).where(Notification.lead_id == lead.id))
    )
    counts["jobs_cancelled"] = _cancel_work(session, lead, task_ids, notification_ids, now)
    counts["activities"] = _erase_activities(session, lead.id)
    counts["tasks"] = _erase_tasks(session, lead.id, now)
    counts["notifications"] = _erase_notifications(session, lead, notification_ids)
    counts["events"], counts["webhook_deliveries"] = _erase_events(
        session, lead.clinic_id, {"lead": [lead.id], "task": task_ids, "activity": activity_ids}
    )
    counts["audit_events"] = _erase_audit(session, lead.clinic_id, {"lead": [lead.id], "task": task_ids})
    counts["idempotent_answers"] = _erase_idempotent_answers(session, lead.clinic_id, lead.id)
    session.execute(
        sa.update(BulkJobRow)
        .where(BulkJobRow.lead_id == lead.id)
        .values(message=None, matches=None, external_id=None)
        .execution_options(synchronize_session=False)
    )
    _tombstone(lead, now)
    audit.record(
        session=session, clinic_id=lead.clinic_id, actor=actor_ref, action="lead.erase",
        subject_type="lead", subject_id=lead.id, at=now, after={"erased": True},
    )  # fmt: skip
    session.flush()
    counts["erased_at"] = lead.erased_at
    return counts


def _tombstone(lead: Lead, now: datetime) -> None:
    for key in _LEAD_PERSONAL:
        setattr(lead, key, None)
    lead.first_name, lead.last_name = ERASED, ""
    lead.do_not_contact = lead.email_opt_out = lead.sms_opt_out = True
    if lead.status in OPEN_STATUSES:
        lead.status = LeadStatus.ARCHIVED.value
    lead.erased_at = lead.erased_at or now
    lead.updated_at, lead.updated_by = now, "system"


def _cancel_work(session: Session, lead: Lead, task_ids, notification_ids, now: datetime) -> int:
    cancelled = ledger.cancel(session=session, now=now, subject_type="lead", subject_id=lead.id)
    for subject_type, ids in (("task", task_ids), ("notification", notification_ids)):
        for subject_id in ids:
            cancelled += ledger.cancel(
                session=session, now=now, subject_type=subject_type, subject_id=subject_id
            )
    session.execute(
        sa.update(AutomationStep)
        .where(AutomationStep.lead_id == lead.id, AutomationStep.status == StepStatus.SCHEDULED)
        .values(status=StepStatus.CANCELLED, result={"reason": ERASED_REASON})
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(SequenceEnrollment)
        .where(SequenceEnrollment.lead_id == lead.id, SequenceEnrollment.status == EnrollmentStatus.ACTIVE)
        .values(status=EnrollmentStatus.UNENROLLED, ended_at=now, end_reason=ERASED_REASON, next_step_at=None)
        .execution_options(synchronize_session=False)
    )
    return cancelled


def _erase_activities(session: Session, lead_id: int) -> int:
    # Details hold ids and flags only (the analytics read them in SQL); notes are the person's words.
    return session.execute(
        sa.update(LeadActivity)
        .where(LeadActivity.lead_id == lead_id)
        .values(notes=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def _erase_tasks(session: Session, lead_id: int, now: datetime) -> int:
    touched = session.execute(
        sa.update(LeadTask)
        .where(LeadTask.lead_id == lead_id)
        .values(title=ERASED, description=None, outcome_notes=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.execute(
        sa.update(LeadTask)
        .where(LeadTask.lead_id == lead_id, LeadTask.status.in_(OPEN_TASK_STATUSES))
        .values(status=TaskStatus.CANCELLED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return touched


def _erase_notifications(session: Session, lead: Lead, notification_ids) -> int:
    """Messages to the lead (by lead_id), and staff messages about it: those whose context or link
    names the lead, or whose text quotes its name, phone or email."""
    about = set(notification_ids)
    needles = _needles(lead)
    link_tail = f"/leads/{lead.id}"
    rows = session.execute(
        sa.select(
            Notification.id, Notification.title, Notification.body, Notification.link, Notification.context
        )
        .where(Notification.clinic_id == lead.clinic_id, Notification.lead_id.is_(None))
        .execution_options(yield_per=500)
    )
    for nid, title, body, link, context in rows:
        names_lead = (context or {}).get("lead_id") == lead.id or (link or "").rstrip("/").endswith(link_tail)
        if names_lead or _quotes(needles, title, body, json.dumps(context or {})):
            about.add(nid)
    if not about:
        return 0
    ids = sorted(about)
    session.execute(
        sa.update(Notification)
        .where(Notification.id.in_(ids))
        .values(to_address=None, title=ERASED, body="", body_html=None, context=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(Notification)
        .where(Notification.id.in_(ids), Notification.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.FAILED, last_error=ERASED_REASON)
        .execution_options(synchronize_session=False)
    )
    return len(ids)


def _needles(lead: Lead) -> list[str]:
    values = [lead.phone, lead.phone_alt, lead.email, lead.insurance_member_id]
    for first, last in ((lead.first_name, lead.last_name), (lead.patient_first_name, lead.patient_last_name)):
        if first and last:
            values.append(f"{first} {last}")
    if lead.patient_dob is not None:
        values.append(lead.patient_dob.isoformat())
    return [v.lower() for v in values if v and v != ERASED]


def _quotes(needles: list[str], *texts) -> bool:
    joined = " ".join(t for t in texts if t).lower()
    return any(n in joined for n in needles)


def _erase_events(session: Session, clinic_id: int, subjects: dict[str, list[int]]) -> tuple[int, int]:
    event_ids = []
    for subject_type, ids in subjects.items():
        for chunk in _chunks(ids):
            event_ids += session.scalars(
                sa.select(DomainEvent.id).where(
                    DomainEvent.clinic_id == clinic_id,
                    DomainEvent.subject_type == subject_type,
                    DomainEvent.subject_id.in_(chunk),
                )
            )
    events = deliveries = 0
    for chunk in _chunks(event_ids):
        for event in session.scalars(sa.select(DomainEvent).where(DomainEvent.id.in_(chunk))):
            event.payload = ids_only(event.payload)
            events += 1
        for delivery in session.scalars(
            sa.select(WebhookDelivery).where(WebhookDelivery.event_id.in_(chunk))
        ):
            delivery.payload = ids_only(delivery.payload)
            deliveries += 1
    return events, deliveries


def _erase_audit(session: Session, clinic_id: int, subjects: dict[str, list[int]]) -> int:
    touched = 0
    for subject_type, ids in subjects.items():
        for chunk in _chunks([str(i) for i in ids]):
            rows = session.scalars(
                sa.select(AuditEvent).where(
                    AuditEvent.clinic_id == clinic_id,
                    AuditEvent.subject_type == subject_type,
                    AuditEvent.subject_id.in_(chunk),
                )
            )
            for row in rows:
                row.before, row.after = ids_only(row.before) or None, ids_only(row.after) or None
                touched += 1
    return touched


def _erase_idempotent_answers(session: Session, clinic_id: int, lead_id: int) -> int:
    """Stored answers (a day's worth) that describe the lead: deleted; a replay then runs anew."""
    doomed = []
    rows = session.execute(
        sa.select(IdempotencyKey.id, IdempotencyKey.response_body).where(
            IdempotencyKey.clinic_id == clinic_id, IdempotencyKey.response_body.is_not(None)
        )
    )
    for key_id, body in rows:
        try:
            answer = json.loads(body)
        except ValueError:
            continue
        if _names_lead(answer, lead_id):
            doomed.append(key_id)
    for chunk in _chunks(doomed):
        session.execute(
            sa.delete(IdempotencyKey)
            .where(IdempotencyKey.id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    return len(doomed)


def _names_lead(answer, lead_id: int) -> bool:
    if isinstance(answer, list):
        return any(_names_lead(item, lead_id) for item in answer)
    if not isinstance(answer, dict):
        return False
    if answer.get("lead_id") == lead_id or (answer.get("id") == lead_id and "first_name" in answer):
        return True
    return any(_names_lead(v, lead_id) for v in answer.values() if isinstance(v, dict | list))


def _chunks(ids: list, size: int = 500):
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
