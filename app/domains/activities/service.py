"""Use cases of the activity log: record (for other domains), log (for clients), the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.domains.activities import rules
from app.domains.activities.events import ActivityLogged
from app.domains.activities.models import ActivityType, CallOutcome, LeadActivity
from app.domains.leads import service as leads
from app.domains.leads.models import Lead, LostReason
from app.platform import phi_policy
from app.platform.audit import service as audit
from app.platform.db import PageRequest, UnitOfWork, new_row, page_of
from app.platform.errors import Forbidden, ValidationFailed
from app.platform.events import service as events
from app.platform.events.types import Delivered
from app.platform.roles import Actor, Permission

SYSTEM = audit.SYSTEM


@dataclass(frozen=True)
class ActivityFacts:
    """What happened to a lead, to be logged: its type, when it happened (`at`) and was recorded,
    who did it (`actor_ref`, and `user_id` for a person), and what the type needs besides."""

    type: str
    at: datetime
    actor_ref: str = SYSTEM
    user_id: int | None = None
    recorded_at: datetime | None = None
    direction: str | None = None
    outcome: str | None = None
    notes: str | None = None
    duration_minutes: int | None = None
    previous_stage: str | None = None
    new_stage: str | None = None
    details: dict | None = None


# The reasons a family may give for not going ahead (a not_interested call's `lost_reason`).
LOST_REASONS = [reason.value for reason in LostReason]


def record(*, session: UnitOfWork, lead: Lead, facts: ActivityFacts, automation: bool = True) -> LeadActivity:
    """Write one activity of `lead` (`facts`), and its `activity.logged` event (whose rules fire
    unless `automation=False`: see events.emit).

    The building block for every domain (stage changes, assignments, completed tasks). It does
    not check the conversion lock: the caller's use case decides whether the lead may change.
    """
    activity = new_activity(lead=lead, facts=facts)
    at = facts.at
    session.add(activity, with_id=True)  # the id goes into the event
    if rules.is_contact(type=activity.type, direction=activity.direction, outcome=activity.outcome):
        leads.note_contact(session=session, lead=lead, at=at)
    if ends_quiet_spell(activity):
        leads.note_activity(session=session, lead=lead, at=at)
    events.emit(
        session=session,
        event=logged(activity),
        subject=events.Subject.lead(lead),
        now=facts.recorded_at or at,
        automation=automation,
    )
    return activity


def ends_quiet_spell(activity: LeadActivity) -> bool:
    """Whether an activity counts as "activity" for staleness (seed 002's "no activity in 7 days"):
    anything a person did and any contact; not the engine's bookkeeping (stage moves and
    assignments it made) nor its automated messages (attempts nobody answered)."""
    return activity.actor != SYSTEM or rules.is_contact(
        type=activity.type, direction=activity.direction, outcome=activity.outcome
    )


def new_activity(*, lead: Lead, facts: ActivityFacts) -> LeadActivity:
    """One activity of `lead`, not yet in any unit of work: the one builder (see `record`)."""
    activity = new_row(
        LeadActivity,
        clinic_id=lead.clinic_id,
        lead_id=lead.id,
        type=str(facts.type),
        direction=facts.direction,
        outcome=facts.outcome,
        notes=facts.notes,
        duration_minutes=facts.duration_minutes,
        previous_stage=facts.previous_stage,
        new_stage=facts.new_stage,
        details=facts.details,
        occurred_at=facts.at,
        created_at=facts.recorded_at or facts.at,
        created_by_id=facts.user_id,
        actor=facts.actor_ref,
    )
    return activity


def logged(activity: LeadActivity) -> ActivityLogged:
    """The event of `activity` logged (what rules read: type, direction, outcome)."""
    facts = {"type": activity.type, "direction": activity.direction, "outcome": activity.outcome}
    return ActivityLogged(
        activity_id=activity.id,
        lead_id=activity.lead_id,
        **facts,
        occurred_at=activity.occurred_at.isoformat(),
        system=activity.actor == SYSTEM,
        # The one vocabulary (rules.py), so a rule can say "on an attempt" for every channel at once.
        contact=rules.is_contact(**facts),
        attempt=rules.is_attempt(**facts, details=activity.details),
        previous_stage=activity.previous_stage if activity.new_stage else None,
        new_stage=activity.new_stage or None,
        callback_at=(activity.details or {}).get("callback_at")
        if activity.type == ActivityType.PHONE_CALL
        else None,
    )


def log_activity(
    *, session: UnitOfWork, actor: Actor, lead_id: int, data: dict, now: datetime
) -> LeadActivity:
    """A client logs an interaction (call, email, SMS, meeting, note, ...) on a lead."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    errors = rules.problems(data, now)
    if errors:
        raise ValidationFailed(errors)
    if data.get("outcome") == CallOutcome.CONVERTED and not actor.can(Permission.CONVERT):
        # The call's outcome converts the lead (pipeline/outcomes.py): only who may convert says so.
        raise Forbidden(f"the outcome converted needs the permission {Permission.CONVERT}")
    leads.ensure_not_converted(lead)
    activity = record(
        session=session,
        lead=lead,
        facts=ActivityFacts(
            type=data["type"],
            at=data.get("occurred_at") or now,
            recorded_at=now,
            actor_ref=actor.ref,
            user_id=actor.user_id,
            direction=data.get("direction"),
            outcome=data.get("outcome"),
            notes=data.get("notes"),
            duration_minutes=data.get("duration_minutes"),
            details=rules.call_details(data),
        ),
    )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="activity.create",
            subject_type="lead",
            subject_id=lead.id,
            after={"activity_id": activity.id, "type": activity.type},
            at=now,
        ),
    )
    return activity


def contact_since(*, session: UnitOfWork, lead_id: int, since: datetime | None = None) -> bool:
    """Whether the lead had a contact (rules.py: a two-way exchange) at or after `since` (None: ever).

    Attempts (a voicemail, an unanswered email) and automated messages are not contact."""
    conditions = [LeadActivity.lead_id == lead_id, rules.contact_clause()]
    if since is not None:
        conditions.append(LeadActivity.occurred_at >= since)
    return session.scalar(sa.select(LeadActivity.id).where(*conditions).limit(1)) is not None


def list_activities(
    *,
    session: UnitOfWork,
    actor: Actor,
    lead_id: int,
    types: list[str] | None,
    paging: PageRequest,
    now: datetime,
) -> tuple[list[LeadActivity], int]:
    """A lead's timeline, newest first (occurred_at, then id); the read is audited."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    conditions = [LeadActivity.lead_id == lead.id]
    if types:
        conditions.append(LeadActivity.type.in_(types))
    rows, total = page_of(
        session,
        LeadActivity,
        conditions,
        order_by=(LeadActivity.occurred_at.desc(), LeadActivity.id.desc()),
        paging=paging,
    )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead.activities.read",
            subject_type="lead",
            subject_id=lead.id,
            after={"phi": phi_policy.may_read_phi(actor)},  # whether the answer carried the notes
            at=now,
        ),
    )
    return rows, total


def note_priority_change(*, session: UnitOfWork, event: Delivered, now: datetime) -> LeadActivity | None:
    """The `lead.updated` consumer: a change of the lead's priority goes on its timeline (a
    PRIORITY_CHANGE by whoever made it: staff, a rule, an integrator). Bookkeeping: no rule fires on it."""
    updated = event.data
    if "priority" not in (updated.changed or ()):
        return None
    lead = session.get(Lead, updated.lead_id)
    if lead is None or lead.clinic_id != event.clinic_id:
        return None
    by = updated.by or SYSTEM
    user_id = int(by.removeprefix("user:")) if by.startswith("user:") and by[5:].isdigit() else None
    # A person's or an integrator's change is theirs; a rule's is the engine's bookkeeping (it does
    # not end a quiet spell), with the rule named in the details.
    engine = not by.startswith(("user:", "api_key:"))
    facts = ActivityFacts(
        type=ActivityType.PRIORITY_CHANGE,
        at=event.occurred_at,
        recorded_at=now,
        actor_ref=SYSTEM if engine else by,
        user_id=user_id,
        details={"from": updated.previous_priority, "to": updated.priority, "by": by},
    )
    return record(session=session, lead=lead, facts=facts, automation=False)
