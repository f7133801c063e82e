"""A lead's consent to texts and email: the one writer of its channel opt-outs and their source.

What the person does (a texted STOP or START, an unsubscribe, a spam complaint) and what a provider
reports (a bounce) is written here with its source; staff's changes, made through `update_lead`
(app/domains/leads/service.py), are checked here (`staff_change`, asking
`rules.staff_opt_in_refusal` whether they may undo one) and their reason audited
(`record_staff_consent`). Every change is audited, with the lead.updated event that ends the
lead's sequences on an opt-out.
"""

from __future__ import annotations

from datetime import datetime

from app.domains.leads import rules
from app.domains.leads.models import Lead
from app.domains.leads.updates import record_update
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, ValidationFailed


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
    record_update(
        session=session, lead=lead, old={field: False}, new={field: True}, actor_ref=actor_ref, now=now
    )
    return True


def opted_in(*, session: UnitOfWork, lead: Lead, field: str, actor_ref: str, now: datetime) -> bool:
    """The person opted back in themselves (a texted START); whether it changed."""
    setattr(lead, rules.OPT_OUT_SOURCE[field], None)
    if not getattr(lead, field):
        return False
    setattr(lead, field, False)
    record_update(
        session=session, lead=lead, old={field: True}, new={field: False}, actor_ref=actor_ref, now=now
    )
    return True


def staff_change(*, lead: Lead, fields: dict, changes: dict) -> list[str]:
    """Check a person's (staff's) change of the channel opt-outs: one they set is staff's own; one
    they undo needs `consent_reason` and must be one `rules.staff_opt_in_refusal` allows (never a
    texted STOP). Adds the opt-outs' sources to `fields`; answers the opt-outs undone."""
    undone = []
    for field, column in rules.OPT_OUT_SOURCE.items():
        if field not in fields or bool(fields[field]) == bool(getattr(lead, field)):
            continue
        if fields[field]:
            fields[column] = rules.STAFF
            continue
        why = rules.staff_opt_in_refusal(field, getattr(lead, column), changes.get("consent_source"))
        if why:
            raise Conflict(f"{field}: {why}", errors={"json": {field: [why]}}, code="opted_out_by_person")
        if not changes.get("consent_reason"):
            raise ValidationFailed("consent_reason", f"give the reason consent is recorded ({field}: false)")
        fields[column] = None
        undone.append(field)
    return undone


def record_staff_consent(
    *, session: UnitOfWork, lead: Lead, opted_in: list[str], changes: dict, actor_ref: str, now: datetime
) -> None:
    """The audit row of the consent staff recorded (`staff_change`): which opt-outs, why, and how
    the person gave it."""
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=lead.clinic_id,
            actor=actor_ref,
            action="lead.consent_recorded",
            subject_type="lead",
            subject_id=lead.id,
            after={
                "opted_in": opted_in,
                "consent_reason": changes["consent_reason"],
                "consent_source": changes.get("consent_source"),
            },
            at=now,
        ),
    )
