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
from app.domains.analytics import figures, month_changes, queries, rollups
from app.domains.analytics.figures import Cohort
from app.domains.analytics.models import MessageMonth
from app.domains.conversations.models import INBOUND, Conversation, ConversationMessage
from app.platform.db import UnitOfWork, read_report

CHANNELS = ("sms", "email", "whatsapp", "instagram")
# A sequence's name, by table: automation builds on analytics (it reads the reports' rollups), so
# analytics names the columns it reads instead of importing the sequences' model.
Sequence = sa.table("sequences", sa.column("id"), sa.column("name"))
NO_SEQUENCE = "no sequence"
UNKNOWN = "unknown"
# Each grouping's column on the message, in the order of the count rows' key (`_count_reads`).
GROUPS = {"channel": LeadActivity.message_channel, "sequence": LeadActivity.message_sequence_id}


def follow_up_response(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Per channel and per sequence: automated messages, replied, rate, median hours to the reply;
    per channel: the clinic's median minutes to its first reply to a family that wrote first."""
    conversations = _first_messages(session, cohort)
    # Independent reads, at once in one snapshot (PostgreSQL; elsewhere one after the other): the
    # counts by group and reply-time bucket (over two years ~24 months of rows, not ~290,000
    # messages), the first responses; then each group's median from its bucket's messages alone.
    reads = [_count_reads(session, cohort), _first_response_reads(session, conversations)]
    found = iter(read_report(session, [stmt for read in reads for stmt in read]))
    count_rows, first_rows = ([next(found) for _ in read] for read in reads)
    counts = {group: _group_counts(_by_group(count_rows, position)) for position, group in enumerate(GROUPS)}
    medians = _medians(session, cohort, counts)
    by_channel, by_sequence = (
        {
            value: _figures(sent, replied, medians.get((group, value)))
            for value, (sent, replied, _) in found.items()
        }
        for group, found in counts.items()
    )
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


def _count_reads(session: UnitOfWork, cohort: Cohort) -> list:
    """Statements of rows (channel, sequence id, reply bucket, messages, replied) whose sums per key
    are the range's (month_changes.by_months: whole months from the message months, the partial
    ends from the messages' index): both groupings' counts, in one pass each."""
    months, message = MessageMonth, LeadActivity

    def summed(clinic_id: int, first, stop) -> sa.Select:
        key = (months.channel, months.sequence_id, months.reply_bucket)
        return (
            sa.select(*key, sa.func.sum(months.messages), sa.func.sum(months.replied))
            .where(months.clinic_id == clinic_id, months.month >= first, months.month < stop)
            .group_by(*key)
        )

    def between(cohort: Cohort, start, end) -> sa.Select:
        bucket = queries.reply_bucket(session, message.replied, message.reply_seconds)
        key = (message.message_channel, message.message_sequence_id, bucket)
        replied = sa.func.count(sa.case((message.replied, 1)))
        stmt = sa.select(*key, sa.func.count(), replied).where(
            *rollups.automated_sent(cohort.clinic_id, start, end)
        )
        return _lead_filters(stmt, message.lead_id, cohort).group_by(*key)

    return month_changes.by_months(cohort, summed, between)


def _by_group(rows: list[list], position: int) -> list[tuple]:
    """(group value, reply bucket, messages, replied) rows, from `_count_reads`' rows: the group's
    value is the key's `position` (0: channel, 1: sequence id)."""
    return [(row[position], *row[2:]) for found in rows for row in found]


def _median_read(cohort: Cohort, column, value, buckets: dict) -> sa.Select:
    """SQL: the one or two middle times to reply of the group's replied messages (`column` = `value`;
    `buckets`: replied messages by reply bucket). The counts say which bucket holds the middle and
    how many come before it; the statement reads from that bucket's first value on, in reply-time
    order from the group's index of replied messages (migration 0071), skipping those before the
    middle: a few of the group's messages, not all of them."""
    replied = sum(buckets.values())
    lower, upper = (replied + 1) // 2, replied // 2 + 1  # ranks of the middle one or two (from 1)
    before = 0
    for bucket in sorted(buckets):
        if before + buckets[bucket] >= lower:
            break
        before += buckets[bucket]
    message = LeadActivity
    stmt = sa.select(message.reply_seconds).where(
        *rollups.automated_sent(cohort.clinic_id, cohort.start, cohort.end),
        message.replied,
        column.is_(None) if value is None else column == value,
        message.reply_seconds >= queries.bucket_start(bucket),
    )
    stmt = _lead_filters(stmt, message.lead_id, cohort)
    # Ordered by the group too (one value here): PostgreSQL then reads the index in its order even
    # for the null group (`IS NULL` is not an equality to its planner, which would sort instead).
    order = (column, message.reply_seconds)
    return stmt.order_by(*order).offset(lower - 1 - before).limit(upper - lower + 1)


def _group_counts(rows: list[tuple]) -> dict:
    """{group value: [messages, replied, {reply bucket: replied}]} from the group's count rows
    (`_by_group`); groups counting nothing left out. The months keep no channel as '' and no
    sequence as 0, the messages as null: the same group."""
    counts: dict = {}
    for value, bucket, sent, answered in rows:
        group = counts.setdefault(value or None, [0, 0, {}])
        group[0], group[1] = group[0] + (sent or 0), group[1] + (answered or 0)
        if bucket >= 0 and answered:
            group[2][bucket] = group[2].get(bucket, 0) + answered
    return {value: found for value, found in counts.items() if found[0]}


def _medians(session: UnitOfWork, cohort: Cohort, counts: dict) -> dict:
    """{(grouping, value): median seconds to the reply} of every group with a timed reply, each read
    from its middle bucket (`_median_read`), all at once."""
    timed = [
        (group, value, buckets)
        for group, found in counts.items()
        for value, (_, _, buckets) in found.items()
        if sum(buckets.values())
    ]
    reads = [_median_read(cohort, GROUPS[group], value, buckets) for group, value, buckets in timed]
    middles = read_report(session, reads)
    return {
        (group, value): figures.num(sum(found[0] for found in middle) / len(middle), 6)
        for (group, value, _), middle in zip(timed, middles, strict=True)
    }


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
