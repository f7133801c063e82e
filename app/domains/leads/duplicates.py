"""Duplicate detection: the open leads of a clinic a new or changed lead may be the same family as."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.leads import queries, rules
from app.domains.leads.models import OPEN_STATUSES, DismissedDuplicate, Lead
from app.platform import phi
from app.platform.db import UnitOfWork, among
from app.platform.db.protected import keys_of


def _probe(fields: dict, dob_indexes: list[str]) -> rules.DuplicateProbe:
    return rules.DuplicateProbe(
        dob_indexes=set(dob_indexes),
        phones={p for p in (fields.get("phone"), fields.get("phone_alt")) if p},
        email=fields.get("email"),
        dob_index=fields.get("patient_dob_index"),
        names={
            n
            for n in (
                rules.normalize_name(fields.get("first_name"), fields.get("last_name")),
                rules.normalize_name(fields.get("patient_first_name"), fields.get("patient_last_name")),
            )
            if n
        },
    )


def find_duplicates(
    *, session: UnitOfWork, clinic_id: int, fields: dict, exclude_lead_id: int | None = None
) -> list[dict]:
    """Open leads of the clinic that may be the same family: [{"lead_id", "matched": [...]}].

    `fields` are normalised lead fields (as `prepare_new_lead` returns them).
    """
    dob = fields.get("patient_dob")
    dob_indexes = (
        phi.blind_indexes(
            keys=keys_of(session), purpose="patient_dob", scope=str(clinic_id), value=dob.isoformat()
        )
        if dob is not None
        else []
    )
    probe = _probe(fields, dob_indexes)
    if not (probe.phones or probe.email or probe.dob_index):
        return []
    phones = sorted(probe.phones)
    params = {
        "clinic_id": clinic_id,
        "phone_1": phones[0] if phones else None,
        "phone_2": phones[1] if len(phones) > 1 else None,  # a NULL matches nothing: no second probe
        "email": probe.email,
        "dob_index": probe.dob_index,
        "dob_index_prior": dob_indexes[1] if len(dob_indexes) > 1 else None,
        "exclude_id": exclude_lead_id or 0,
    }
    found = []
    for row in queries.duplicate_candidates(session, params):
        lead_id, phone, phone_alt, email, dob_index, first, last, patient_first, patient_last = row
        candidate = rules.Candidate(
            lead_id=lead_id,
            phones={p for p in (phone, phone_alt) if p},
            email=email,
            dob_index=dob_index,
            names={
                n
                for n in (
                    rules.normalize_name(first, last),
                    rules.normalize_name(patient_first, patient_last),
                )
                if n
            },
        )
        reasons = rules.match_reasons(probe, candidate)
        if reasons:
            found.append({"lead_id": lead_id, "matched": reasons})
    if found and exclude_lead_id:
        dismissed = dismissed_partners(session=session, clinic_id=clinic_id, lead_id=exclude_lead_id)
        found = [match for match in found if match["lead_id"] not in dismissed]
    return found


def pair(lead_id: int, other_id: int) -> tuple[int, int]:
    """A dismissed pair as it is kept: the lower id first, so either order finds it."""
    return min(lead_id, other_id), max(lead_id, other_id)


def dismissed_partners(*, session: UnitOfWork, clinic_id: int, lead_id: int) -> set[int]:
    """The leads staff said are not the same family as `lead_id` (app/domains/merging)."""
    rows = session.execute(
        sa.select(DismissedDuplicate.lead_low_id, DismissedDuplicate.lead_high_id).where(
            DismissedDuplicate.clinic_id == clinic_id,
            sa.or_(DismissedDuplicate.lead_low_id == lead_id, DismissedDuplicate.lead_high_id == lead_id),
        )
    ).all()
    return {low if high == lead_id else high for low, high in rows}


def leads_with_possible_duplicates(*, session: UnitOfWork, clinic_id: int, leads: list) -> set[int]:
    """Which of `leads` share a phone number or an email with another open, live lead of the clinic
    (one query for a page of leads: the board's badge; `find_duplicates` says which and why)."""
    phones = {p for lead in leads for p in (lead.phone, lead.phone_alt) if p}
    emails = {lead.email for lead in leads if lead.email}
    if not (phones or emails):
        return set()
    rows = session.execute(
        sa.select(Lead.id, Lead.phone, Lead.phone_alt, Lead.email).where(
            Lead.clinic_id == clinic_id,
            Lead.deleted_at.is_(None),
            Lead.status.in_([s.value for s in OPEN_STATUSES]),
            sa.or_(
                among(session, Lead.phone, sorted(phones)),
                among(session, Lead.phone_alt, sorted(phones)),
                among(session, Lead.email, sorted(emails)),
            ),
        )
    ).all()
    holders: dict[str, set[int]] = {}
    for lead_id, *keys in rows:
        for key in keys:
            if key:
                holders.setdefault(key, set()).add(lead_id)
    dismissed = _dismissed_of(session, clinic_id, [lead.id for lead in leads])
    return {
        lead.id
        for lead in leads
        if any(
            holders.get(key, set()) - {lead.id} - dismissed.get(lead.id, set())
            for key in (lead.phone, lead.phone_alt, lead.email)
            if key
        )
    }


def _dismissed_of(session: UnitOfWork, clinic_id: int, lead_ids: list[int]) -> dict[int, set[int]]:
    """lead id -> the leads staff said are not its family, for a page of leads (one query)."""
    rows = session.execute(
        sa.select(DismissedDuplicate.lead_low_id, DismissedDuplicate.lead_high_id).where(
            DismissedDuplicate.clinic_id == clinic_id,
            sa.or_(
                among(session, DismissedDuplicate.lead_low_id, lead_ids),
                among(session, DismissedDuplicate.lead_high_id, lead_ids),
            ),
        )
    ).all()
    found: dict[int, set[int]] = {}
    for low, high in rows:
        found.setdefault(low, set()).add(high)
        found.setdefault(high, set()).add(low)
    return found


def duplicates_of_lead(*, session: UnitOfWork, lead) -> list[dict]:
    """The other open leads of `lead`'s clinic that may be the same family (by phone, email or name),
    as `find_duplicates` finds them for a new lead."""
    fields = {
        name: getattr(lead, name)
        for name in ("phone", "phone_alt", "email", "first_name", "last_name", "patient_first_name",
                     "patient_last_name")
    }  # fmt: skip
    return find_duplicates(session=session, clinic_id=lead.clinic_id, fields=fields, exclude_lead_id=lead.id)
