"""Escalation, for both readings of "No contact in 24 hours -> escalate to manager":
every active clinic admin is told, once each, and the lead or task is flagged, once.

- A lead nobody reached: at `lead.created` a ledger job is scheduled `no_contact_escalation_hours`
  (24) after capture, counted on the clinic's open days; when it fires it re-checks: the lead still
  open, never escalated, and no contact (activities/rules.py: an attempt such as a voicemail or an
  automated email is not one) since it was captured.
- An overdue task nobody acted on: the task's escalation timer (app/domains/tasks/alerts/timers.py
  writes it with the reminders) fires after its due time; still open with no contact since: raised to URGENT.
"""

from __future__ import annotations

from datetime import datetime

from app.domains.activities import service as activities
from app.domains.auth.models import Clinic
from app.domains.business_hours.rules import BusinessCalendar
from app.domains.leads.models import Lead
from app.domains.outbound import service as notifications
from app.domains.tasks import rules
from app.domains.tasks.alerts.timers import live_task
from app.domains.tasks.models import TaskPriority
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.events.types import Delivered
from app.platform.scheduling import service as scheduling
from app.platform.scheduling.memo import Memo

LEAD_ESCALATION = "lead.escalate_no_contact"


def schedule_no_contact_escalation(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """Event consumer for lead.created: the lead's escalation job, `hours` of open days after capture."""
    lead = session.get(Lead, event.subject_id)
    if lead is None or not lead.is_open:
        return
    clinic = session.get(Clinic, lead.clinic_id)
    hours = rules.clinic_no_contact_escalation_hours(clinic.settings)
    calendar = BusinessCalendar.from_settings(
        clinic.timezone, clinic.business_hours or {}, clinic.holiday_country
    )
    session.schedule(
        scheduling.Job(
            kind=LEAD_ESCALATION,
            due_at=rules.no_contact_deadline(calendar, lead.created_at, hours),
            dedupe_key=f"lead:{lead.id}:no-contact-escalation",
            now=now,
            clinic_id=lead.clinic_id,
            subject_type="lead",
            subject_id=lead.id,
            payload={"hours": hours},
            origin={"event_id": event.id, "event_type": event.type},
        )
    )


def escalate_uncontacted_lead(*, session: UnitOfWork, job, now: datetime, memo: Memo) -> None:
    """The job: an open lead nobody has had contact with since capture → every active clinic_admin
    is told (in-app and, by default, email) and the lead is flagged `escalated`, once."""
    lead = session.get(Lead, job.subject_id)
    if lead is None or not lead.is_open or lead.escalated_at is not None:
        return
    if activities.contact_since(session=session, lead_id=lead.id):
        return
    hours = (job.payload or {}).get("hours", rules.DEFAULT_NO_CONTACT_ESCALATION_HOURS)
    notifications.notify_admins(
        session=session,
        clinic_id=lead.clinic_id,
        notice=notifications.StaffNotice(
            kind="escalation",
            title=f"No contact {hours:g}h after capture: {lead.first_name} {lead.last_name}",
            body=f"Lead {lead.id} was captured {lead.created_at.isoformat()}; nobody has reached them yet.",
            link=f"/api/leads/{lead.id}",
            dedupe_key=f"lead:{lead.id}:no-contact-escalation",
        ),
        now=now,
        memo=memo,
    )
    lead.escalated_at = now
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=lead.clinic_id,
            actor=audit.SYSTEM,
            action="lead.escalate",
            subject_type="lead",
            subject_id=lead.id,
            after={"escalated_at": now.isoformat(), "reason": f"no contact {hours:g}h after capture"},
            at=now,
        ),
    )


def escalate_overdue_task(*, session: UnitOfWork, job, now: datetime, memo: Memo) -> None:
    """Still open long after due with no contact since: tell every clinic_admin, raise to URGENT, once."""
    task = live_task(session, job)
    if task is None or task.escalated_at is not None:
        return
    if activities.contact_since(session=session, lead_id=task.lead_id, since=task.due_at):
        return
    lead = session.get(Lead, task.lead_id)
    notifications.notify_admins(
        session=session,
        clinic_id=task.clinic_id,
        notice=notifications.StaffNotice(
            kind="escalation",
            title=f"Overdue {_span(job.payload.get('hours', 24))} with no contact: {task.title}",
            body=f"{lead.first_name} {lead.last_name}; task {task.id} was due {task.due_at.isoformat()}",
            link=f"/api/leads/tasks/{task.id}",
            dedupe_key=f"task:{task.id}:escalation",
        ),
        now=now,
        memo=memo,
    )
    before = rules.audit_snapshot(task)
    task.priority, task.escalated_at, task.updated_at = TaskPriority.URGENT, now, now
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=task.clinic_id,
            actor=audit.SYSTEM,
            action="task.escalate",
            subject_type="task",
            subject_id=task.id,
            before=before,
            after=rules.audit_snapshot(task),
            at=now,
        ),
    )


def _span(hours: float) -> str:
    """How long a task has been overdue, as a person says it: "24h", or "10 min" for an urgent call."""
    return f"{hours:g}h" if hours >= 1 else f"{round(hours * 60)} min"
