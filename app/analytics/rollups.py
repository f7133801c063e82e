"""Summary data the analytics reports read, kept right by the write paths that change their sources.

Aggregating the raw history at report time (a first-contact probe per lead, a reply probe per
message, a max over each lead's stays) took seconds at 100,000 leads over two years. So:
- leads.first_outbound_contact_at: the earliest time a person of the clinic reached the lead: a
  contact or an attempt (activities/rules.py) that is not inbound and not automated (an automated
  message is not the coordinator reaching out, and a lead calling in is not: speed to lead is theirs)
  (`on_activity`, called by activities.record: every activity is written there; they are never
  edited or deleted);
- leads.furthest_stage: the slug of the furthest non-lost stage the lead has been in, by the
  stages' current positions (`on_stage_entered`, called when pipeline moves a lead; `refresh_furthest_
  stages` after the stages are reordered). Null while the lead has never moved: it has then only
  been in its current stage (every lead opens its first stay in the stage it was created in);
- lead_stage_history.lead_created_at and stay_seconds: the lead's capture time and, once the stay
  is over, its length, so the median and p90 per stage read one index in length order (no join to
  the cohort, no sort);
- lead_activities.replied: on an automated (actor "system") outbound email or SMS, whether the lead
  answered (an INBOUND activity) within REPLY_WINDOW_HOURS after it; set when either side is logged.
`backfill` computes them all from the raw rows (the migration runs the same statements).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, attributes

from app.activities import rules as activity_rules
from app.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.analytics import monthly
from app.leads.models import Lead
from app.pipeline.models import LeadStageHistory, PipelineStage

MESSAGE_TYPES = (ActivityType.EMAIL, ActivityType.SMS)
REPLY_WINDOW_HOURS = 72
SYSTEM_ACTOR = "system"
LOST = "lost"


def automated_message(activity=LeadActivity) -> sa.ColumnElement[bool]:
    """SQL: `activity` is an automated outbound message. Literals, not parameters, so the planner can
    match the partial index with the same predicate however the statement is prepared."""
    return sa.and_(
        activity.direction == sa.literal_column(f"'{ActivityDirection.OUTBOUND}'"),
        activity.actor == sa.literal_column(f"'{SYSTEM_ACTOR}'"),
        activity.type.in_([sa.literal_column(f"'{t}'") for t in MESSAGE_TYPES]),
    )


def is_staff_contact(*, type: str, direction: str | None, outcome: str | None, actor: str) -> bool:
    """Whether an activity is staff reaching the lead (what speed to lead measures)."""
    if direction == ActivityDirection.INBOUND or actor == SYSTEM_ACTOR:
        return False
    facts = {"type": type, "direction": direction, "outcome": outcome}
    return activity_rules.is_contact(**facts) or activity_rules.is_attempt(**facts)


def staff_contact(activity=LeadActivity) -> sa.ColumnElement[bool]:
    """SQL: `is_staff_contact`, from the same definitions."""
    return sa.and_(
        sa.or_(activity.direction.is_(None), activity.direction != ActivityDirection.INBOUND),
        activity.actor != SYSTEM_ACTOR,
        sa.or_(activity_rules.contact_clause(activity), activity_rules.attempt_clause(activity)),
    )


def is_automated_message(*, type: str, direction: str | None, actor: str) -> bool:
    return direction == ActivityDirection.OUTBOUND and actor == SYSTEM_ACTOR and type in MESSAGE_TYPES


def seconds_between(dialect: str, later, earlier):
    """SQL: seconds from `earlier` to `later` (SQLite keeps datetimes as text)."""
    if dialect == "postgresql":
        return sa.func.date_part("epoch", later - earlier)  # float8 (EXTRACT gives numeric: slower)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


# --- write paths --------------------------------------------------------------------------------


def on_activity(session: Session, lead: Lead, activity: LeadActivity) -> None:
    """Keep first contact and replies right for a just-flushed activity of `lead`."""
    if is_staff_contact(
        type=activity.type, direction=activity.direction, outcome=activity.outcome, actor=activity.actor
    ):
        _lower_first_contact(session, lead, activity.occurred_at)
    if activity.direction == ActivityDirection.INBOUND:
        _mark_replied_messages(session, activity)
    if is_automated_message(type=activity.type, direction=activity.direction, actor=activity.actor):
        _mark_if_already_answered(session, activity)


def _lower_first_contact(session: Session, lead: Lead, at: datetime) -> None:
    # One conditional UPDATE: two contacts logged at once on the lead both end at the earliest.
    # Core, so the monthly counts' session hook does not see it: tell them here.
    current = lead.first_outbound_contact_at
    if current is None or at < current:
        before = monthly.current_facts(lead)
        monthly.add_change(session, before, before | {"first_outbound_contact_at": at})
    session.execute(
        sa.update(Lead)
        .where(
            Lead.id == lead.id,
            sa.or_(Lead.first_outbound_contact_at.is_(None), Lead.first_outbound_contact_at > at),
        )
        .values(first_outbound_contact_at=at)
        .execution_options(synchronize_session=False)
    )
    if current is None or at < current:
        attributes.set_committed_value(lead, "first_outbound_contact_at", at)  # as stored, not dirty


def _mark_replied_messages(session: Session, reply: LeadActivity) -> None:
    window = timedelta(hours=REPLY_WINDOW_HOURS)
    session.execute(
        sa.update(LeadActivity)
        .where(
            LeadActivity.lead_id == reply.lead_id,
            automated_message(),
            LeadActivity.occurred_at < reply.occurred_at,
            LeadActivity.occurred_at >= reply.occurred_at - window,
            LeadActivity.replied.is_(False),
        )
        .values(replied=True)
        .execution_options(synchronize_session=False)
    )


def _mark_if_already_answered(session: Session, message: LeadActivity) -> None:
    """A message logged late (occurred_at in the past) may have its reply on record already."""
    answered = session.scalar(
        sa.select(LeadActivity.id)
        .where(
            LeadActivity.lead_id == message.lead_id,
            LeadActivity.direction == ActivityDirection.INBOUND,
            LeadActivity.occurred_at > message.occurred_at,
            LeadActivity.occurred_at <= message.occurred_at + timedelta(hours=REPLY_WINDOW_HOURS),
        )
        .limit(1)
    )
    if answered is not None:
        message.replied = True


def on_stay_closed(stay: LeadStageHistory) -> None:
    """The stay just got its left_at: keep its length."""
    stay.stay_seconds = (stay.left_at - stay.entered_at).total_seconds()


def on_stage_entered(session: Session, lead: Lead, *, previous: str, target: PipelineStage) -> None:
    """`lead` moved from stage `previous` into `target`: advance its furthest stage. A new lead's
    first stage (`previous` None) leaves it NULL, which reads as the stage the lead is in."""
    if previous is None:
        return
    furthest = lead.furthest_stage or previous
    candidates = [s for s in (furthest, target.slug) if s != LOST]
    if not candidates:
        return
    positions = dict(
        session.execute(
            sa.select(PipelineStage.slug, PipelineStage.position).where(
                PipelineStage.clinic_id == lead.clinic_id, PipelineStage.slug.in_(candidates)
            )
        ).all()
    )
    known = [s for s in candidates if s in positions]
    if known:
        lead.furthest_stage = max(known, key=lambda s: positions[s])


# --- recomputing ----------------------------------------------------------------------------------


def _furthest_stage_of_lead():
    """Correlated SQL: the lead's stay in the non-lost stage with the highest current position."""
    return (
        sa.select(PipelineStage.slug)
        .select_from(LeadStageHistory)
        .join(
            PipelineStage,
            sa.and_(
                PipelineStage.clinic_id == LeadStageHistory.clinic_id,
                PipelineStage.slug == LeadStageHistory.to_stage,
            ),
        )
        .where(LeadStageHistory.lead_id == Lead.id, PipelineStage.slug != LOST)
        .order_by(PipelineStage.position.desc())
        .limit(1)
        .scalar_subquery()
    )


def refresh_furthest_stages(session: Session, clinic_id: int) -> None:
    """After the clinic's stages changed order: every lead's furthest stage again, from its stays."""
    session.execute(
        sa.update(Lead)
        .where(Lead.clinic_id == clinic_id)
        .values(furthest_stage=_furthest_stage_of_lead())
        .execution_options(synchronize_session=False)
    )
    session.expire_all()  # loaded leads hold the old value
    session.flush()
    monthly.rebuild(session.connection(), clinic_id)  # reached stages moved: recount the clinic
    monthly.forget_pending(session, clinic_id)


def backfill(connection: sa.Connection) -> None:
    """Every summary column computed from the raw rows (data loaded around the write paths)."""
    first_contact = (
        sa.select(sa.func.min(LeadActivity.occurred_at))
        .where(LeadActivity.lead_id == Lead.id, staff_contact())
        .scalar_subquery()
    )
    connection.execute(
        sa.update(Lead).values(
            first_outbound_contact_at=first_contact, furthest_stage=_furthest_stage_of_lead()
        )
    )
    connection.execute(
        sa.update(LeadStageHistory)
        .where(LeadStageHistory.left_at.is_not(None))
        .values(
            stay_seconds=seconds_between(
                connection.dialect.name, LeadStageHistory.left_at, LeadStageHistory.entered_at
            )
        )
    )
    connection.execute(
        sa.update(LeadStageHistory).values(
            lead_created_at=sa.select(Lead.created_at)
            .where(Lead.id == LeadStageHistory.lead_id)
            .scalar_subquery()
        )
    )
    reply = sa.orm.aliased(LeadActivity)
    answered = (
        sa.select(reply.id)
        .where(
            reply.lead_id == LeadActivity.lead_id,
            reply.direction == ActivityDirection.INBOUND,
            reply.occurred_at > LeadActivity.occurred_at,
            seconds_between(connection.dialect.name, reply.occurred_at, LeadActivity.occurred_at)
            <= REPLY_WINDOW_HOURS * 3600,
        )
        .exists()
    )
    connection.execute(sa.update(LeadActivity).where(automated_message()).values(replied=answered))
    monthly.rebuild(connection)
