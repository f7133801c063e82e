"""Recording that a lead changed: its new version, the audit row (protected values never written
there) and the lead.updated event; every use case that changes a lead's fields ends here."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

from app.domains.leads.events import LeadUpdated
from app.domains.leads.models import Lead
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.events import service as events

PROTECTED_FIELDS = ("patient_dob", "insurance_member_id", "notes")


def redacted(values: dict) -> dict:
    """Audit rows are plain JSON: protected values are never written there, only that they changed."""
    out = {}
    for key, value in values.items():
        if key in PROTECTED_FIELDS:
            out[key] = None if value is None else "[protected]"
        elif isinstance(value, date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def record_update(
    *, session: UnitOfWork, lead: Lead, old: dict, new: dict, actor_ref: str, now: datetime
) -> None:
    """A lead's fields changed (`old` → `new`, changed keys only): a new version, the audit row and
    the `lead.updated` event that rules and sequence stops read."""
    _record(session, lead, (old, new), actor_ref, now, automation=True)


def record_reaction(
    *, session: UnitOfWork, lead: Lead, old: dict, new: dict, actor_ref: str, now: datetime
) -> None:
    """`record_update` for a change a rule made in reaction to a `lead.updated`: recorded alike, but
    its own `lead.updated` fires no rule, so two rules can never bounce a lead between two values."""
    _record(session, lead, (old, new), actor_ref, now, automation=False)


def _record(
    session: UnitOfWork, lead: Lead, diff: tuple[dict, dict], actor_ref: str, now: datetime, automation: bool
) -> None:
    old, new = diff
    touch(lead=lead, actor_ref=actor_ref, now=now)
    session.flush()
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=lead.clinic_id,
            actor=actor_ref,
            action="lead.update",
            subject_type="lead",
            subject_id=lead.id,
            before=redacted(old),
            after=redacted(new),
            at=now,
        ),
    )
    event = LeadUpdated(lead_id=lead.id, changed=sorted(new))
    if "priority" in new:  # what the timeline shows (not PHI): from, to and by whom
        event = dataclasses.replace(
            event, priority=new["priority"], previous_priority=old.get("priority"), by=actor_ref
        )
    events.emit(
        session=session,
        event=event,
        subject=events.Subject.lead(lead),
        now=now,
        automation=automation,
    )


def touch(*, lead: Lead, actor_ref: str, now: datetime) -> None:
    """Mark a lead changed by another domain's use case (stage, owner): a new version and ETag."""
    lead.updated_at = now
    lead.updated_by = actor_ref
