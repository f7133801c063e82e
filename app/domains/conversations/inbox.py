"""The team inbox: the clinic's conversations, the most recent activity first, as one staff member
sees them (their unread counts).

Views: `mine` (threads of the leads the caller owns), `unassigned` (leads with no owner, and unknown
senders' threads, which belong to nobody yet), `all`. `unread` keeps the threads where the family
wrote after the caller's read mark; `channel` the threads whose family last wrote on that channel;
`status` the open (someone should answer; a snoozed one is not, until its snooze ends), the snoozed
or the resolved ones.
Keyset-paginated on (last message time, id), served by `ix_conversations_inbox`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.conversations.models import (
    INBOUND,
    OPEN,
    SNOOZED,
    Conversation,
    ConversationMessage,
    ConversationRead,
)
from app.domains.conversations.threads import decode_cursor, encode_cursor
from app.domains.leads.models import Lead
from app.platform import clock
from app.platform.db import UnitOfWork
from app.platform.roles import Actor

MINE, UNASSIGNED, ALL = "mine", "unassigned", "all"
VIEWS = (MINE, UNASSIGNED, ALL)
PREVIEW_LENGTH = 140


def inbox_page(
    *,
    session: UnitOfWork,
    actor: Actor,
    filters: dict,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> dict:
    """A page of the inbox for `actor` as of `now` (whose snoozes have ended); `filters`: view,
    unread, channel, status."""
    mark = sa.func.coalesce(ConversationRead.last_read_message_id, 0)
    unread = (
        sa.select(sa.func.count())
        .where(
            ConversationMessage.conversation_id == Conversation.id,
            ConversationMessage.direction == INBOUND,
            ConversationMessage.id > mark,
        )
        .scalar_subquery()
    )
    query = (
        _of_view(sa.select(Conversation, unread.label("unread")), actor, filters, now)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(limit + 1)
    )
    after = decode_cursor(cursor, ("at", "id"))
    if after is not None:
        at = datetime.fromisoformat(after["at"])
        query = query.where(
            sa.or_(
                Conversation.last_message_at < at,
                sa.and_(Conversation.last_message_at == at, Conversation.id < int(after["id"])),
            )
        )
    rows = session.execute(query).all()
    more, rows = len(rows) > limit, rows[:limit]
    previews = _last_messages(session, [row.Conversation.last_message_id for row in rows])
    people = _leads(session, [row.Conversation.lead_id for row in rows if row.Conversation.lead_id])
    items = [_row(row, previews.get(row.Conversation.last_message_id), people, now) for row in rows]
    last = rows[-1].Conversation if rows else None
    next_cursor = (
        encode_cursor({"at": clock.as_utc(last.last_message_at).isoformat(), "id": last.id}) if more else None
    )
    return {"items": items, "next_cursor": next_cursor}


def unread_threads(*, session: UnitOfWork, actor: Actor, now: datetime, view: str = MINE) -> int:
    """How many threads of `view` (by default the caller's own leads') have the family's messages
    after the caller's read mark: the count beside the workspace's Inbox link."""
    filters = {"view": view, "unread": True}
    query = _of_view(sa.select(sa.func.count(Conversation.id)), actor, filters, now)
    return session.scalar(query) or 0


def _of_view(query, actor: Actor, filters: dict, now: datetime):
    """`query` over the clinic's conversations with a message, joined to the caller's read marks,
    kept to the view, unread and channel `filters` ask for."""
    mark = sa.func.coalesce(ConversationRead.last_read_message_id, 0)
    query = query.outerjoin(
        ConversationRead,
        sa.and_(
            ConversationRead.conversation_id == Conversation.id, ConversationRead.user_id == actor.user_id
        ),
    ).where(Conversation.clinic_id == actor.clinic_id, Conversation.last_message_at.is_not(None))
    # The leads a view keeps, as a semi-join hashed once (not a join walked per row): the inbox is
    # read newest first on ix_conversations_inbox and stops at the page's end.
    live = sa.select(Lead.id).where(Lead.clinic_id == actor.clinic_id, Lead.deleted_at.is_(None))
    view = filters.get("view") or ALL
    if view == MINE:
        query = query.where(Conversation.lead_id.in_(live.where(Lead.assigned_to_id == actor.user_id)))
    elif view == UNASSIGNED:
        nobodys = live.where(Lead.assigned_to_id.is_(None))
        query = query.where(sa.or_(Conversation.lead_id.is_(None), Conversation.lead_id.in_(nobodys)))
    else:
        deleted = sa.select(Lead.id).where(Lead.clinic_id == actor.clinic_id, Lead.deleted_at.is_not(None))
        query = query.where(sa.or_(Conversation.lead_id.is_(None), Conversation.lead_id.not_in(deleted)))
    if filters.get("unread"):
        query = query.where(Conversation.last_inbound_id > mark)
    if filters.get("channel"):
        query = query.where(Conversation.last_inbound_channel == filters["channel"])
    snoozed = sa.and_(Conversation.snoozed_until.is_not(None), Conversation.snoozed_until > now)
    if filters.get("status") == SNOOZED:
        query = query.where(Conversation.status == OPEN, snoozed)
    elif filters.get("status") == OPEN:
        query = query.where(Conversation.status == OPEN, sa.not_(snoozed))
    elif filters.get("status"):
        query = query.where(Conversation.status == filters["status"])
    return query


def _last_messages(session: UnitOfWork, ids: list[int]) -> dict[int, ConversationMessage]:
    if not ids:
        return {}
    rows = session.scalars(sa.select(ConversationMessage).where(ConversationMessage.id.in_(ids)))
    return {row.id: row for row in rows}


def _leads(session: UnitOfWork, ids: list[int]) -> dict[int, tuple]:
    """The page's leads: (first name, last name, owner) by id."""
    if not ids:
        return {}
    rows = session.execute(
        sa.select(Lead.id, Lead.first_name, Lead.last_name, Lead.assigned_to_id).where(Lead.id.in_(ids))
    )
    return {row.id: (row.first_name, row.last_name, row.assigned_to_id) for row in rows}


def _row(row, last: ConversationMessage | None, people: dict[int, tuple], now: datetime) -> dict:
    conversation = row.Conversation
    lead, owner = None, None
    if conversation.lead_id is not None:
        first_name, last_name, owner = people[conversation.lead_id]
        lead = {"id": conversation.lead_id, "first_name": first_name, "last_name": last_name}
    return {
        "id": conversation.id,
        "lead": lead,
        # An unknown sender's thread: the number or address it came from (contact details, no PHI).
        "contact": None
        if lead
        else {"channel": conversation.contact_channel, "address": conversation.contact_address},
        "assignee_id": owner,
        "status": conversation.status,
        "snoozed_until": conversation.snoozed_at(now),
        "unread": row.unread,
        "waiting_since": conversation.waiting_since,
        "last_message_at": conversation.last_message_at,
        "last_message": None
        if last is None
        else {
            "id": last.id,
            "channel": last.channel,
            "direction": last.direction,
            "preview": last.body[:PREVIEW_LENGTH],
        },
    }
