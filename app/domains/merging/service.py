"""Merge two leads that are the same family, or dismiss a suggested duplicate (issue 64 item 3)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.leads import duplicates
from app.domains.leads import service as leads
from app.domains.leads.models import DismissedDuplicate, Lead, LeadStatus
from app.domains.merging import moves
from app.domains.merging.events import LeadMerged
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork, new_row
from app.platform.errors import Conflict
from app.platform.events import service as events
from app.platform.roles import Actor

# What the surviving lead takes from the merged one where its own is empty (its own always wins).
FILLABLE = (
    "email",
    "phone",
    "phone_alt",
    "preferred_time",
    "patient_first_name",
    "patient_last_name",
    "patient_dob",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "source_campaign",
    "source_detail",
    "referring_provider_id",
    "referring_patient_id",
    "treatment_interest",
    "insurance_carrier",
    "insurance_member_id",
    "notes",
)
# Kept with the value they describe (the DOB's digest and age group travel with the DOB).
COMPANIONS = {"patient_dob": ("patient_dob_index", "patient_age_group")}


def _empty(value) -> bool:
    return value is None or value == "" or value == []


def fields_to_take(survivor: Lead, other: Lead) -> list[str]:
    """The fields the survivor would take from `other`: empty on the survivor, set on the other."""
    return [f for f in FILLABLE if _empty(getattr(survivor, f)) and not _empty(getattr(other, f))]


def dismiss(*, session: UnitOfWork, actor: Actor, lead_id: int, other_id: int, now: datetime) -> dict:
    """Say two leads are not the same family: neither is suggested as the other's duplicate again.
    Idempotent: a second dismissal changes nothing."""
    # Both locked, lowest id first: two dismissals of one pair run one after the other.
    locked = {i: leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=i, for_update=True)
              for i in sorted({lead_id, other_id})}  # fmt: skip
    lead, other = locked[lead_id], locked[other_id]
    if lead.id == other.id:
        raise Conflict("a lead is not a duplicate of itself", code="merge_into_itself")
    low, high = duplicates.pair(lead.id, other.id)
    found = session.scalar(
        sa.select(DismissedDuplicate).where(
            DismissedDuplicate.clinic_id == actor.clinic_id,
            DismissedDuplicate.lead_low_id == low,
            DismissedDuplicate.lead_high_id == high,
        )
    )
    if found is None:
        found = session.add(
            new_row(
                DismissedDuplicate,
                clinic_id=actor.clinic_id,
                lead_low_id=low,
                lead_high_id=high,
                dismissed_by=actor.ref,
                created_at=now,
            )
        )
        audit.record(
            session,
            audit.AuditEntry(
                clinic_id=actor.clinic_id,
                actor=actor.ref,
                action="lead.duplicate_dismissed",
                subject_type="lead",
                subject_id=lead.id,
                after={"other_lead_id": other.id},
                at=now,
            ),
        )
    return {"lead_id": lead.id, "other_lead_id": other.id, "dismissed_at": found.created_at}


def _check_mergeable(survivor: Lead, other: Lead) -> None:
    if survivor.id == other.id:
        raise Conflict(f"lead {survivor.id} cannot be merged into itself", code="merge_into_itself")
    for lead in (other, survivor):
        if lead.merged_into_id is not None:
            raise Conflict(
                f"lead {lead.id} was merged into lead {lead.merged_into_id} already", code="already_merged"
            )
        leads.ensure_not_converted(lead)


def merge_preview(*, session: UnitOfWork, actor: Actor, lead_id: int, from_lead_id: int) -> dict:
    """What merging `from_lead_id` into `lead_id` would do, for a confirmation step: the fields the
    lead would take (names only: the values are PHI). Refused as the merge itself would be."""
    survivor = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    other = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=from_lead_id)
    _check_mergeable(survivor, other)
    return {"lead_id": survivor.id, "from_lead_id": other.id, "fields": fields_to_take(survivor, other)}


def merge(*, session: UnitOfWork, actor: Actor, lead_id: int, from_lead_id: int, now: datetime) -> Lead:
    """Merge lead `from_lead_id` into lead `lead_id`, in the caller's one transaction: the survivor
    keeps its fields and takes the other's where its own are empty; everything that points at the
    merged lead moves to the survivor (or is closed, see moves.py); the merged lead is archived with
    `merged_into_id` and its pending jobs cancelled; audited; `lead.merged` on the outbox."""
    # Locked lowest id first: two merges of the same pair in opposite directions cannot deadlock.
    locked = {i: leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=i, for_update=True)
              for i in sorted({lead_id, from_lead_id})}  # fmt: skip
    survivor, other = locked[lead_id], locked[from_lead_id]
    _check_mergeable(survivor, other)
    filled = fields_to_take(survivor, other)
    for name in filled:
        for column in (name, *COMPANIONS.get(name, ())):
            setattr(survivor, column, getattr(other, column))
    own_patient = (survivor.patient_first_name, survivor.patient_last_name)
    moved = moves.move_everything(
        session=session, from_id=other.id, to_id=survivor.id, now=now, survivor_patient=own_patient
    )
    other.status = LeadStatus.ARCHIVED
    other.merged_into_id = survivor.id
    for lead in (survivor, other):
        lead.updated_at, lead.updated_by = now, actor.ref
    # Names of fields and counts only: the values are PHI.
    facts = {"lead_id": survivor.id, "merged_lead_id": other.id, "filled": filled, "moved": moved}
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead.merge",
            subject_type="lead",
            subject_id=survivor.id,
            after=facts,
            at=now,
        ),
    )
    events.emit(session=session, event=LeadMerged(**facts), subject=events.Subject.lead(survivor), now=now)
    return survivor
