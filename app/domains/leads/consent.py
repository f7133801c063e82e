"""A lead's consent to texts and email: the one writer of its channel opt-outs and their source.

What the person does (a texted STOP or START, an unsubscribe, a spam complaint) and what a provider
reports (a bounce) is written here with its source; staff's changes go through `update_lead`
(app/domains/leads/service.py), which asks `rules.staff_opt_in_refusal` whether they may undo one
and records their reason (`record_staff_consent`). Every change is audited, with the lead.updated
event that ends the lead's sequences on an opt-out.
"""

from __future__ import annotations

from datetime import datetime

from app.domains.leads import rules
from app.domains.leads import service as leads
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork


def opted_out(
    *, session: UnitOfWork, lead: Lead, field: str, source: str, actor_ref: str, now: datetime
) -> bool:
    """The person (or their provider) opted the lead out of `field`'s channel; whether it changed.
    Already opted out by staff, the person's own now stands in its place: staff can no longer undo it."""
    column = rules.OPT_OUT_SOURCE[field]
    if getattr(lead, field):
        if source in rules.PERSONS_OWN and getattr(lead, column) not in rules.PERSONS_OWN:
            setattr(lead, column, source)
        return False
    setattr(lead, field, True)
    setattr(lead, column, source)
    leads.record_update(
        session=session, lead=lead, old={field: False}, new={field: True}, actor_ref=actor_ref, now=now
    )
    return True


def opted_in(*, session: UnitOfWork, lead: Lead, field: str, actor_ref: str, now: datetime) -> bool:
    """The person opted back in themselves (a texted START); whether it changed."""
    setattr(lead, rules.OPT_OUT_SOURCE[field], None)
    if not getattr(lead, field):
        return False
    setattr(lead, field, False)
    leads.record_update(
        session=session, lead=lead, old={field: True}, new={field: False}, actor_ref=actor_ref, now=now
    )
    return True
