"""Follow-up response by channel and by sequence: how families answer the automated messages, and
how fast the clinic answers a family that writes first.

Automated messages are those the follow-up report counts (rollups.automated_message: OUTBOUND
messages logged by the system) sent in [from, to); one is replied when rollups marked it `replied`
(an INBOUND activity of the lead within REPLY_WINDOW_HOURS after it). Per message:
- channel: the channel of its thread message (the conversation message of the notification the
  activity names); without one, by the activity's type (EMAIL: email, SMS: sms, else direct_message);
- sequence: the sequence of the enrolment whose step sent it (the activity names the automation
  step); a rule's message (not a sequence's) is "no sequence".
  Both are kept on the message by the rollups (rollups.message_channel, message_sequence_id), which
  the report groups by; a message whose event is not processed yet counts under channel "unknown";
- time to the family's first reply: from the message to its `replied_at` (rollups keeps it: the
  lead's first INBOUND activity after it, within the window; and the seconds to it, `reply_seconds`).
Clinic first response, per channel of the family's first message: conversations whose family first
wrote in [from, to), median seconds from that first message (first_inbound_at) to the clinic's first
reply (first_reply_at); the ones not yet answered are counted apart.
The optional coordinator and source narrow both to the leads they own / came from.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.analytics import figures, queries, rollups
from app.domains.analytics.figures import Cohort
from app.domains.conversations.models import INBOUND, Conversation, ConversationMessage
from app.platform.db import UnitOfWork, read_together

CHANNELS = ("sms", "email", "whatsapp", "instagram")
# A sequence's name, by table: automation builds on analytics (it reads the reports' rollups), so
# analytics names the columns it reads instead of importing the sequences' model.
Sequence = sa.table("sequences", sa.column("id"), sa.column("name"))
NO_SEQUENCE = "no sequence"
UNKNOWN = "unknown"


def follow_up_response(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Per channel and per sequence: automated messages, replied, rate, median hours to the reply;
    per channel: the clinic's median minutes to its first reply to a family that wrote first."""
    messages, conversations = _automated_messages(cohort), _first_messages(session, cohort)
    # Independent groupings (over two years each reads ~290,000 messages or every conversation):
    # read at once, in one snapshot (PostgreSQL; elsewhere one after the other).
    reads = [
        _message_reads(session, messages, messages.c.channel),
        _message_reads(session, messages, messages.c.sequence_id),
        _first_response_reads(session, conversations),
    ]
    found = iter(read_together(session, [stmt for read in reads for stmt in read], queries.plan_for_reports))
    channel_rows, sequence_rows, first_rows = ([next(found) for _ in read] for read in reads)
    by_channel, by_sequence = _message_figures(channel_rows), _message_figures(sequence_rows)
    first_response = _first_response_figures(first_rows)
    names = _sequence_names(session, [i for i in by_sequence if i])
    # A message whose event the rollups have not processed yet has no channel for a moment.
    by_channel = {channel or UNKNOWN: found for channel, found in by_channel.items()}
    by_sequence = {names.get(sequence_id, NO_SEQUENCE): found for sequence_id, found in by_sequence.items()}
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
    return figures.of_leads(stmt, lead_id, owner_id=cohort.coordinator_id, source_id=cohort.source_id)


def _automated_messages(cohort: Cohort):
    """One row per automated message of the range: channel, sequence id, replied, seconds to reply.
    The channel, sequence and seconds are the message's own columns (the rollups keep them), so a
    long range reads its messages already in either group's order from an index (no join, no sort)."""
    message = LeadActivity
    stmt = sa.select(
        message.message_channel.label("channel"),
        message.message_sequence_id.label("sequence_id"),
        message.replied.label("replied"),
        message.reply_seconds.label("seconds"),
    ).where(
        message.clinic_id == cohort.clinic_id,
        rollups.automated_message(message),
        message.occurred_at >= cohort.start,
        message.occurred_at < cohort.end,
    )
    return _lead_filters(stmt, message.lead_id, cohort).subquery()


def _message_reads(session: UnitOfWork, messages, group) -> list:
    """Statements of the messages by `group` (channel or sequence id): count, replied and the median
    seconds to the reply. PostgreSQL: one grouped statement, reading the range's messages in the
    group's order from its index (the automated messages by channel or by sequence: migration 0067),
    percentile_cont skipping the unanswered ones' nulls; elsewhere the counts, then the medians.
    Sequence names are unique in a clinic, so grouping by the sequence's id is grouping by its name."""
    replied = sa.func.count(sa.case((messages.c.replied, 1)))
    if queries.is_postgresql(session):
        median = sa.func.percentile_cont(0.5).within_group(messages.c.seconds)
        return [sa.select(group, sa.func.count(), replied, median).group_by(group)]
    return [
        sa.select(group, sa.func.count(), replied).group_by(group),
        queries.percentile_select(session, messages, messages.c.seconds, group),
    ]


def _message_figures(rows: list[list]) -> dict:
    """{group value: figures}, from the rows of `_message_reads`' statements."""
    if len(rows) == 1:
        return {value: _figures(sent, answered, seconds) for value, sent, answered, seconds in rows[0]}
    counts, medians = rows
    median_of = {value: figures.num(median, 6) for value, median, _ in medians}
    return {value: _figures(sent, answered, median_of.get(value)) for value, sent, answered in counts}


def _sequence_names(session: UnitOfWork, sequence_ids: list) -> dict:
    if not sequence_ids:
        return {}
    return dict(
        session.execute(
            sa.select(Sequence.c.id, Sequence.c.name).where(Sequence.c.id.in_(sequence_ids))
        ).all()
    )


def _figures(sent: int, replied: int, median_seconds) -> dict:
    return {
        "messages": sent,
        "replied": replied,
        "reply_rate": figures.ratio(replied, sent),
        "median_hours_to_reply": figures.num(median_seconds / 3600.0) if median_seconds is not None else None,
    }


def _first_messages(session: UnitOfWork, cohort: Cohort):
    """One row per conversation whose family first wrote in the range: the channel of that first
    message, when and in how many seconds the clinic first replied (null: not yet)."""
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
    return _lead_filters(stmt, Conversation.lead_id, cohort).subquery()


def _first_response_reads(session: UnitOfWork, conversations) -> list:
    """Statements: per channel, conversations and those answered; the median seconds to the answer."""
    group = conversations.c.channel
    return [
        sa.select(group, sa.func.count(), sa.func.count(conversations.c.replied_at)).group_by(group),
        queries.percentile_select(session, conversations, conversations.c.seconds, group),
    ]


def _first_response_figures(rows: list[list]) -> dict:
    """Per channel of the family's first message: conversations, answered, median minutes to answer."""
    counts, medians = rows
    median_of = {channel: figures.num(median, 6) for channel, median, _ in medians}
    found = {}
    for channel, total, answered in counts:
        median_seconds = median_of.get(channel)
        found[channel or UNKNOWN] = {
            "conversations": total,
            "answered": answered,
            "median_first_reply_minutes": figures.num(median_seconds / 60.0)
            if median_seconds is not None
            else None,
        }
    return found


REPORTS = {"follow-up-response": follow_up_response}
