"""What a call's outcome decides about the lead: the person who logged "not interested" or
"converted" has said how the lead ends, so the lead closes that way (lost for that reason, or
converted) as the call's event is processed, without a second step in the API. An event consumer of
`activity.logged` (app/handlers.py): a lead already closed stays as it is."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from app.domains.activities.models import CallOutcome, LeadActivity
from app.domains.leads.models import LostReason
from app.domains.pipeline import service as pipeline
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, InvalidTransition, ValidationFailed
from app.platform.events.types import Delivered
from app.platform.roles import Actor

if TYPE_CHECKING:
    from app.domains.activities.events import ActivityLogged

ENGINE = "pipeline"


def close_on_call_outcome(
    *, session: UnitOfWork, event: Delivered[ActivityLogged], now: datetime
) -> str | None:
    """Lost (NOT_INTERESTED) on a `not_interested` call, converted on a `converted` one; returns
    how the lead closed, or None (another outcome, or a lead already closed)."""
    outcome, lead_id = event.data.outcome, event.data.lead_id
    if outcome not in (CallOutcome.NOT_INTERESTED, CallOutcome.CONVERTED) or not lead_id:
        return None
    actor = Actor.engine(event.clinic_id, ENGINE)
    try:
        with session.begin_nested():  # a refusal (closed already, locked) leaves nothing half-written
            if outcome == CallOutcome.CONVERTED:
                pipeline.convert_lead(session=session, actor=actor, lead_id=lead_id, now=now)
                return "converted"
            pipeline.mark_lost(
                session=session,
                actor=actor,
                lead_id=lead_id,
                reason=_lost_reason(session, event.data.activity_id),
                notes="the family said on the phone they are not interested",
                now=now,
            )
            return "lost"
    except (InvalidTransition, ValidationFailed, Conflict):
        return None


def _lost_reason(session: UnitOfWork, activity_id: int) -> str:
    """The reason the family gave on the call (its `lost_reason`), else NOT_INTERESTED."""
    activity = session.get(LeadActivity, activity_id)
    details = (activity.details if activity is not None else None) or {}
    return details.get("lost_reason") or LostReason.NOT_INTERESTED.value
