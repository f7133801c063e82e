"""A visit no check-in recorded: a lead moved to consultation_completed by hand (a clinic that
books no consultations here, or one that does not record check-ins) attended all the same, as of
the move, so the follow-up 3 days later does not depend on a recorded check-in. A lead whose visit
booked here has not started yet is not moved there: a consultation is not completed before it starts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.consultations.events import ConsultationAttended
from app.domains.consultations.models import Consultation, ConsultationStatus
from app.domains.consultations.service import ATTENDED_STAGE
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.events import service as events
from app.platform.events.types import Delivered

if TYPE_CHECKING:
    from app.domains.pipeline.events import LeadStageChanged


def attend_by_stage_move(*, session: UnitOfWork, event: Delivered[LeadStageChanged], now: datetime) -> bool:
    """Event consumer of lead.stage_changed: a lead moved to consultation_completed whose visit no
    check-in recorded (no consultation booked here, or the visit's one still scheduled or missed)
    attended it all the same, as of the move: `consultation.attended` (`by_stage_move`) starts the
    post-consultation follow-up from the move. A check-in of that visit later replaces it
    (automation/consultation_steps.py), so one visit has one follow-up."""
    moved = event.data
    if moved.new_stage != ATTENDED_STAGE:
        return False
    visit = _visit_at(session, moved.lead_id, event.occurred_at)
    if visit is not None and visit.status == ConsultationStatus.ATTENDED:
        return False  # its check-in counts (a check-in moves the lead here itself)
    events.emit(
        session=session,
        event=ConsultationAttended(lead_id=moved.lead_id, consultation_id=None, by_stage_move=True),
        subject=events.Subject(event.clinic_id, "lead", moved.lead_id),
        now=event.occurred_at,
    )
    return True


def refuse_completion_before_visit(*, session: UnitOfWork, lead_id: int, stage: str, now: datetime) -> None:
    """Stage guard (STAGE_GUARDS of app/handlers.py): no move to consultation_completed while the
    lead's consultation booked here is still ahead and none has started or been checked in. A lead
    with no consultation booked here may move there (its clinic records visits elsewhere)."""
    if stage != ATTENDED_STAGE or _visit_at(session, lead_id, now) is not None:
        return
    ahead = session.scalar(
        sa.select(Consultation.starts_at)
        .where(Consultation.lead_id == lead_id, Consultation.status == ConsultationStatus.SCHEDULED)
        .order_by(Consultation.starts_at)
        .limit(1)
    )
    if ahead is not None:
        raise ValidationFailed(
            "stage",
            f"the lead's consultation starts at {ahead.isoformat()}: "
            f"{ATTENDED_STAGE} waits until it has started (check the family in then)",
        )


def _visit_at(session: UnitOfWork, lead_id: int, at: datetime) -> Consultation | None:
    """The lead's latest visit as of `at`: the last consultation not cancelled that had started by
    then or was checked in (early arrivals included)."""
    return session.scalar(
        sa.select(Consultation)
        .where(
            Consultation.lead_id == lead_id,
            Consultation.status != ConsultationStatus.CANCELLED,
            sa.or_(Consultation.starts_at <= at, Consultation.status == ConsultationStatus.ATTENDED),
        )
        .order_by(Consultation.starts_at.desc(), Consultation.id.desc())
        .limit(1)
    )
