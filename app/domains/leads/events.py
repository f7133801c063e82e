"""What others are told about a lead: its events in the outbox (app/platform/events/types.py), and
on a user's live stream its summary and "a lead was assigned to you"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork
from app.platform.events.types import Event, optional
from app.platform.stream import feed


@dataclass(frozen=True)
class LeadCreated(Event):
    """A lead was captured (by any way in: the API, a web form, an import, a message from someone
    new): what the rules read of a new lead."""

    NAME = "lead.created"
    lead_id: int
    channel: str
    source_id: int
    source_category: str
    pipeline_stage: str
    status: str
    assigned_to_id: int | None
    has_phone: bool
    has_email: bool
    possible_duplicate_ids: list[int]


@dataclass(frozen=True)
class LeadUpdated(Event):
    """A lead's fields were changed (their names, never their values; a priority change says from,
    to and by whom: the timeline shows it)."""

    NAME = "lead.updated"
    lead_id: int
    changed: list[str]
    priority: str | None = optional()
    previous_priority: str | None = optional()
    by: str | None = optional()


@dataclass(frozen=True)
class LeadDeleted(Event):
    """A lead was deleted (soft: its row stays for the audit)."""

    NAME = "lead.deleted"
    lead_id: int


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


def tell_new_owner(*, session: UnitOfWork, lead: Lead, details: dict, now: datetime) -> None:
    """The new owner's stream says so (a new lead's first owner too), in the assignment's own
    transaction: on their screen as soon as it commits, however many rules the `lead.assigned`
    event then sets off in the workers (bench/stream.py: through the event's processing job the
    event waited behind them, p50 0.8 s at 20 assignments a second)."""
    data = {"lead": lead_summary(lead), "from_user_id": details["from_user_id"], "reason": details["reason"]}
    note = feed.StreamNote(type="lead.assigned", data=data, lead_id=lead.id)
    feed.record(session=session, clinic_id=lead.clinic_id, user_id=details["to_user_id"], note=note, now=now)
