"""The consultation reports: show rate, treatment acceptance and no-show recovery.

Counted over the clinic's consultations that started in the range and have an outcome (attended or
missed; cancelled ones were never due, and one still awaiting its no-show check has no outcome yet),
narrowed by the lead's owner and source like every report:
- show rate: attended / (attended + missed), overall and by the lead's source, its coordinator, the
  local weekday of the start, whether a reminder went before it (a message the consultation's
  rules sent after its booking, not the confirmation at the booking itself), and how it was booked
  (staff, webhook, self: app/domains/consultations/models.py BookedVia);
- treatment acceptance: of the leads with an attended consultation, those who accepted treatment
  (converted, or in treatment_accepted);
- no-show recovery: of the missed consultations, those whose lead booked another within 14 days.
Grouping is done here in Python over a range's consultations (hundreds a month per clinic), so the
weekday is the clinic's local one on every database.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.analytics import rollups
from app.domains.analytics.figures import Cohort, period, ratio
from app.domains.auth.models import Clinic, User
from app.domains.consultations.models import Consultation, ConsultationStatus
from app.domains.leads.models import Lead, LeadSource, LeadStatus
from app.platform.db import UnitOfWork

RECOVERY_DAYS = 14
# The confirmation goes as the booking's event is processed, seconds after it: a later message
# before the start is a reminder.
CONFIRMATION_WINDOW = timedelta(minutes=10)
ACCEPTED_STAGE = "treatment_accepted"
OUTCOMES = (ConsultationStatus.ATTENDED.value, ConsultationStatus.NO_SHOW.value)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _held(session: UnitOfWork, cohort: Cohort) -> list:
    """(consultation, lead, source name, owner name) of the range's consultations with an outcome."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    stmt = (
        sa.select(Consultation, Lead, LeadSource.name, User.name)
        .join(Lead, Lead.id == Consultation.lead_id)
        .outerjoin(LeadSource, LeadSource.id == Lead.source_id)
        .outerjoin(User, User.id == Lead.assigned_to_id)
        .where(
            Consultation.clinic_id == clinic_id,
            Consultation.starts_at >= start,
            Consultation.starts_at < end,
            Consultation.status.in_(OUTCOMES),
            Lead.deleted_at.is_(None),
        )
    )
    if coordinator_id is not None:
        stmt = stmt.where(Lead.assigned_to_id == coordinator_id)
    if source_id is not None:
        stmt = stmt.where(Lead.source_id == source_id)
    return list(session.execute(stmt.order_by(Consultation.starts_at, Consultation.id)))


def _reminded(session: UnitOfWork, consultation_ids: list[int]) -> set[int]:
    """The consultations the family got an automated message before, other than the confirmation
    at the booking: one sent more than CONFIRMATION_WINDOW after the booking and before the start."""
    if not consultation_ids:
        return set()
    rows = session.execute(
        sa.select(Consultation.id, Consultation.created_at, LeadActivity.occurred_at)
        .join(LeadActivity, LeadActivity.lead_id == Consultation.lead_id)
        .where(
            Consultation.id.in_(consultation_ids),
            rollups.automated_message(LeadActivity),
            LeadActivity.occurred_at > Consultation.created_at,
            LeadActivity.occurred_at < Consultation.starts_at,
        )
    )
    return {cid for cid, booked, sent in rows if sent - booked > CONFIRMATION_WINDOW}


def _rebooked(session: UnitOfWork, missed: list[Consultation]) -> set[int]:
    """The missed consultations whose lead booked another within RECOVERY_DAYS of the no-show."""
    if not missed:
        return set()
    later = list(
        session.execute(
            sa.select(Consultation.lead_id, Consultation.id, Consultation.created_at).where(
                Consultation.lead_id.in_({c.lead_id for c in missed})
            )
        )
    )
    recovered = set()
    for consultation in missed:
        noticed = consultation.no_show_at or consultation.starts_at
        if any(
            lead_id == consultation.lead_id
            and other_id != consultation.id
            and noticed <= created_at <= noticed + timedelta(days=RECOVERY_DAYS)
            for lead_id, other_id, created_at in later
        ):
            recovered.add(consultation.id)
    return recovered


def _rates(groups: dict[str, Counter]) -> list[dict]:
    return [
        {
            "key": key,
            "due": counts["due"],
            "attended": counts["attended"],
            "no_show": counts["due"] - counts["attended"],
            "show_rate": ratio(counts["attended"], counts["due"]),
        }
        for key, counts in groups.items()
    ]


def consultations(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Show rate (overall; by source, coordinator, weekday, reminded or not), treatment acceptance
    and no-show recovery over the consultations that started in the range."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    zone = ZoneInfo(session.get(Clinic, clinic_id).timezone)
    held = _held(session, cohort)
    reminded = _reminded(session, [c.id for c, *_ in held])
    groups: dict[str, dict[str, Counter]] = {
        "source": {},
        "coordinator": {},
        "weekday": {},
        "reminded": {},
        "booked_via": {},
    }
    for consultation, _lead, source, owner in held:
        attended = consultation.status == ConsultationStatus.ATTENDED
        keys = {
            "source": source or "(none)",
            "coordinator": owner or "(unassigned)",
            "weekday": WEEKDAYS[consultation.starts_at.astimezone(zone).weekday()],
            "reminded": "reminded" if consultation.id in reminded else "not reminded",
            "booked_via": consultation.booked_via,
        }
        for group, key in keys.items():
            counts = groups[group].setdefault(key, Counter())
            counts["due"] += 1
            counts["attended"] += int(attended)
    attended_leads = {lead.id: lead for c, lead, *_ in held if c.status == ConsultationStatus.ATTENDED}
    accepted = [
        lead
        for lead in attended_leads.values()
        if lead.status == LeadStatus.CONVERTED.value or lead.pipeline_stage == ACCEPTED_STAGE
    ]
    missed = [c for c, *_ in held if c.status == ConsultationStatus.NO_SHOW]
    recovered = _rebooked(session, missed)
    due, shown = len(held), len(held) - len(missed)
    by = {group: _rates(keyed) for group, keyed in groups.items()}
    return {
        **period(start, end, coordinator_id=coordinator_id, source_id=source_id),
        "due": due,
        "attended": shown,
        "no_show": len(missed),
        "show_rate": ratio(shown, due),
        "by": by,
        "treatment_acceptance": {
            "attended_leads": len(attended_leads),
            "accepted": len(accepted),
            "rate": ratio(len(accepted), len(attended_leads)),
        },
        "no_show_recovery": {
            "no_shows": len(missed),
            "rebooked_within_14_days": len(recovered),
            "rate": ratio(len(recovered), len(missed)),
        },
        # The CSV's rows: one per group and key.
        "rows": [{"group": group, **row} for group, rows in by.items() for row in rows],
    }


REPORTS = {"consultations": consultations}
