"""Erasing a lead: its person's data goes from every table it was copied to; a tombstone stays.

`COPIES` below lists every place a lead's person is copied to and how erasure reaches it, with the
test that proves it (tests/privacy/test_erasure.py dumps the whole database after an erasure and
finds none of the person's data). A new table or column that copies a lead's data belongs there.

What stays (the tombstone): the lead row with its clinic, stage, status, source, dates, owner,
value, age group and counters, so analytics counts and revenue do not change; its activities',
tasks' and messages' kinds, directions, outcomes and times; ids. An open lead is archived: nobody
works a person who asked to be forgotten. Its pending ledger jobs, automated steps and sequence
enrolments are cancelled, and its phones and email join the clinic's suppression list
(app/domains/leads/suppression.py: keyed digests, never the values) so a new capture of the same person
is never contacted automatically.

Payloads are reduced to their ids (`ids_only`) and origins to their structure (`structure_only`,
app/domains/privacy/scrubbing.py) rather than deleted: an event's consumers, a delivery's history and a
task's why-trail still see what happened to which row.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.automation.models import AutomationStep, EnrollmentStatus, SequenceEnrollment, StepStatus
from app.domains.consultations import service as consultations
from app.domains.consultations import timers
from app.domains.conversations import service as conversations
from app.domains.leads import suppression
from app.domains.leads.models import OPEN_STATUSES, Lead, LeadPatient, LeadStatus
from app.domains.outbound.models import DeliveryStatus, Notification
from app.domains.privacy import copies, scrubbing
from app.domains.privacy.scrubbing import ids_only, structure_only
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask, TaskStatus
from app.domains.webhooks.models import WebhookDelivery
from app.platform import phi_policy
from app.platform.audit import service as audit
from app.platform.audit.models import AuditEvent
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound
from app.platform.events.models import DomainEvent
from app.platform.scheduling import service as ledger
from app.platform.stream import feed

ERASED = "[erased]"
ERASED_REASON = "erased"

_DUMP = "tests/privacy/test_erasure.py::test_an_erased_lead_leaves_nothing_of_its_person_in_the_database"
_TRAIL = "tests/privacy/test_erasure.py::test_rule_conditions_and_origins_keep_their_shape_not_the_values"
_INSTAGRAM = "tests/instagram/test_connect_and_receive.py::test_erasure_forgets_the_instagram_user"


class Copy(NamedTuple):
    where: str
    how: str  # what erasure leaves there
    proof: str  # the test that proves it (the dump test proves them all at once)


# Every copy of a lead's person and how erasure reaches it.
COPIES: tuple[Copy, ...] = (
    Copy(
        "leads: every PHI field of app/platform/phi_policy.LEAD_FIELDS",
        "emptied: null, or where NOT NULL the value of a capture that said nothing (the default)",
        "tests/privacy/test_erasure.py::test_the_lead_row_keeps_no_phi_field_of_the_policy",
    ),
    Copy("leads: contact and free-text columns (_LEAD_CONTACT), the DOB's blind index", "null", _DUMP),
    Copy("leads: first_name, last_name", "'[erased]', ''", _DUMP),
    Copy("lead_patients: the lead's further patients (names, years of birth)", "deleted", _DUMP),
    Copy("lead_activities.notes", "null", _DUMP),
    Copy("conversation_messages: subject, body, full_body", "null, '[erased]', null", _DUMP),
    Copy(
        "lead_timers.note (a recall's note); the lead's scheduled recalls and records reminder",
        "null; cancelled (reason 'the lead was erased'), their ledger jobs ended",
        "tests/consultations/test_timers.py::test_erasure_cancels_a_recall_and_drops_its_note",
    ),
    Copy(
        "consultations of the lead: scheduled ones (the day's list, the owner's calendar feed), the "
        "booking system's external_id",
        "cancelled, their pending jobs ended (no event); external_id null",
        "tests/privacy/test_erasure.py::test_erasure_cancels_the_leads_consultations_and_drops_their_ids",
    ),
    Copy(
        "an email reply to the lead's reply+<token>@ address after the erasure (a new note, streamed)",
        "dropped: not stored, not streamed (the token names an erased lead: no lead)",
        "tests/privacy/test_erasure.py::test_an_email_reply_to_an_erased_lead_is_dropped",
    ),
    Copy("lead_tasks: title, description, outcome_notes", "'[erased]', null, null", _DUMP),
    Copy("lead_tasks.origin (what the rule that made it saw)", "structure_only", _TRAIL),
    Copy("automation_steps.conditions (the why-trail: values seen)", "structure_only", _TRAIL),
    Copy(
        "scheduled_jobs of the lead, its tasks and messages: origin; payload",
        "structure_only; ids_only",
        _TRAIL,
    ),
    Copy(
        "notifications to or about the lead: to_address and its blind index (to_address_index), "
        "title, body, body_html, context",
        "null/'[erased]'",
        _DUMP,
    ),
    Copy(
        "notifications.last_error: provider texts quoting the recipient (stored redacted since: "
        "app/platform/delivery/redaction.py; older rows)",
        "'[erased]'",
        "tests/outbound/test_provider_error_redaction.py",
    ),
    Copy(
        "domain_events.payload, webhook_deliveries.payload (the lead, its tasks, activities)",
        "ids_only",
        _DUMP,
    ),
    Copy(
        "audit_events before/after of every action on the lead and on its tasks, activities, messages, "
        "webhook deliveries and jobs",
        "ids_only",
        "tests/privacy/test_erasure.py::test_audit_details_of_every_action_on_the_lead_are_scrubbed",
    ),
    Copy("idempotency_keys: stored answers naming the lead", "deleted", _DUMP),
    Copy("instagram_contacts: the person's Instagram-scoped id and handle", "deleted", _INSTAGRAM),
    Copy(
        "stream_events about the lead or copying a notification about it (users' live streams)",
        "deleted",
        _DUMP,
    ),
    Copy("bulk_job_rows of the lead (an import's report): message, matches, external_id", "null", _DUMP),
    Copy(
        "bulk_job_rows of other imports refused as duplicates of the lead: its entry in `matches`",
        "ids_only (the lead's id stays, why it matched goes)",
        "tests/privacy/test_erasure.py::test_other_imports_reports_keep_only_the_id_of_the_erased_match",
    ),
    Copy(
        "scheduled_jobs.payload of import chunks: the rows as sent (encrypted)",
        "finished chunks: rows dropped (a chunk also drops them as it finishes); open and gave-up "
        "chunks: the person's rows replaced by null",
        "tests/privacy/test_erasure.py::test_an_open_import_chunk_loses_the_persons_row",
    ),
    Copy(
        "scheduled_jobs that gave up (failed, dead): payloads and errors",
        "purged after the clinic's retention (app/domains/privacy/retention.py)",
        "tests/privacy/test_retention.py::test_gave_up_jobs_are_purged_after_the_clinics_retention",
    ),
)

# A lead's columns that name or reach the person besides the policy's PHI fields (contact, ids a
# form or an integrator sent, what the engine derived from them); set to None.
_LEAD_CONTACT = (
    "email", "phone", "phone_alt", "preferred_time", "patient_dob_index", "source_campaign",
    "source_detail", "submission_id", "external_id", "next_action", "score_factors",
)  # fmt: skip


def erased_lead_columns() -> tuple[str, ...]:
    """Every column erasure empties on the lead row: the PHI policy's lead fields, then the rest."""
    return tuple(dict.fromkeys(phi_policy.LEAD_FIELDS + _LEAD_CONTACT))


def _emptied(name: str):
    """What an erased column holds: null, or where NOT NULL the column's default (what a capture
    that said nothing gets: no treatment interest, the contact is the patient)."""
    column = Lead.__mapper__.columns[name]
    if column.nullable:
        return None
    default = column.default
    return default.arg(None) if default.is_callable else default.arg


def get_erasable_lead(*, session: UnitOfWork, clinic_id: int, lead_id: int) -> Lead | None:
    """The clinic's lead, deleted or not, locked for the erasure; None if not the clinic's."""
    return session.scalar(
        sa.select(Lead).where(Lead.id == lead_id, Lead.clinic_id == clinic_id).with_for_update()
    )


def erase(*, session: UnitOfWork, clinic_id: int, lead_id: int, actor_ref: str, now: datetime) -> dict:
    """The use case: erase the clinic's lead (another clinic's is not found) and the leads merged into it."""
    lead = get_erasable_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
    if lead is None:
        raise NotFound("lead not found")
    counts = erase_lead(session=session, lead=lead, actor_ref=actor_ref, now=now)
    for merged_id in list(session.scalars(sa.select(Lead.id).where(Lead.merged_into_id == lead.id))):
        erase(session=session, clinic_id=clinic_id, lead_id=merged_id, actor_ref=actor_ref, now=now)
    return counts


def erase_lead(*, session: UnitOfWork, lead: Lead, actor_ref: str, now: datetime) -> dict:
    """Erase `lead` (see `COPIES`) in the caller's unit of work; returns what was touched.

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
    counts["timers_cancelled"] = timers.erase_lead_timers(session=session, lead_id=lead.id, now=now)
    counts["consultations_cancelled"] = consultations.erase_for_lead(
        session=session, lead_id=lead.id, now=now
    )
    counts["activities"] = _erase_activities(session, lead.id)
    counts["further_patients"] = _erase_further_patients(session, lead.id)
    counts["tasks"] = _erase_tasks(session, lead.id, now)
    about = _erase_notifications(session, lead, notification_ids)
    counts["notifications"] = len(about)
    events, delivery_ids = _erase_events(
        session, lead.clinic_id, {"lead": [lead.id], "task": task_ids, "activity": activity_ids}
    )
    counts["events"], counts["webhook_deliveries"] = events, len(delivery_ids)
    job_ids = copies.scrub_jobs_of(
        session, {"lead": [lead.id], "task": task_ids, "notification": sorted(about)}
    )
    _scrub_why_trail(session, lead.id)
    counts["import_payloads"] = copies.scrub_import_payloads(session, lead)
    counts["audit_events"] = _erase_audit(
        session,
        lead.clinic_id,
        {
            "lead": [lead.id], "task": task_ids, "activity": activity_ids, "notification": sorted(about),
            "webhook_delivery": delivery_ids, "job": job_ids,
        },
    )  # fmt: skip
    counts["idempotent_answers"] = copies.erase_idempotent_answers(session, lead.clinic_id, lead.id)
    copies.erase_instagram_contacts(session, lead.id)
    feed.erase_lead(session=session, clinic_id=lead.clinic_id, lead_id=lead.id, notification_ids=about)
    counts["import_reports"] = copies.scrub_import_reports(session, lead)
    _tombstone(lead, now)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=lead.clinic_id, actor=actor_ref, action="lead.erase",
            subject_type="lead", subject_id=lead.id, at=now, after={"erased": True},
        ),
    )  # fmt: skip
    session.flush()
    counts["erased_at"] = lead.erased_at
    return counts


def _tombstone(lead: Lead, now: datetime) -> None:
    for key in erased_lead_columns():
        setattr(lead, key, _emptied(key))
    lead.first_name, lead.last_name = ERASED, ""
    lead.do_not_contact = lead.email_opt_out = lead.sms_opt_out = lead.whatsapp_opt_out = True
    if lead.status in OPEN_STATUSES:
        lead.status = LeadStatus.ARCHIVED.value
    lead.erased_at = lead.erased_at or now
    lead.updated_at, lead.updated_by = now, "system"


def _scrub_why_trail(session: UnitOfWork, lead_id: int) -> None:
    """What rules saw of the lead: the steps' evaluated conditions and the tasks' origins."""
    for step in session.scalars(sa.select(AutomationStep).where(AutomationStep.lead_id == lead_id)):
        step.conditions = structure_only(step.conditions or [])
    for task in session.scalars(sa.select(LeadTask).where(LeadTask.lead_id == lead_id)):
        task.origin = structure_only(task.origin or {})


def _cancel_work(session: UnitOfWork, lead: Lead, task_ids, notification_ids, now: datetime) -> int:
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


def _erase_further_patients(session: UnitOfWork, lead_id: int) -> int:
    """The lead's patients after its first: deleted (nothing of them is kept, unlike a tombstone's row)."""
    return session.execute(sa.delete(LeadPatient).where(LeadPatient.lead_id == lead_id)).rowcount


def _erase_activities(session: UnitOfWork, lead_id: int) -> int:
    # Details hold ids and flags only (the analytics read them in SQL); notes are the person's words,
    # and so are its thread's messages (app/domains/conversations).
    conversations.erase_lead(session=session, lead_id=lead_id)
    return session.execute(
        sa.update(LeadActivity)
        .where(LeadActivity.lead_id == lead_id)
        .values(notes=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def _erase_tasks(session: UnitOfWork, lead_id: int, now: datetime) -> int:
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


def _erase_notifications(session: UnitOfWork, lead: Lead, notification_ids) -> set[int]:
    """Messages to the lead (by lead_id), and staff messages about it: those whose context or link
    names the lead, or whose text quotes its name, phone or email; returns their ids. A provider's
    error text goes too: one stored before errors were redacted may quote the address."""
    about = set(notification_ids)
    needles = scrubbing.needles(lead, ERASED)
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
        if names_lead or scrubbing.quotes(needles, title, body, json.dumps(context or {})):
            about.add(nid)
    if not about:
        return about
    ids = sorted(about)
    session.execute(
        sa.update(Notification)
        .where(Notification.id.in_(ids))
        .values(
            to_address=None, to_address_index=None, title=ERASED, body="", body_html=None, context=None,
            last_error=sa.case((Notification.last_error.is_(None), None), else_=sa.literal(ERASED)),
        )
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    session.execute(
        sa.update(Notification)
        .where(Notification.id.in_(ids), Notification.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.FAILED, last_error=ERASED_REASON)
        .execution_options(synchronize_session=False)
    )
    return about


def _erase_events(
    session: UnitOfWork, clinic_id: int, subjects: dict[str, list[int]]
) -> tuple[int, list[int]]:
    """The subjects' events and their webhook deliveries, payloads reduced to ids; returns how many
    events and the deliveries' ids."""
    event_ids = []
    for subject_type, ids in subjects.items():
        for chunk in copies.chunks(ids):
            event_ids += session.scalars(
                sa.select(DomainEvent.id).where(
                    DomainEvent.clinic_id == clinic_id,
                    DomainEvent.subject_type == subject_type,
                    DomainEvent.subject_id.in_(chunk),
                )
            )
    events, deliveries = 0, []
    for chunk in copies.chunks(event_ids):
        for event in session.scalars(sa.select(DomainEvent).where(DomainEvent.id.in_(chunk))):
            event.payload = ids_only(event.payload)
            events += 1
        for delivery in session.scalars(
            sa.select(WebhookDelivery).where(WebhookDelivery.event_id.in_(chunk))
        ):
            delivery.payload = ids_only(delivery.payload)
            deliveries.append(delivery.id)
    return events, deliveries


def _erase_audit(session: UnitOfWork, clinic_id: int, subjects: dict[str, list[int]]) -> int:
    """The changes recorded by every action on the subjects (the lead and its records), to ids."""
    touched = 0
    for subject_type, ids in subjects.items():
        for chunk in copies.chunks([str(i) for i in ids]):
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
