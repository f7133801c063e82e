"""A lead's patients: the contact (a parent, usually) enquires for one or more people.

The lead's own patient columns hold its first patient: duplicates, scoring, automation rules, events
and the export read them, as before there was a list. Further patients (a family's second child) are
`LeadPatient` rows, in order. The API reads and writes them as one list, `patients`, the first
entry being the lead's columns. A patient's name and year of birth are PHI like the first
patient's: served only to a reader with `lead:phi` (app/platform/phi_policy.py) and searched only
for one (listing.py), deleted by its erasure (app/domains/privacy/erasure.py).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.leads import rules
from app.domains.leads.models import FURTHER_PATIENT_SEARCH, Lead, LeadPatient, PatientRelationship
from app.platform.api import MIN_YEAR
from app.platform.db import UnitOfWork
from app.platform.db.rows import new_row
from app.platform.db.search import search_text
from app.platform.errors import ValidationFailed

# Where prepared fields carry the further patients until the lead has an id (intake stores them).
FURTHER = "further_patients"
MAX_PATIENTS = 8
FIRST_PATIENT_COLUMNS = {
    "first_name": "patient_first_name",
    "last_name": "patient_last_name",
    "birth_year": "patient_birth_year",
    "relationship": "patient_relationship",
}


def this_year(*, timezone: str, now: datetime) -> int:
    return now.astimezone(ZoneInfo(timezone)).year


def _failed(index: int, name: str, message: str) -> ValidationFailed:
    """A 422 naming the entry and its field, as the schema names a nested field's error."""
    return ValidationFailed({"patients": {str(index): {name: [message]}}})


def normalised(patients: list[dict], *, year: int) -> list[dict]:
    """The patients as stored: names trimmed, an age turned into a year of birth (`year` less the
    age: a year either way, as a phone call's "she is twelve" says), the year checked."""
    out = []
    for index, patient in enumerate(patients):
        first = (patient.get("first_name") or "").strip() or None
        relationship = patient.get("relationship") or (
            PatientRelationship.SELF.value if index == 0 else PatientRelationship.CHILD.value
        )
        if first is None and not (index == 0 and relationship == PatientRelationship.SELF.value):
            raise _failed(index, "first_name", "a patient needs a first name")
        born = patient.get("birth_year")
        if patient.get("age") is not None:
            if born is not None:
                raise _failed(index, "age", "give the age or the year of birth, not both")
            born = year - patient["age"]
        if born is not None and born > year:
            raise _failed(index, "birth_year", "a year of birth cannot be in the future")
        if born is not None and born < MIN_YEAR:
            raise _failed(index, "birth_year", f"a year of birth before {MIN_YEAR} is not plausible")
        last = (patient.get("last_name") or "").strip() or None
        out.append({"first_name": first, "last_name": last, "birth_year": born, "relationship": relationship})
    return out


def first_patient_fields(first: dict) -> dict:
    """The lead's own patient columns for the list's first patient."""
    return {column: first[key] for key, column in FIRST_PATIENT_COLUMNS.items()}


def age_group_from_year(birth_year: int | None, at: datetime) -> str | None:
    """The age group of someone born in `birth_year`, taken as born mid-year (off by a year at most,
    which moves an age group only at its edges)."""
    return None if birth_year is None else rules.age_group(date(birth_year, 7, 1), at)


def further_of(session: UnitOfWork, lead_ids: list[int]) -> dict[int, list[LeadPatient]]:
    """The further patients of each lead in `lead_ids`, in order (a lead without any is absent)."""
    if not lead_ids:
        return {}
    rows = session.scalars(
        sa.select(LeadPatient)
        .where(LeadPatient.lead_id.in_(lead_ids))
        .order_by(LeadPatient.lead_id, LeadPatient.position)
    )
    found: dict[int, list[LeadPatient]] = {}
    for row in rows:
        found.setdefault(row.lead_id, []).append(row)
    return found


def leads_named(session: UnitOfWork, *, clinic_id: int, pattern: str) -> list[int]:
    """The clinic's leads with a further patient whose names match a LIKE `pattern` (escaped by `\\`)."""
    named = search_text(LeadPatient, FURTHER_PATIENT_SEARCH).like(pattern, escape="\\")
    found = sa.select(LeadPatient.lead_id).where(LeadPatient.clinic_id == clinic_id, named).distinct()
    return list(session.scalars(found))


def summary(further: list[LeadPatient] | list[dict]) -> list[dict]:
    """Further patients as plain values (what the audit row and a comparison read)."""
    keys = ("first_name", "last_name", "birth_year", "relationship")
    return [{key: (p[key] if isinstance(p, dict) else getattr(p, key)) for key in keys} for p in further]


def store_further(*, session: UnitOfWork, lead: Lead, further: list[dict]) -> None:
    """Make `further` (normalised, in order) the lead's further patients, replacing any it had."""
    session.execute(sa.delete(LeadPatient).where(LeadPatient.lead_id == lead.id))
    for position, patient in enumerate(further, start=1):
        session.add(
            new_row(LeadPatient, clinic_id=lead.clinic_id, lead_id=lead.id, position=position, **patient)
        )


def listed(lead, further: list[LeadPatient]) -> list[dict]:
    """The lead's patients as the API shows them: its own (when named), then the further ones. The
    first's year of birth is the year of its date of birth when that is known."""
    first = {key: getattr(lead, column) for key, column in FIRST_PATIENT_COLUMNS.items()}
    dob = getattr(lead, "patient_dob", None)  # a board's card has no date of birth (it is encrypted)
    if dob is not None:
        first["birth_year"] = dob.year
    named = first["first_name"] or first["last_name"]
    return ([first] if named else []) + summary(further)
