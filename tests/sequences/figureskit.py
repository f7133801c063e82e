"""A hand-built data set for the follow-up figures (the reports page, GET /api/leads/analytics/follow-ups):
two sequences, their enrollments, conversions and the messages their steps sent, with known sums."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.automation.models import AutomationStep, SequenceEnrollment
from app.domains.leads.models import Lead, LeadSource
from app.domains.sequences.models import Sequence

# Per sequence: its enrollments (status, current step, converted) and the messages of each step
# (step index -> [(days ago, replied)]); 0 days ago is now, the clinic's today.
NURTURE = {
    "enrollments": [
        *[("active", 1, True)] * 2,
        *[("active", 1, False)] * 2,
        *[("completed", 1, False)] * 2,
    ],
    "messages": {0: [(2, True)] * 3 + [(2, False)] * 3, 1: [(0, True)] + [(0, False)] * 4},
}
REVIVE = {"enrollments": [("active", 0, False)], "messages": {0: [(3, True)] * 2}}
# What the figures are, from the above: 5 sent today; 13 in the range, 6 answered.
EXPECTED = {
    "sent_today": 5,
    "sent": 13,
    "replied": 6,
    "response_rate": 0.4615,
    "conversion": {"Nurture": (6, 2, 0.3333), "Revive": (1, 0, 0.0)},
    # At least 5 sent: Revive's 2 are too few to rank.
    "top": [("Nurture", 1, 6, 3, 0.5), ("Nurture", 2, 5, 1, 0.2)],
    "at_step": [("Nurture", 2, 4), ("Revive", 1, 1)],
}


def seed_follow_up_figures(db, clinic_id: int, now: datetime) -> None:
    with db.unit_of_work() as session:
        for name, facts in (("Nurture", NURTURE), ("Revive", REVIVE)):
            _sequence(session, clinic_id, name, facts, now)


def _sequence(session, clinic_id: int, name: str, facts: dict, now: datetime) -> None:
    sequence = Sequence(clinic_id=clinic_id, name=name, steps=[], created_at=now, updated_at=now)
    session.add(sequence)
    session.flush()
    enrollments = []
    for status, current, converted in facts["enrollments"]:
        lead_id = _lead(
            session, clinic_id, converted_at=now - timedelta(days=1) if converted else None, now=now
        )
        enrollment = SequenceEnrollment(
            clinic_id=clinic_id, sequence_id=sequence.id, lead_id=lead_id, status=status,
            current_step=current, enrolled_at=now - timedelta(days=4), enrolled_by="test",
        )  # fmt: skip
        session.add(enrollment)
        session.flush()
        enrollments.append(enrollment)
    for index, sent in facts["messages"].items():
        for number, (days_ago, replied) in enumerate(sent):
            enrollment = enrollments[number % len(enrollments)]
            when = now - timedelta(days=days_ago)
            step = AutomationStep(
                clinic_id=clinic_id, lead_id=enrollment.lead_id, enrollment_id=enrollment.id,
                sequence_step=index, action_type="send_sms", action={}, run_at=when, status="done",
                dedupe_key=f"figures:{sequence.id}:{index}:{number}", created_at=when,
            )  # fmt: skip
            session.add(step)
            session.flush()
            session.add(
                LeadActivity(
                    clinic_id=clinic_id, lead_id=enrollment.lead_id, type="SMS", direction="OUTBOUND",
                    occurred_at=when, created_at=when, actor="system", replied=replied,
                    details={"automation_step_id": step.id},
                )
            )  # fmt: skip


def _lead(session, clinic_id: int, *, converted_at: datetime | None, now: datetime) -> int:
    source = session.scalars(
        sa.select(LeadSource.id).where(LeadSource.clinic_id == clinic_id).order_by(LeadSource.id).limit(1)
    ).one()
    created = now - timedelta(days=5)
    row = Lead(
        clinic_id=clinic_id, status="CONVERTED" if converted_at else "ACTIVE", pipeline_stage="new_lead",
        stage_entered_at=created, first_name="Jane", last_name="Doe", preferred_contact="PHONE",
        patient_relationship="SELF", source_id=source, treatment_interest=[], created_at=created,
        updated_at=created, created_by="test", updated_by="test", converted_at=converted_at,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row.id
