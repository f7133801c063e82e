"""What a user's live stream says about a lead: its summary, and "a lead was assigned to you"."""

from __future__ import annotations

from datetime import datetime

from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork
from app.platform.stream import feed

# Enough to show a toast and a list row without a fetch. The patient fields and the treatment
# interest are PHI: the stream process leaves them out for a reader without `lead:phi`.
SUMMARY_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "patient_first_name",
    "patient_last_name",
    "treatment_interest",
    "status",
    "pipeline_stage",
    "source_id",
    "assigned_to_id",
)


def lead_summary(lead: Lead) -> dict:
    return {name: getattr(lead, name) for name in SUMMARY_FIELDS}


def tell_new_owner(*, session: UnitOfWork, event, now: datetime) -> None:
    """The `lead.assigned` consumer: the new owner's stream says so (a new lead's first owner too)."""
    owner_id = event.payload.get("to_user_id")
    lead = session.get(Lead, event.payload["lead_id"])
    if owner_id is None or lead is None or lead.assigned_to_id != owner_id:
        return  # reassigned again since: that later event tells its own owner
    note = feed.StreamNote(
        type="lead.assigned",
        data={
            "lead": lead_summary(lead),
            "from_user_id": event.payload.get("from_user_id"),
            "reason": event.payload.get("reason"),
        },
        lead_id=lead.id,
    )
    feed.record(session=session, clinic_id=lead.clinic_id, user_id=owner_id, note=note, now=now)
