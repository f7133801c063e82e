"""Summary data the analytics reports read, kept right by consumers of the outbox's events.

Aggregating the raw history at report time (a first-contact probe per lead, a reply probe per
message, a max over each lead's stays) took seconds at 100,000 leads over two years. So:
- leads.first_outbound_contact_at: the earliest time a person of the clinic reached the lead: a
  contact or an attempt (activities/rules.py) that is not inbound and not automated (an automated
  message is not the coordinator reaching out, and a lead calling in is not: speed to lead is theirs)
  (`on_activity_logged`: every activity has its `activity.logged` event; they are never edited or
  deleted);
- leads.first_attempt_at (a person's first outbound activity) and leads.first_contact_at (the first
  contact, either way: activities/rules.py), the ends of speed to lead's split (coordination.py);
  leads.first_task_at (its first task) is written with the task, by tasks.creation.write_tasks;
- leads.speed_to_lead_seconds, routing_seconds, human_attempt_seconds, human_contact_seconds: the
  spans speed to lead takes percentiles of, worked out from the firsts above, `created_at` and
  `assigned_at` by the statement that sets any of their ends (leads.models.kept_spans: here, in the
  task writer and in assignment.apply), read in order from indexes (migration 0068);
- leads.furthest_stage: the slug of the furthest non-lost stage the lead has been in, by the
  stages' current positions, recomputed from its stays (`on_stage_changed`; `on_stages_reordered`
  after the stages are reordered). Null while the lead has never moved: it has then only been in its
  current stage (every lead opens its first stay in the stage it was created in);
- lead_activities.replied: on an automated (actor "system") outbound email or SMS, whether the lead
  answered (an INBOUND activity) within REPLY_WINDOW_HOURS after it; set when either side's event is
  processed; lead_activities.replied_at: the time of that first answer (the earliest such reply: a
  reply processed later but earlier in time lowers it); lead_activities.reply_seconds: the seconds
  from the message to that answer (the report's median reads it from an index, sorted);
- lead_activities.message_channel and message_sequence_id: on an automated message, the channel of
  its thread message (the conversation message of its notification; without one, its type's: email,
  sms, else direct_message) and the sequence of the enrollment whose automation step sent it (null:
  a rule's message), so the follow-up response report groups by them from an index without joining
  (set when the message's own event is processed; until then it counts under channel "unknown");
The automated messages' monthly counts (analytics_message_months) are kept by the database's
triggers from all of these (migration 0071, app/domains/analytics/month_changes.py), not here.
Each consumer computes its column from the rows, not from what the event says changed, so running it
again, or after a later event, gives the same column. The stays' lead_created_at and stay_seconds
are the stay's own facts, written by pipeline with the stay.
`backfill` computes them all from the raw rows (the migration runs the same statements).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.activities import rules as activity_rules
from app.domains.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.domains.analytics import monthly, queries
from app.domains.analytics.models import MessageMonth
from app.domains.analytics.queries import seconds_between
from app.domains.leads.models import SPAN_ENDS, Lead, kept_spans
from app.domains.pipeline.models import LeadStageHistory, PipelineStage
from app.domains.tasks.models import LeadTask
from app.platform.db import UnitOfWork
from app.platform.events.types import Delivered

MESSAGE_TYPES = (ActivityType.EMAIL, ActivityType.SMS, ActivityType.DIRECT_MESSAGE)
REPLY_WINDOW_HOURS = 72
SYSTEM_ACTOR = "system"
LOST = "lost"
# A message's thread message and the sequence behind its step, by table: automation builds on
# analytics (it reads the reports' rollups), so analytics names the columns it reads instead of
# importing automation's models (and conversations' here: the coupling budget counts each import).
ThreadMessage = sa.table(
    "conversation_messages",
    sa.column("id"),
    sa.column("clinic_id"),
    sa.column("channel"),
    sa.column("direction"),
    sa.column("notification_id"),
)
OUTBOUND_THREAD_MESSAGE = "outbound"  # conversations.models.OUTBOUND
AutomationStep = sa.table("automation_steps", sa.column("id"), sa.column("enrollment_id"))
SequenceEnrollment = sa.table("sequence_enrollments", sa.column("id"), sa.column("sequence_id"))


def automated_message(activity=LeadActivity) -> sa.ColumnElement[bool]:
    """SQL: `activity` is an automated outbound message. Literals, not parameters, so the planner can
    match the partial index with the same predicate however the statement is prepared."""
    return sa.and_(
        activity.direction == sa.literal_column(f"'{ActivityDirection.OUTBOUND}'"),
        activity.actor == sa.literal_column(f"'{SYSTEM_ACTOR}'"),
        activity.type.in_([sa.literal_column(f"'{t}'") for t in MESSAGE_TYPES]),
    )


def automated_sent(clinic_id: int, start, end) -> list:
    """SQL conditions: the clinic's automated messages sent in [start, end)."""
    return [
        LeadActivity.clinic_id == clinic_id,
        automated_message(),
        LeadActivity.occurred_at >= start,
        LeadActivity.occurred_at < end,
    ]


def message_channel(message=LeadActivity) -> sa.ColumnElement[str]:
    """SQL: an automated message's channel: its thread message's (the conversation message of the
    notification it names), else by its type (EMAIL: email, SMS: sms), else direct_message."""
    thread = ThreadMessage.alias("thread")
    in_thread = (
        sa.select(thread.c.channel)
        .where(
            thread.c.notification_id == message.details["notification_id"].as_integer(),
            thread.c.clinic_id == message.clinic_id,
            thread.c.direction == OUTBOUND_THREAD_MESSAGE,
        )
        .order_by(thread.c.id)
        .limit(1)
        .scalar_subquery()
    )
    by_type = sa.case(
        (message.type == ActivityType.EMAIL, "email"), (message.type == ActivityType.SMS, "sms")
    )
    return sa.func.coalesce(in_thread, by_type, sa.literal("direct_message"))


def message_sequence_id(message=LeadActivity) -> sa.ColumnElement[int]:
    """SQL: the sequence of the enrollment whose automation step sent the message (null: none)."""
    return (
        sa.select(SequenceEnrollment.c.sequence_id)
        .select_from(AutomationStep)
        .join(SequenceEnrollment, SequenceEnrollment.c.id == AutomationStep.c.enrollment_id)
        .where(AutomationStep.c.id == message.details["automation_step_id"].as_integer())
        .limit(1)
        .scalar_subquery()
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


# --- the consumers --------------------------------------------------------------------------------


def on_activity_logged(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """An activity was logged: the lead's first contact, and the replied marks of its messages."""
    facts = event.data
    lead_id, at = facts.lead_id, datetime.fromisoformat(facts.occurred_at)
    actor = SYSTEM_ACTOR if facts.system else None
    kind = {"type": facts.type, "direction": facts.direction}
    firsts = _firsts_lowered_by(**kind, outcome=facts.outcome, actor=actor)
    if firsts:
        _lower_firsts(session, lead_id, at, firsts)
    if kind["direction"] == ActivityDirection.INBOUND:
        _mark_replied_messages(session, lead_id, at)
    if is_automated_message(**kind, actor=actor):
        _mark_if_already_answered(session, facts.activity_id, lead_id, at)
        _stamp_channel_and_sequence(session, facts.activity_id)


def _stamp_channel_and_sequence(session: UnitOfWork, message_id: int) -> None:
    """The message's channel and sequence, from its thread message and step (written with it); a
    replayed event writes the same values."""
    session.execute(
        sa.update(LeadActivity)
        .where(LeadActivity.id == message_id)
        .values(message_channel=message_channel(), message_sequence_id=message_sequence_id())
        .execution_options(synchronize_session=False)
    )


def _turn_replied(session: UnitOfWork, conditions: list, reply_at: datetime) -> None:
    """The messages of `conditions` replied at `reply_at`: those not replied yet turn replied; those
    replied later than that keep the earlier reply."""
    answered = {"replied_at": reply_at, "reply_seconds": _seconds_to(session, reply_at)}
    session.execute(
        sa.update(LeadActivity)
        .where(*conditions, LeadActivity.replied_at.is_(None))
        .values(replied=True, **answered)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(LeadActivity)
        .where(*conditions, LeadActivity.replied_at > reply_at)
        .values(**answered)
        .execution_options(synchronize_session=False)
    )


def _firsts_lowered_by(*, type: str, direction: str | None, outcome: str | None, actor: str | None) -> list:
    """The lead's first-time columns an activity of this kind may make earlier."""
    firsts = []
    if is_staff_contact(type=type, direction=direction, outcome=outcome, actor=actor):
        firsts.append(Lead.first_outbound_contact_at)
    if direction == ActivityDirection.OUTBOUND and actor != SYSTEM_ACTOR:
        firsts.append(Lead.first_attempt_at)
    if activity_rules.is_contact(type=type, direction=direction, outcome=outcome):
        firsts.append(Lead.first_contact_at)
    return firsts


def _lower_firsts(session: UnitOfWork, lead_id: int, at: datetime, firsts: list) -> None:
    # Each the earlier of itself and `at`: two activities of the lead, processed in either order, end
    # at the earliest. One statement, and none when nothing would change.
    # The spans that end at them move with them (leads.models.kept_spans), from the lowered values.
    later = [sa.or_(first.is_(None), first > at) for first in firsts]
    lowered = {
        first.key: sa.case((is_later, sa.literal(at, first.type)), else_=first)
        for first, is_later in zip(firsts, later, strict=True)
    }
    session.execute(
        sa.update(Lead)
        .where(Lead.id == lead_id, sa.or_(*later))
        .values({**lowered, **kept_spans(**lowered)})
        .execution_options(synchronize_session=False)
    )


def _mark_replied_messages(session: UnitOfWork, lead_id: int, at: datetime) -> None:
    """A reply at `at`: the lead's automated messages of the window before it were answered."""
    window = timedelta(hours=REPLY_WINDOW_HOURS)
    _turn_replied(
        session,
        [
            LeadActivity.lead_id == lead_id,
            automated_message(),
            LeadActivity.occurred_at < at,
            LeadActivity.occurred_at >= at - window,
        ],
        at,
    )


def _seconds_to(session: UnitOfWork, reply_at: datetime):
    """SQL: seconds from the message to its reply at `reply_at`: the same expression as the backfill's
    and the report's before it kept them, so the same value to the last bit."""
    return seconds_between(
        session, sa.literal(reply_at, LeadActivity.replied_at.type), LeadActivity.occurred_at
    )


def _mark_if_already_answered(session: UnitOfWork, message_id: int, lead_id: int, at: datetime) -> None:
    """A message whose reply is on record already (logged late, or its reply's event came first)."""
    reply = sa.orm.aliased(LeadActivity)
    first_answer = session.scalar(
        sa.select(sa.func.min(reply.occurred_at)).where(
            reply.lead_id == lead_id,
            reply.direction == ActivityDirection.INBOUND,
            reply.occurred_at > at,
            reply.occurred_at <= at + timedelta(hours=REPLY_WINDOW_HOURS),
        )
    )
    if first_answer is not None:
        _turn_replied(session, [LeadActivity.id == message_id], first_answer)


def on_stage_changed(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """The lead entered a stage: its furthest stage, from its stays."""
    session.execute(
        sa.update(Lead)
        .where(Lead.id == event.data.lead_id)
        .values(furthest_stage=_furthest_stage_of_lead())
        .execution_options(synchronize_session=False)
    )


def on_stages_reordered(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """The clinic's stages changed order: every lead's furthest stage again, and the clinic's counts."""
    refresh_furthest_stages(session, event.clinic_id)


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


def refresh_furthest_stages(session: UnitOfWork, clinic_id: int) -> None:
    """After the clinic's stages changed order: every lead's furthest stage again, from its stays."""
    session.execute(
        sa.update(Lead)
        .where(Lead.clinic_id == clinic_id)
        .values(furthest_stage=_furthest_stage_of_lead())
        .execution_options(synchronize_session=False)
    )
    session.expire_all()  # loaded leads hold the old value
    monthly.rebuild(session.connection(), clinic_id)  # reached stages moved: recount the clinic


def _first(column, *conditions):
    return sa.select(sa.func.min(column)).where(*conditions).scalar_subquery()


def stamp_spans(connection: sa.Connection, *conditions) -> None:
    """The kept spans of the leads of `conditions` (all: none given) from their stored firsts (for
    rows written around the write paths; migration 0068 runs the same SQL)."""
    ends = {first for ends in SPAN_ENDS.values() for first in ends}
    connection.execute(
        sa.update(Lead)
        .where(*conditions)
        .values(kept_spans(**{first: getattr(Lead, first) for first in ends}))
    )


def backfill(connection: sa.Connection) -> None:
    """Every summary column computed from the raw rows (data loaded around the write paths)."""
    first_contact = (
        sa.select(sa.func.min(LeadActivity.occurred_at))
        .where(LeadActivity.lead_id == Lead.id, staff_contact())
        .scalar_subquery()
    )
    connection.execute(
        sa.update(Lead).values(
            first_outbound_contact_at=first_contact,
            first_task_at=_first(LeadTask.created_at, LeadTask.lead_id == Lead.id),
            first_attempt_at=_first(
                LeadActivity.occurred_at,
                LeadActivity.lead_id == Lead.id,
                LeadActivity.direction == ActivityDirection.OUTBOUND,
                LeadActivity.actor != SYSTEM_ACTOR,
            ),
            first_contact_at=_first(
                LeadActivity.occurred_at, LeadActivity.lead_id == Lead.id, activity_rules.contact_clause()
            ),
            furthest_stage=_furthest_stage_of_lead(),
        )
    )
    stamp_spans(connection)
    connection.execute(
        sa.update(LeadStageHistory)
        .where(LeadStageHistory.left_at.is_not(None))
        .values(
            stay_seconds=seconds_between(connection, LeadStageHistory.left_at, LeadStageHistory.entered_at)
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
    first_answer = (
        sa.select(sa.func.min(reply.occurred_at))
        .where(
            reply.lead_id == LeadActivity.lead_id,
            reply.direction == ActivityDirection.INBOUND,
            reply.occurred_at > LeadActivity.occurred_at,
            seconds_between(connection, reply.occurred_at, LeadActivity.occurred_at)
            <= REPLY_WINDOW_HOURS * 3600,
        )
        .scalar_subquery()
    )
    connection.execute(sa.update(LeadActivity).where(automated_message()).values(replied_at=first_answer))
    connection.execute(
        sa.update(LeadActivity)
        .where(automated_message())
        .values(
            replied=LeadActivity.replied_at.is_not(None),
            reply_seconds=seconds_between(connection, LeadActivity.replied_at, LeadActivity.occurred_at),
        )
    )
    connection.execute(
        sa.update(LeadActivity)
        .where(automated_message())
        .values(message_channel=message_channel(), message_sequence_id=message_sequence_id())
    )
    rebuild_message_months(connection)
    monthly.rebuild(connection)


def _message_months_select(bind):
    """SQL: the message month rows computed from the automated messages, one per (clinic, month,
    channel, sequence, reply bucket)."""
    key = (
        LeadActivity.clinic_id,
        queries.utc_month(bind, LeadActivity.occurred_at),
        sa.func.coalesce(LeadActivity.message_channel, ""),
        sa.func.coalesce(LeadActivity.message_sequence_id, 0),
        queries.reply_bucket(bind, LeadActivity.replied, LeadActivity.reply_seconds),
    )
    replied = sa.func.count(sa.case((LeadActivity.replied, 1)))
    return sa.select(*key, sa.func.count(), replied).where(automated_message()).group_by(*key)


def rebuild_message_months(connection: sa.Connection) -> None:
    """The message months computed from the messages (the triggers counted each write of the
    backfill's UPDATEs as it went; recomputed whole here, as migration 0071 does)."""
    table = MessageMonth.__table__
    connection.execute(table.delete())
    connection.execute(
        table.insert().from_select(
            ["clinic_id", "month", "channel", "sequence_id", "reply_bucket", "messages", "replied"],
            _message_months_select(connection),
        )
    )


def recomputed_message_months(connection: sa.Connection) -> dict:
    """{(clinic id, month, channel, sequence id, reply bucket): (messages, replied)} from the messages
    (tests compare it with what the message months keep, month_changes.kept)."""
    return {tuple(row[:5]): tuple(row[5:]) for row in connection.execute(_message_months_select(connection))}
