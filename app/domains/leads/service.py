"""Use cases of leads: read, update, delete, and the building blocks of a new lead.

Creating a lead needs the pipeline (default stage) and assignment, which sit above this domain,
so the create use case lives in `app/domains/intake`; this module gives it the building blocks
(`prepare_new_lead`, `new_lead`, `store_new_lead`; duplicates.find_duplicates and
sources.new_lead_source_join beside). Listing is listing.py; sources are sources.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import attributes

from app.domains.auth import service as auth
from app.domains.leads import consent, listing, patients, rules, suppression
from app.domains.leads.events import LeadDeleted
from app.domains.leads.models import Lead, LeadSource, LeadStatus, PatientRelationship
from app.domains.leads.sources import checked_source
from app.domains.leads.updates import record_update, redacted
from app.platform import phi, phi_policy
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork, new_row
from app.platform.db.protected import keys_of
from app.platform.errors import Conflict, NotFound, ValidationFailed
from app.platform.events import service as events
from app.platform.roles import Actor

if TYPE_CHECKING:
    from app.domains.auth.models import Clinic

# --- leads: reading --------------------------------------------------------------------------


def note_contact(*, session: UnitOfWork, lead: Lead, at: datetime) -> None:
    """Move the lead's `last_contacted_at` up to `at` (a contact logged late never moves it back).

    One conditional UPDATE: two contacts logged at once both end at the latest. Core, so it does not
    touch `updated_at` (a contact is the lead's history, not an edit of the lead)."""
    session.execute(
        sa.update(Lead)
        .where(Lead.id == lead.id, sa.or_(Lead.last_contacted_at.is_(None), Lead.last_contacted_at < at))
        .values(last_contacted_at=at)
        .execution_options(synchronize_session=False)
    )
    if lead.last_contacted_at is None or lead.last_contacted_at < at:
        attributes.set_committed_value(lead, "last_contacted_at", at)  # as stored, not dirty


def get_lead(*, session: UnitOfWork, clinic_id: int, lead_id: int, for_update: bool = False) -> Lead:
    """A live lead of the clinic; deleted leads and other clinics' leads are not found.

    `for_update` locks the row (PostgreSQL) so two concurrent changes of one lead run one after
    the other instead of both deciding from the same old state.
    """
    stmt = sa.select(Lead).where(Lead.id == lead_id, Lead.clinic_id == clinic_id, Lead.deleted_at.is_(None))
    if for_update:
        # populate_existing: a row already in the session is re-read once the lock is ours, so
        # the decision is made on the committed state, not on what this session saw before.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    lead = session.scalar(stmt)
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    return lead


def ensure_not_converted(lead: Lead) -> None:
    """Conversion locks a lead: any later change is a conflict."""
    if lead.status == LeadStatus.CONVERTED:
        raise Conflict(f"lead {lead.id} is converted and can no longer be changed", code="lead_converted")


def read_lead(*, session: UnitOfWork, actor: Actor, lead_id: int, now: datetime) -> Lead:
    """One lead; every read is audited, with whether the answer carried PHI (app/platform/phi_policy.py)."""
    lead = get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead.read",
            subject_type="lead",
            subject_id=lead.id,
            after={"phi": phi_policy.may_read_phi(actor)},
            at=now,
        ),
    )
    return listing.with_flags(session, [lead])[0]


# --- leads: writing --------------------------------------------------------------------------

NAME_FIELDS = ("first_name", "last_name")
PLAIN_FIELDS = (
    "preferred_contact",
    "preferred_time",
    "patient_first_name",
    "patient_last_name",
    "patient_relationship",
    "patient_birth_year",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "source_campaign",
    "source_detail",
    "referring_provider_id",
    "referring_patient_id",
    "insurance_carrier",
    "insurance_member_id",
    "notes",
    # The contact policy (app/domains/lead_messages/policy.py); audited, and their change is in lead.updated.
    "do_not_contact",
    "email_opt_out",
    "sms_opt_out",
    "whatsapp_opt_out",
    "timezone",
    "priority",  # normal, high, urgent: the urgent rule follows a change to urgent (lead.updated)
)
AUDITED_FIELDS = (
    *NAME_FIELDS,
    "email",
    "phone",
    "phone_alt",
    *PLAIN_FIELDS,
    "patient_dob",
    "source_id",
    "treatment_interest",
)


def _snapshot(lead: Lead) -> dict:
    return {k: getattr(lead, k) for k in AUDITED_FIELDS}


def dob_index(*, phi_keys: str, clinic_id: int, dob: date | None) -> str | None:
    """The keyed digest of a date of birth within a clinic (for same-DOB lookups)."""
    if dob is None:
        return None
    return phi.blind_index(keys=phi_keys, purpose="patient_dob", scope=str(clinic_id), value=dob.isoformat())


def _clean_text(value):
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _normalised_changes(
    *, session: UnitOfWork, clinic: Clinic, data: dict, now: datetime, captured_at: datetime | None = None
) -> dict:
    """Input fields in stored form: names trimmed, phones E.164, email lower-case, DOB checked
    (with its blind index and the age group at `captured_at`, the lead's capture: now if new)."""
    out: dict = {}
    for key in NAME_FIELDS:
        if key in data:
            value = (data[key] or "").strip()
            if not value and key == "first_name":
                raise ValidationFailed(key, "must not be blank")
            out[key] = value
    for key in PLAIN_FIELDS:
        if key in data:
            out[key] = _clean_text(data[key])
    for key in ("phone", "phone_alt"):
        if key in data:
            raw = _clean_text(data[key])
            try:
                out[key] = None if raw is None else rules.normalize_phone(raw, clinic.default_phone_region)
            except rules.InvalidPhone as exc:
                raise ValidationFailed(key, str(exc)) from exc
    if "email" in data:
        raw = _clean_text(data["email"])
        out["email"] = None if raw is None else rules.normalize_email(raw)
    if "patient_dob" in data:
        dob = data["patient_dob"]
        today = now.astimezone(ZoneInfo(clinic.timezone)).date()
        if dob is not None and dob > today:
            raise ValidationFailed("patient_dob", "a date of birth cannot be in the future")
        if dob is not None and dob.year < 1900:
            raise ValidationFailed("patient_dob", "a date of birth before 1900 is not plausible")
        out["patient_dob"] = dob
        out["patient_dob_index"] = dob_index(phi_keys=keys_of(session), clinic_id=clinic.id, dob=dob)
        out["patient_age_group"] = rules.age_group(dob, captured_at or now)
        if dob is not None and data.get("patient_birth_year") is None:
            out["patient_birth_year"] = dob.year  # what a card's age reads, without decrypting the date
    if "treatment_interest" in data:
        out["treatment_interest"] = list(dict.fromkeys(data["treatment_interest"] or []))
    out.update(_patient_changes(clinic=clinic, data=data, now=now, captured_at=captured_at or now))
    for key in ("preferred_contact", "patient_relationship", "priority"):
        if key in out and out[key] is None:
            raise ValidationFailed(key, "must not be null")
    return out


def _patient_changes(*, clinic: Clinic, data: dict, now: datetime, captured_at: datetime) -> dict:
    """The patient columns (and the further patients, under `patients.FURTHER`) the `patients` list
    of `data` sets (its patient_* fields are the other way to say the first: one or the other), and
    the age group a year of birth gives when no date of birth is given."""
    year = patients.this_year(timezone=clinic.timezone, now=now)
    out: dict = {}
    if "patients" in data:
        given = [name for name in patients.FIRST_PATIENT_COLUMNS.values() if name in data]
        if given or "patient_dob" in data:
            raise ValidationFailed("patients", "give the patients list or the patient_* fields, not both")
        listed = patients.normalised(data["patients"], year=year)
        out.update(patients.first_patient_fields(listed[0]))
        out[patients.FURTHER] = listed[1:]
    if "patient_birth_year" in data or "patients" in data:
        born = out.get("patient_birth_year", data.get("patient_birth_year"))
        if born is not None and born > year:
            raise ValidationFailed("patient_birth_year", "a year of birth cannot be in the future")
        if "patient_dob" not in data:  # a date of birth, when known, says it better (see update_lead)
            out["patient_age_group"] = patients.age_group_from_year(born, captured_at)
    return out


def _name_self_patient(fields: dict, *, contact: tuple[str | None, str | None]) -> None:
    """The patient is the contact (SELF) and unnamed: carry the contact's name over, so every lead
    names its patient."""
    unnamed_patient = not fields.get("patient_first_name") and not fields.get("patient_last_name")
    if fields["patient_relationship"] == PatientRelationship.SELF.value and unnamed_patient:
        fields["patient_first_name"], fields["patient_last_name"] = contact


def prepare_new_lead(*, session: UnitOfWork, clinic: Clinic, data: dict, now: datetime) -> dict:
    """Validated, normalised fields of a lead about to be created (nothing is stored)."""
    fields = _normalised_changes(session=session, clinic=clinic, data=data, now=now)
    fields.setdefault("last_name", "")
    fields.setdefault("preferred_contact", "PHONE")
    fields.setdefault("patient_relationship", PatientRelationship.SELF.value)
    fields.setdefault("treatment_interest", [])
    _name_self_patient(fields, contact=(fields.get("first_name"), fields.get("last_name")))
    if suppression.is_suppressed(
        session=session,
        clinic=clinic,
        phones=(fields.get("phone"), fields.get("phone_alt")),
        emails=(fields.get("email"),),
    ):
        # An erased person enquiring again: stored, never contacted by automation (see suppression.py).
        fields.update(do_not_contact=True, email_opt_out=True, sms_opt_out=True, whatsapp_opt_out=True)
    return fields


@dataclass(frozen=True)
class Placement:
    """Where a new lead starts: its clinic, the source it is attributed to, its first stage."""

    clinic: Clinic
    source: LeadSource
    stage: str


@dataclass(frozen=True)
class CaptureKeys:
    """What makes a capture happen once, if anything: a web form's `submission_id`, an import row's
    `external_id` (each unique per clinic, so the same capture never makes two leads)."""

    submission_id: str | None = None
    external_id: str | None = None


def new_lead(
    *,
    placement: Placement,
    fields: dict,
    actor_ref: str,
    now: datetime,
    assigned_to_id: int | None = None,
    keys: CaptureKeys = CaptureKeys(),
) -> Lead:
    """A lead from prepared fields, where `placement` says, owned by `assigned_to_id` if given: the
    one builder of a new lead, not yet in any unit of work (see `store_new_lead`).

    Choosing the owner, and the assignment's trail and events, are the caller's.
    """
    return new_row(
        Lead,
        clinic_id=placement.clinic.id,
        status=LeadStatus.NEW.value,
        pipeline_stage=placement.stage,
        stage_entered_at=now,
        last_activity_at=now,  # its quiet spell starts at capture
        source_id=placement.source.id,
        assigned_to_id=assigned_to_id,
        assigned_at=None if assigned_to_id is None else now,
        submission_id=keys.submission_id,
        external_id=keys.external_id,
        created_at=now,
        updated_at=now,
        created_by=actor_ref,
        updated_by=actor_ref,
        **fields,
    )


def store_new_lead(*, session: UnitOfWork, lead: Lead, now: datetime) -> Lead:
    """Add a new lead (from `new_lead`) to the unit of work, its id known from here on, with its
    audit event."""
    session.add(lead, with_id=True)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=lead.clinic_id,
            actor=lead.created_by,
            action="lead.create",
            subject_type="lead",
            subject_id=lead.id,
            after=redacted({k: v for k, v in _snapshot(lead).items() if v not in (None, [], "")}),
            at=now,
        ),
    )
    return lead


def further_patients_of(fields: dict) -> list[dict]:
    """The further patients prepared fields carry (`prepare_new_lead`), taken out of them: they are
    rows of their own, stored once the lead has its id (`store_further_patients`)."""
    return fields.pop(patients.FURTHER, [])


def store_further_patients(*, session: UnitOfWork, lead: Lead, further: list[dict]) -> None:
    """A new lead's further patients stored, and its patients set on it as its answer lists them."""
    if further:
        patients.store_further(session=session, lead=lead, further=further)
    lead.patients = patients.listed(lead, further)


def lead_patients(*, session: UnitOfWork, lead: Lead) -> list[dict]:
    """The lead's patients as its answer lists them (app/domains/leads/patients.py)."""
    return listing.with_patients(session, [lead])[0].patients


def update_lead(*, session: UnitOfWork, actor: Actor, lead_id: int, changes: dict, now: datetime) -> Lead:
    """Change a lead's details (not its stage, status or owner: those have their own use cases)."""
    lead = get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    ensure_not_converted(lead)
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    fields = _normalised_changes(
        session=session, clinic=clinic, data=changes, now=now, captured_at=lead.created_at
    )
    if "source_id" in changes and changes["source_id"] != lead.source_id:
        if changes["source_id"] is None:
            raise ValidationFailed("source_id", "a lead always has a source")
        found = session.get(LeadSource, changes["source_id"])
        if found is not None and found.clinic_id != clinic.id:
            found = None  # another clinic's source does not exist here
        fields["source_id"] = checked_source(source_id=changes["source_id"], found=found).id
    further = fields.pop(patients.FURTHER, None)
    if further is not None:
        _name_self_patient(
            fields,
            contact=(fields.get("first_name", lead.first_name), fields.get("last_name", lead.last_name)),
        )
    if lead.patient_dob is not None and "patient_dob" not in fields:
        fields.pop("patient_age_group", None)  # the date of birth's age group stands
    consented = consent.staff_change(lead=lead, fields=fields, changes=changes)
    before = _snapshot(lead)
    for key, value in fields.items():
        setattr(lead, key, value)
    old, new = audit.changes(before, _snapshot(lead))
    stored = patients.summary(patients.further_of(session, [lead.id]).get(lead.id, []))
    if further is not None and stored != further:
        patients.store_further(session=session, lead=lead, further=further)
        old["patients"], new["patients"] = stored, further
        stored = further
    lead.patients = patients.listed(lead, stored)  # as the answer lists them
    if not new:
        return lead  # nothing changed: no new version, no event
    record_update(session=session, lead=lead, old=old, new=new, actor_ref=actor.ref, now=now)
    if consented:
        consent.record_staff_consent(
            session=session, lead=lead, opted_in=consented, changes=changes, actor_ref=actor.ref, now=now
        )
    return lead


def delete_lead(*, session: UnitOfWork, actor: Actor, lead_id: int, now: datetime) -> None:
    """Soft-delete a lead: it is kept for the audit trail but answers 404 from then on."""
    lead = get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    lead.deleted_at = now
    lead.updated_at = now
    lead.updated_by = actor.ref
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead.delete",
            subject_type="lead",
            subject_id=lead.id,
            at=now,
        ),
    )
    events.emit(
        session=session, event=LeadDeleted(lead_id=lead.id), subject=events.Subject.lead(lead), now=now
    )


def note_activity(*, session: UnitOfWork, lead: Lead, at: datetime) -> None:
    """An activity by a person or the lead at `at`: the lead's quiet spell ends (a new one starts).

    One conditional UPDATE, so two activities logged at once both leave the later time.
    """
    if lead.last_activity_at is not None and lead.last_activity_at >= at:
        return  # it only ever grows: the stored one is at least as late (a new lead's, say)
    session.execute(
        sa.update(Lead)
        .where(Lead.id == lead.id, sa.or_(Lead.last_activity_at.is_(None), Lead.last_activity_at < at))
        .values(last_activity_at=at, quiet_flagged_at=None)
        .execution_options(synchronize_session=False)
    )
    if lead.last_activity_at is None or lead.last_activity_at < at:
        attributes.set_committed_value(lead, "last_activity_at", at)  # as stored, not dirty
        attributes.set_committed_value(lead, "quiet_flagged_at", None)
