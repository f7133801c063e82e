"""No contact within hours of capture → the clinic admins are told and the lead is flagged, once.

The spec's "No contact in 24 hours → escalate to manager", read for a lead (the overdue-task reading
is each task's own escalation timer, app/tasks/timers.py). At `lead.created` a ledger job is
scheduled `no_contact_escalation_hours` (24) after capture, counted on the clinic's open days; when
it fires it re-checks: the lead still open, never escalated, and no contact (activities/rules.py:
an attempt such as a voicemail or an automated email is not one) since it was captured.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.activities import service as activities
from app.audit import service as audit
from app.auth.models import Clinic
from app.business_hours.rules import BusinessCalendar
from app.leads.models import Lead
from app.scheduling import service as scheduling
from app.tasks import escalation, rules

LEAD_ESCALATION = "lead.escalate_no_contact"


def schedule_no_contact_escalation(*, session: Session, event, now: datetime) -> None:
    """Event consumer for lead.created: the lead's escalation job, `hours` of open days after capture."""
    lead = session.get(Lead, event.subject_id)
    if lead is None or not lead.is_open:
        return
    clinic = session.get(Clinic, lead.clinic_id)
    hours = rules.clinic_no_contact_escalation_hours(clinic.settings)
    calendar = BusinessCalendar.from_settings(
        clinic.timezone, clinic.business_hours or {}, clinic.holiday_country
    )
    scheduling.schedule_at_commit(
        session=session,
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


def escalate_uncontacted_lead(*, session: Session, job, now: datetime) -> None:
    """The job: an open lead nobody has had contact with since capture → every active clinic_admin
    is told (in-app and, by default, email) and the lead is flagged `escalated`, once."""
    lead = session.get(Lead, job.subject_id)
    if lead is None or not lead.is_open or lead.escalated_at is not None:
        return
    if activities.contact_since(session=session, lead_id=lead.id):
        return
    hours = (job.payload or {}).get("hours", rules.DEFAULT_NO_CONTACT_ESCALATION_HOURS)
    escalation.tell_clinic_admins(
        session=session,
        clinic_id=lead.clinic_id,
        title=f"No contact {hours:g}h after capture: {lead.first_name} {lead.last_name}",
        body=f"Lead {lead.id} was captured {lead.created_at.isoformat()}; nobody has reached them yet.",
        link=f"/api/leads/{lead.id}",
        dedupe_key=f"lead:{lead.id}:no-contact-escalation",
        now=now,
    )
    lead.escalated_at = now
    audit.record(
        session=session,
        clinic_id=lead.clinic_id,
        actor=audit.SYSTEM,
        action="lead.escalate",
        subject_type="lead",
        subject_id=lead.id,
        after={"escalated_at": now.isoformat(), "reason": f"no contact {hours:g}h after capture"},
        at=now,
    )
