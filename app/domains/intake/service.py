"""Intake: how a lead comes in — entered by staff or an integrator, or posted by a web form.

Why a domain of its own: creating a lead is the one use case that touches four domains at once.
It needs the clinic's default stage (pipeline), an owner chosen by the clinic's policy
(assignment), an ASSIGNMENT_CHANGE entry on the timeline (activities) and the `lead.created`
event (events). Those domains already build on `app/domains/leads` (they move, assign and log leads), so
`leads` cannot call them without an import cycle. Intake sits above all of them and composes
their services; nothing imports intake except its views:

    intake → pipeline, assignment → activities → leads → auth, events, audit

The web form is intake too: it verifies the clinic's signature, maps the form to lead fields,
picks the lead source from the form's `source` or UTM fields, and creates the lead exactly once
per `submission_id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.domains.assignment import service as assignment
from app.domains.auth import service as auth
from app.domains.auth import signing
from app.domains.auth.models import Clinic
from app.domains.intake import queries, rules
from app.domains.leads import duplicates as duplicate_leads
from app.domains.leads import lookups, sources
from app.domains.leads import service as leads
from app.domains.leads.models import Lead, LeadSource, LeadSourceCategory
from app.domains.pipeline import service as pipeline
from app.platform.db import MAX_ID, UnitOfWork, detached_copy
from app.platform.errors import Conflict, Unauthorized, ValidationFailed
from app.platform.events import service as events
from app.platform.roles import Actor

WEB_FORM_ACTOR = "web_form"


@dataclass
class Intake:
    """A lead that came in, whether this call created it, and the open leads it may duplicate."""

    lead: Lead
    created: bool = True
    possible_duplicates: list[dict] = field(default_factory=list)


def capture_lead(
    *, session: UnitOfWork, actor: Actor, data: dict, reject_duplicates: bool, now: datetime
) -> Intake:
    """Create a lead entered by staff or an integrator through the API (POST /api/leads)."""
    return create_lead(session=session, actor=actor, data=data, reject_duplicates=reject_duplicates, now=now)


def create_lead(
    *,
    session: UnitOfWork,
    actor: Actor,
    data: dict,
    reject_duplicates: bool,
    now: datetime,
    channel: str = "api",
    external_id: str | None = None,
    automation: bool = True,
) -> Intake:
    """Create a lead entered by staff or an integrator: default stage, owner by policy, duplicates listed.

    With `reject_duplicates`, a match with an open lead is a 409 listing the matches, and nothing
    is stored. A bulk import (app/domains/intake/imports.py) passes its channel, the row's `external_id`
    and whether rules fire.
    """
    data = dict(data)
    source_id = data.pop("source_id", None)
    context = queries.capture_context(session, actor.clinic_id, source_id)
    stage = context[queries.DEFAULT_STAGE]
    if stage is None:
        raise pipeline.no_default_stage()
    clinic = detached_copy(Clinic, context)
    found = None if context[queries.SOURCES.c.id] is None else detached_copy(LeadSource, context)
    source = sources.checked_source(source_id=source_id, found=found)
    return _create(
        session=session,
        clinic=clinic,
        data=data,
        source=source,
        stage=stage,
        actor_ref=actor.ref,
        user_id=actor.user_id,
        channel=channel,
        reject_duplicates=reject_duplicates,
        now=now,
        external_id=external_id,
        automation=automation,
    )


def _create(
    *,
    session: Session,
    clinic: Clinic,
    data: dict,
    source: LeadSource,
    stage: str,
    actor_ref: str,
    user_id: int | None,
    channel: str,
    reject_duplicates: bool,
    now: datetime,
    submission_id: str | None = None,
    external_id: str | None = None,
    automation: bool = True,
) -> Intake:
    """Create the lead: its owner, its first stay, the owner's trail, its events, in the unit.
    `automation=False`: its events fire no rule (a historical import)."""
    fields = leads.prepare_new_lead(session=session, clinic=clinic, data=data, now=now)
    duplicates = duplicate_leads.find_duplicates(session=session, clinic_id=clinic.id, fields=fields)
    if duplicates and reject_duplicates:
        raise Conflict(
            f"{len(duplicates)} open lead(s) match this one; nothing was stored",
            errors={"possible_duplicates": duplicates},
            code="possible_duplicates",
        )
    pick = assignment.pick_new_owner(session=session, clinic=clinic, source_id=source.id, now=now)
    lead = leads.new_lead(
        clinic=clinic,
        fields=fields,
        source=source,
        stage=stage,
        assigned_to_id=pick.user_id,  # stored with its owner: no UPDATE after
        actor_ref=actor_ref,
        now=now,
        submission_id=submission_id,
        external_id=external_id,
    )
    leads.store_new_lead(session=session, lead=lead, now=now)
    pipeline.enter_first_stage(session=session, lead=lead, actor_ref=actor_ref, now=now)
    # Events, in this order: created, assigned, activity logged.
    events.emit(
        session=session,
        type=events.LEAD_CREATED,
        subject=events.Subject(clinic.id, "lead", lead.id),
        payload=_created(lead, source, channel, duplicates),
        now=now,
        automation=automation,
    )
    assignment.record_owner(
        session=session,
        lead=lead,
        previous=None,
        pick=assignment.Pick(pick.user_id, f"new lead: {pick.reason}"),
        actor_ref=actor_ref,
        user_id=user_id,
        now=now,
        automation=automation,
    )
    return Intake(lead=lead, created=True, possible_duplicates=duplicates)


def _created(lead: Lead, source: LeadSource, channel: str, duplicates: list[dict]) -> dict:
    """The `lead.created` event's payload: what rules read of a new lead."""
    return {
        "lead_id": lead.id,
        "channel": channel,
        "source_id": source.id,
        "source_category": source.category,
        "pipeline_stage": lead.pipeline_stage,
        "status": lead.status,
        "assigned_to_id": lead.assigned_to_id,
        "has_phone": lead.phone is not None,
        "has_email": lead.email is not None,
        "possible_duplicate_ids": [d["lead_id"] for d in duplicates],
    }


# --- web forms ---------------------------------------------------------------------------------


def _replay_key(clinic_id: int, signature: str) -> str:
    return f"followup:web-form-signature:{clinic_id}:{signature}"


def verify_web_form(
    *,
    session: Session,
    redis,
    clinic_ref: str | None,
    timestamp: str | None,
    signature: str | None,
    raw_body: bytes,
    now: datetime,
) -> int:
    """The id of the clinic whose webhook secret signed this request, else Unauthorized.

    Every refusal says the same to the caller, so it cannot probe which clinics exist. A valid
    signature is accepted once: it is remembered in Redis (SET NX with a TTL longer than the
    freshness window), and the same signature again is a replay.
    """
    refused = Unauthorized(
        "missing, invalid, stale or replayed signature: sign f'{timestamp}.{body}' with HMAC-SHA256 "
        f"using the clinic's webhook secret and send {signing.CLINIC_HEADER}, {signing.TIMESTAMP_HEADER}, "
        f"{signing.SIGNATURE_HEADER}"
    )
    if not (clinic_ref and timestamp and signature):
        raise refused
    try:
        clinic_id = int(clinic_ref)
    except ValueError:
        raise refused from None
    if not 1 <= clinic_id <= MAX_ID:
        raise refused
    clinic = session.get(Clinic, clinic_id)
    if clinic is None or not signing.timestamp_fresh(timestamp, now):
        raise refused
    if not signing.signature_matches(clinic.webhook_secret, timestamp, raw_body, signature):
        raise refused
    digest = signature.strip().removeprefix("sha256=").lower()
    if not redis.set(_replay_key(clinic_id, digest), "1", nx=True, ex=signing.REPLAY_MEMORY_SECONDS):
        raise refused
    return clinic_id


def _web_form_source(session: Session, clinic_id: int, form: dict) -> LeadSource:
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


def capture_web_form(*, session: Session, clinic_id: int, form: dict, now: datetime) -> Intake:
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
                clinic=clinic,
                data=rules.form_to_lead(form),
                source=source,
                stage=pipeline.default_stage(session=session, clinic_id=clinic_id).slug,
                actor_ref=WEB_FORM_ACTOR,
                user_id=None,
                channel="web_form",
                reject_duplicates=False,
                now=now,
                submission_id=submission_id,
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


def _phone_source(session: Session, clinic_id: int, now: datetime) -> LeadSource:
    """The clinic's active source named "Phone", made (category OTHER) the first time a call needs it."""
    source = sources.active_source_named(session=session, clinic_id=clinic_id, name=PHONE_SOURCE_NAME)
    if source is not None:
        return source
    return sources.create_source(
        session=session,
        actor=Actor.engine(clinic_id, PHONE_SYSTEM_ACTOR),
        data={"name": PHONE_SOURCE_NAME, "category": LeadSourceCategory.OTHER.value},
        now=now,
    )


def capture_phone_call(
    *, session: Session, clinic_id: int, phone: str, caller_name: str | None, now: datetime
) -> Intake:
    """A lead for a caller nobody knows: the phone number, the caller-ID name if any, source "Phone"."""
    clinic = auth.get_clinic(session=session, clinic_id=clinic_id)
    first, last = rules.split_full_name(caller_name) if caller_name else ("Unknown caller", "")
    return _create(
        session=session,
        clinic=clinic,
        data={"first_name": first or "Unknown caller", "last_name": last or "", "phone": phone},
        source=_phone_source(session, clinic_id, now),
        stage=pipeline.default_stage(session=session, clinic_id=clinic_id).slug,
        actor_ref=PHONE_SYSTEM_ACTOR,
        user_id=None,
        channel="phone",
        reject_duplicates=False,
        now=now,
    )
