"""Follow-up response by channel and by sequence: how families answer the automated messages, and
how fast the clinic answers a family that writes first.

Automated messages are those the follow-up report counts (rollups.automated_message: OUTBOUND
messages logged by the system) sent in [from, to); one is replied when rollups marked it `replied`
(an INBOUND activity of the lead within REPLY_WINDOW_HOURS after it). Per message:
- channel: the channel of its thread message (conversations keep it, joined by the notification the
  activity names); without one, by the activity's type (EMAIL: email, SMS: sms);
- sequence: the sequence of the enrolment whose step sent it (the activity names the automation
  step); a rule's message (not a sequence's) is "no sequence";
- time to the family's first reply: from the message to its `replied_at` (rollups keeps it: the
  lead's first INBOUND activity after it, within the window).
Clinic first response, per channel of the family's first message: conversations whose family first
wrote in [from, to), median seconds from that first message (first_inbound_at) to the clinic's first
reply (first_reply_at); the ones not yet answered are counted apart.
The optional coordinator and source narrow both to the leads they own / came from.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.activities.models import ActivityType, LeadActivity
from app.domains.analytics import figures, queries, rollups
from app.domains.analytics.figures import Cohort
from app.domains.conversations.models import INBOUND, OUTBOUND, Conversation, ConversationMessage
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork

CHANNELS = ("sms", "email", "whatsapp", "instagram")
# The sequence behind a step, by table: automation builds on analytics (it reads the reports' rollups),
# so analytics names the three columns it joins instead of importing automation's models.
AutomationStep = sa.table("automation_steps", sa.column("id"), sa.column("enrollment_id"))
SequenceEnrollment = sa.table("sequence_enrollments", sa.column("id"), sa.column("sequence_id"))
Sequence = sa.table("sequences", sa.column("id"), sa.column("name"))
NO_SEQUENCE = "no sequence"


def follow_up_response(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Per channel and per sequence: automated messages, replied, rate, median hours to the reply;
    per channel: the clinic's median minutes to its first reply to a family that wrote first."""
    messages = _automated_messages(session, cohort)
    by_channel, by_sequence = _by_channel_and_sequence(session, messages)
    first_response = _first_response(session, cohort)
    channel_rows = []
    for channel in _ordered({*CHANNELS, *by_channel, *first_response}):
        row = {"group": "channel", "name": channel, **by_channel.get(channel, _empty())}
        row.update(
            first_response.get(
                channel, {"conversations": 0, "answered": 0, "median_first_reply_minutes": None}
            )
        )
        channel_rows.append(row)
    sequence_rows = [
        {"group": "sequence", "name": name, **by_sequence[name]}
        for name in sorted(by_sequence, key=lambda n: (n == NO_SEQUENCE, n))
    ]
    return {
        **figures.period(
            cohort.start, cohort.end, coordinator_id=cohort.coordinator_id, source_id=cohort.source_id
        ),
        "reply_window_hours": rollups.REPLY_WINDOW_HOURS,
        "channels": channel_rows,
        "sequences": sequence_rows,
        # The CSV's rows: each channel, then each sequence (the columns a sequence lacks left empty).
        "rows": [*channel_rows, *sequence_rows],
    }


def _ordered(channels: set) -> list:
    return [c for c in CHANNELS if c in channels] + sorted(c for c in channels if c not in CHANNELS)


def _empty() -> dict:
    return {"messages": 0, "replied": 0, "reply_rate": None, "median_hours_to_reply": None}


def _lead_filters(stmt, lead_id, cohort: Cohort):
    if cohort.coordinator_id is None and cohort.source_id is None:
        return stmt
    stmt = stmt.join(Lead, Lead.id == lead_id)
    if cohort.coordinator_id is not None:
        stmt = stmt.where(Lead.assigned_to_id == cohort.coordinator_id)
    if cohort.source_id is not None:
        stmt = stmt.where(Lead.source_id == cohort.source_id)
    return stmt


def _automated_messages(session: UnitOfWork, cohort: Cohort):
    """One row per automated message of the range: channel, sequence name, replied, seconds to reply."""
    message = LeadActivity
    thread = sa.orm.aliased(ConversationMessage)
    by_type = sa.case(
        (message.type == ActivityType.EMAIL, "email"), (message.type == ActivityType.SMS, "sms")
    )
    stmt = (
        sa.select(
            sa.func.coalesce(thread.channel, by_type, sa.literal("direct_message")).label("channel"),
            sa.func.coalesce(Sequence.c.name, sa.literal(NO_SEQUENCE)).label("sequence"),
            message.replied.label("replied"),
            figures.seconds(session, message.replied_at, message.occurred_at).label("seconds"),
        )
        .select_from(message)
        .outerjoin(
            thread,
            sa.and_(
                thread.notification_id == message.details["notification_id"].as_integer(),
                thread.clinic_id == message.clinic_id,
                thread.direction == OUTBOUND,
            ),
        )
        .outerjoin(AutomationStep, AutomationStep.c.id == message.details["automation_step_id"].as_integer())
        .outerjoin(SequenceEnrollment, SequenceEnrollment.c.id == AutomationStep.c.enrollment_id)
        .outerjoin(Sequence, Sequence.c.id == SequenceEnrollment.c.sequence_id)
        .where(
            message.clinic_id == cohort.clinic_id,
            rollups.automated_message(message),
            message.occurred_at >= cohort.start,
            message.occurred_at < cohort.end,
        )
    )
    return _lead_filters(stmt, message.lead_id, cohort).subquery()


def _by_channel_and_sequence(session: UnitOfWork, messages) -> tuple[dict, dict]:
    """({channel: figures}, {sequence: figures}). PostgreSQL: one pass over the messages (grouping
    sets; percentile_cont skips the unanswered ones' nulls); elsewhere a count and a median query
    per grouping."""
    replied = sa.func.count(sa.case((messages.c.replied, 1)))
    if not queries.is_postgresql(session):
        return tuple(
            _rows(session, messages, group, replied) for group in (messages.c.channel, messages.c.sequence)
        )
    median = sa.func.percentile_cont(0.5).within_group(messages.c.seconds)
    by_channel, by_sequence = {}, {}
    for channel, sequence, sent, answered, seconds in session.execute(
        sa.select(messages.c.channel, messages.c.sequence, sa.func.count(), replied, median).group_by(
            sa.func.grouping_sets(sa.tuple_(messages.c.channel), sa.tuple_(messages.c.sequence))
        )
    ):
        found = by_channel if sequence is None else by_sequence
        found[channel if sequence is None else sequence] = _figures(sent, answered, seconds)
    return by_channel, by_sequence


def _rows(session: UnitOfWork, messages, group, replied) -> dict:
    counts = session.execute(sa.select(group, sa.func.count(), replied).group_by(group)).all()
    medians = figures.percentiles(session, messages, messages.c.seconds, group, places=6)
    return {
        name: _figures(sent, answered, medians.get(name, (None, None))[0]) for name, sent, answered in counts
    }


def _figures(sent: int, replied: int, median_seconds) -> dict:
    return {
        "messages": sent,
        "replied": replied,
        "reply_rate": figures.ratio(replied, sent),
        "median_hours_to_reply": figures.num(median_seconds / 3600.0) if median_seconds is not None else None,
    }


def _first_response(session: UnitOfWork, cohort: Cohort) -> dict:
    """Per channel of the family's first message: conversations, answered, median minutes to answer."""
    first = sa.orm.aliased(ConversationMessage)
    first_channel = (
        sa.select(first.channel)
        .where(first.conversation_id == Conversation.id, first.direction == INBOUND)
        .order_by(first.id)
        .limit(1)
        .scalar_subquery()
    )
    stmt = sa.select(
        first_channel.label("channel"),
        Conversation.first_reply_at.label("replied_at"),
        figures.seconds(session, Conversation.first_reply_at, Conversation.first_inbound_at).label("seconds"),
    ).where(
        Conversation.clinic_id == cohort.clinic_id,
        Conversation.lead_id.is_not(None),
        Conversation.first_inbound_at >= cohort.start,
        Conversation.first_inbound_at < cohort.end,
    )
    conversations = _lead_filters(stmt, Conversation.lead_id, cohort).subquery()
    group = conversations.c.channel
    counts = session.execute(
        sa.select(group, sa.func.count(), sa.func.count(conversations.c.replied_at)).group_by(group)
    ).all()
    medians = figures.percentiles(session, conversations, conversations.c.seconds, group, places=6)
    found = {}
    for channel, total, answered in counts:
        median_seconds = medians.get(channel, (None, None))[0]
        found[channel or "unknown"] = {
            "conversations": total,
            "answered": answered,
            "median_first_reply_minutes": figures.num(median_seconds / 60.0)
            if median_seconds is not None
            else None,
        }
    return found


REPORTS = {"follow-up-response": follow_up_response}
