"""What a user's live stream says about an activity: "your lead replied"."""

from __future__ import annotations

from datetime import datetime

from app.domains.activities.models import ActivityDirection, LeadActivity
from app.domains.leads.events import lead_summary
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork
from app.platform.events.types import Delivered
from app.platform.stream import feed


def tell_owner_of_reply(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """The `activity.logged` consumer: an inbound contact from a lead (a reply by email or SMS, a call
    in) goes to the stream of the lead's owner."""
    logged = event.data
    if logged.direction != ActivityDirection.INBOUND or not logged.contact:
        return
    lead = session.get(Lead, logged.lead_id)
    activity = session.get(LeadActivity, logged.activity_id)
    if lead is None or activity is None or lead.assigned_to_id is None:
        return
    note = feed.StreamNote(
        type="reply.received",
        data={
            "lead": lead_summary(lead),
            # `notes` (what the lead said) is PHI: left out for a reader without `lead:phi`.
            "activity": {
                "id": activity.id,
                "type": activity.type,
                "occurred_at": activity.occurred_at.isoformat(),
                "notes": activity.notes,
            },
        },
        lead_id=lead.id,
    )
    feed.record(session=session, clinic_id=lead.clinic_id, user_id=lead.assigned_to_id, note=note, now=now)
