"""Intake: how a lead comes in — entered by staff or an integrator (one by one or a bulk import),
posted by a web form, or first heard of on a phone call or an Instagram direct message.

Why a domain of its own: creating a lead is the one use case that touches four domains at once.
It needs the clinic's default stage (pipeline), an owner chosen by the clinic's policy
(assignment, which also writes the ASSIGNMENT_CHANGE entry on the timeline and `lead.assigned`)
and the `lead.created` event (app/platform/events). Those domains already build on
`app/domains/leads` (they move, assign and log leads), so `leads` cannot call them without an
import cycle. Intake sits above all of them and composes their services; what imports intake is
above it too (the booking page, the console's pages, consultations, privacy, the handler map):

    intake → pipeline, assignment → activities → leads → auth, platform events

The web form is intake too: its view checks the clinic's signature (`signed_for`,
app/domains/auth/signing_secrets/guard.py), then
`capture_web_form` maps the form to lead fields, picks the lead source from the form's `source`
or UTM fields, and creates the lead exactly once per `submission_id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

import sqlalchemy as sa

from app.domains.assignment import service as assignment
from app.domains.auth import service as auth
from app.domains.auth.models import Clinic
from app.domains.intake import queries, rules
from app.domains.leads import duplicates as duplicate_leads
from app.domains.leads import lookups, sources
from app.domains.leads import service as leads
from app.domains.leads.events import LeadCreated
from app.domains.leads.models import Lead, LeadSource, LeadSourceCategory
from app.domains.pipeline import service as pipeline
from app.platform.db import UnitOfWork, detached_copy
from app.platform.errors import Conflict, ValidationFailed
from app.platform.events import service as events
from app.platform.roles import Actor

WEB_FORM_ACTOR = "web_form"


@dataclass(frozen=True)
class NewLead:
    """The command to capture a lead: its fields as entered (`data`, with the chosen `source_id` if
    any) and how it came in. Built by each way in: the API view, an import row, a web form, a call."""

    data: dict
    channel: str = "api"
    # A match with an open lead is a 409 listing the matches, and nothing is stored.
    reject_duplicates: bool = False
    submission_id: str | None = None  # a web form's: one lead per submission
    external_id: str | None = None  # an import row's: unique per clinic
    automation: bool = True  # False: its events fire no rule (a historical import)


@dataclass
class Intake:
    """A lead that came in, whether this call created it, and the open leads it may duplicate."""

    lead: Lead
    created: bool = True
    possible_duplicates: list[dict] = field(default_factory=list)


def capture_lead(*, session: UnitOfWork, actor: Actor, new: NewLead, now: datetime) -> Intake:
    """Create a lead entered by staff or an integrator through the API (POST /api/leads)."""
    return create_lead(session=session, actor=actor, new=new, now=now)


def create_lead(*, session: UnitOfWork, actor: Actor, new: NewLead, now: datetime) -> Intake:
    """Create a lead entered by staff or an integrator: default stage, owner by policy, duplicates listed.

    With `new.reject_duplicates`, a match with an open lead is a 409 listing the matches, and nothing
    is stored. A bulk import's row (app/domains/intake/imports.py) carries its channel, its
    `external_id` and whether rules fire.
    """
    data = dict(new.data)
    source_id = data.pop("source_id", None)
    context, availability_held = queries.capture_context(session, actor.clinic_id, source_id)
    stage = context[queries.DEFAULT_STAGE]
    if stage is None:
        raise pipeline.no_default_stage()
    clinic = detached_copy(Clinic, context)
    found = None if context[queries.SOURCES.c.id] is None else detached_copy(LeadSource, context)
    source = sources.checked_source(source_id=source_id, found=found)
    return _create(
        session=session,
        actor=actor,
        new=replace(new, data=data),
        placement=leads.Placement(clinic=clinic, source=source, stage=stage),
        now=now,
        availability_held=availability_held,
    )


def checked_new_lead(*, session: UnitOfWork, clinic: Clinic, data: dict, now: datetime) -> tuple[dict, list]:
    """A new lead's normalised fields and the open leads it may duplicate, as its capture finds them
    (nothing stored; a field the capture refuses raises its error). The import's preview asks it too."""
    fields = leads.prepare_new_lead(session=session, clinic=clinic, data=data, now=now)
    return fields, duplicate_leads.find_duplicates(session=session, clinic_id=clinic.id, fields=fields)


def clinic_of(*, session: UnitOfWork, actor: Actor) -> Clinic:
    return auth.get_clinic(session=session, clinic_id=actor.clinic_id)


def _create(
    *,
    session: UnitOfWork,
    actor: Actor,
    new: NewLead,
    placement: leads.Placement,
    now: datetime,
    availability_held: bool = False,
) -> Intake:
    """Create the lead: its owner, its first stay, the owner's trail, its events, in the unit.
    `new.automation=False`: its events fire no rule (a historical import). `availability_held`: the
    clinic's availability lock was taken by the caller's read (queries.capture_context)."""
    clinic, source = placement.clinic, placement.source
    fields, duplicates = checked_new_lead(session=session, clinic=clinic, data=new.data, now=now)
    if duplicates and new.reject_duplicates:
        raise Conflict(
            f"{len(duplicates)} open lead(s) match this one; nothing was stored",
            errors={"possible_duplicates": duplicates},
            code="possible_duplicates",
        )
    pick = assignment.pick_new_owner(
        session=session, clinic=clinic, source_id=source.id, now=now, availability_held=availability_held
    )
    further_patients = leads.further_patients_of(fields)
    lead = leads.new_lead(
        placement=placement,
        fields=fields,
        assigned_to_id=pick.user_id,  # stored with its owner: no UPDATE after
        actor_ref=actor.ref,
        now=now,
        keys=leads.CaptureKeys(submission_id=new.submission_id, external_id=new.external_id),
    )
    leads.store_new_lead(session=session, lead=lead, now=now)
    leads.store_further_patients(session=session, lead=lead, further=further_patients)
    pipeline.enter_first_stage(session=session, lead=lead, actor_ref=actor.ref, now=now)
    # Events, in this order: created, assigned, activity logged.
    events.emit(
        session=session,
        event=_created(lead, source, new.channel, duplicates),
        subject=events.Subject(clinic.id, "lead", lead.id),
        now=now,
        automation=new.automation,
    )
    assignment.record_owner(
        session=session,
        lead=lead,
        decision=assignment.OwnerDecision(
            previous=None,
            pick=assignment.Pick(pick.user_id, f"new lead: {pick.reason}"),
            actor_ref=actor.ref,
            user_id=actor.user_id,
        ),
        now=now,
        automation=new.automation,
    )
    return Intake(lead=lead, created=True, possible_duplicates=duplicates)


def _created(lead: Lead, source: LeadSource, channel: str, duplicates: list[dict]) -> LeadCreated:
    """The new lead's event: what rules read of it."""
    return LeadCreated(
        lead_id=lead.id,
        channel=channel,
        source_id=source.id,
        source_category=source.category,
        pipeline_stage=lead.pipeline_stage,
        status=lead.status,
        assigned_to_id=lead.assigned_to_id,
        has_phone=lead.phone is not None,
        has_email=lead.email is not None,
        possible_duplicate_ids=[d["lead_id"] for d in duplicates],
    )


# --- web forms ---------------------------------------------------------------------------------


def _web_form_source(session: UnitOfWork, clinic_id: int, form: dict) -> LeadSource:
    """The form's `source` by name, else utm_source by name, else utm_medium's category, else the website."""
    for name in (form.get("source"), form.get("utm_source")):
        if name:
            source = sources.active_source_named(session=session, clinic_id=clinic_id, name=name)
            if source is not None:
                return source
    categories = [
        rules.utm_category(form.get("utm_medium")),
        LeadSourceCategory.WEB_ORGANIC,
        LeadSourceCategory.OTHER,
    ]
    for category in categories:
        if category is None:
            continue
        source = sources.first_active_source_of(session=session, clinic_id=clinic_id, category=category.value)
        if source is not None:
            return source
    raise ValidationFailed("source", "the clinic has no active source a web lead could be attributed to")


def capture_web_form(*, session: UnitOfWork, clinic_id: int, form: dict, now: datetime) -> Intake:
    """Create the lead of a verified web-form submission, once per `submission_id`."""
    submission_id = form["submission_id"]
    existing = lookups.find_by_submission(session=session, clinic_id=clinic_id, submission_id=submission_id)
    if existing is not None:
        return Intake(lead=existing, created=False)
    clinic = auth.get_clinic(session=session, clinic_id=clinic_id)
    source = _web_form_source(session, clinic_id, form)
    try:
        # A savepoint: if the same submission is being stored concurrently, the unique
        # (clinic_id, submission_id) refuses the second insert and we answer with the first lead.
        with session.begin_nested():
            return _create(
                session=session,
                actor=Actor.engine(clinic_id, WEB_FORM_ACTOR),
                new=NewLead(data=rules.form_to_lead(form), channel="web_form", submission_id=submission_id),
                placement=leads.Placement(
                    clinic=clinic,
                    source=source,
                    stage=pipeline.default_stage(session=session, clinic_id=clinic_id).slug,
                ),
                now=now,
            )
    except sa.exc.IntegrityError:
        existing = lookups.find_by_submission(
            session=session, clinic_id=clinic_id, submission_id=submission_id
        )
        if existing is None:
            raise
        return Intake(lead=existing, created=False)


# --- caller ID ---------------------------------------------------------------------------------

PHONE_SYSTEM_ACTOR = "phone_system"
PHONE_SOURCE_NAME = "Phone"


def _phone_source(session: UnitOfWork, clinic_id: int, now: datetime) -> LeadSource:
    """The clinic's active source named "Phone", made (category OTHER) the first time a call needs it."""
    return _named_source(
        session, Actor.engine(clinic_id, PHONE_SYSTEM_ACTOR), PHONE_SOURCE_NAME, LeadSourceCategory.OTHER, now
    )


def _named_source(
    session: UnitOfWork, actor: Actor, name: str, category: LeadSourceCategory, now: datetime
) -> LeadSource:
    """The clinic's active source of this name, made (in `category`) the first time a capture needs it."""
    source = sources.active_source_named(session=session, clinic_id=actor.clinic_id, name=name)
    if source is not None:
        return source
    return sources.create_source(
        session=session, actor=actor, data={"name": name, "category": category.value}, now=now
    )


def capture_phone_call(
    *, session: UnitOfWork, clinic_id: int, phone: str, caller_name: str | None, now: datetime
) -> Intake:
    """A lead for a caller nobody knows: the phone number, the caller-ID name if any, source "Phone"."""
    clinic = auth.get_clinic(session=session, clinic_id=clinic_id)
    first, last = rules.split_full_name(caller_name) if caller_name else ("Unknown caller", "")
    return _create(
        session=session,
        actor=Actor.engine(clinic_id, PHONE_SYSTEM_ACTOR),
        new=NewLead(
            data={"first_name": first or "Unknown caller", "last_name": last or "", "phone": phone},
            channel="phone",
        ),
        placement=leads.Placement(
            clinic=clinic,
            source=_phone_source(session, clinic_id, now),
            stage=pipeline.default_stage(session=session, clinic_id=clinic_id).slug,
        ),
        now=now,
    )


# --- Instagram direct messages -------------------------------------------------------------------

INSTAGRAM_ACTOR = "instagram"
INSTAGRAM_SOURCE_NAME = "Instagram"


def capture_instagram_dm(*, session: UnitOfWork, clinic_id: int, profile: dict, now: datetime) -> Intake:
    """A lead for an Instagram user nobody knows, named as their profile says (`name`, else the
    `username`), source "Instagram" (made, category WEB_SOCIAL, the first time), channel instagram."""
    clinic = auth.get_clinic(session=session, clinic_id=clinic_id)
    actor = Actor.engine(clinic_id, INSTAGRAM_ACTOR)
    shown = profile.get("name") or (f"@{profile['username']}" if profile.get("username") else None)
    first, last = rules.split_full_name(shown) if shown else ("Instagram user", "")
    return _create(
        session=session,
        actor=actor,
        new=NewLead(
            data={
                "first_name": first or "Instagram user",
                "last_name": last or "",
                "preferred_contact": "ANY",
            },
            channel="instagram",
        ),
        placement=leads.Placement(
            clinic=clinic,
            source=_named_source(session, actor, INSTAGRAM_SOURCE_NAME, LeadSourceCategory.WEB_SOCIAL, now),
            stage=pipeline.default_stage(session=session, clinic_id=clinic_id).slug,
        ),
        now=now,
    )
