"""Write, publish, replay and shape the events of users' live streams.

`record()` adds a `stream_events` row in the caller's unit of work; once that unit commits, the new
rows' ids are published on one Redis channel (`CHANNEL`), which every stream process, on every host,
listens to. The row is the event: a stream process loads it by id and shapes it for its reader; a
client that was away asks for what follows its Last-Event-ID (`since`) and gets the rows, or a
`reset` when they are past the retention window. A publication lost (Redis away at that moment)
loses no event: it is in the table, and a stream process catches up from there after it
reconnects to Redis.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
import sqlalchemy as sa

from app.platform import phi_policy
from app.platform.db import UnitOfWork, new_row
from app.platform.roles import Actor
from app.platform.stream.models import StreamEvent

log = logging.getLogger(__name__)

CHANNEL = "followup:stream"
RESET = "reset"  # the event that tells a client to reload: what it missed is past the window
REPLAY_LIMIT = 500  # more missed than this: a reset too (a reload is cheaper than the backlog)


@dataclass(frozen=True)
class StreamNote:
    """What one user is told: the event's `type`, its `data` (ids, a lead's summary: shaped per
    reader when sent) and the lead it is about, if any."""

    type: str
    data: dict
    lead_id: int | None = None
    notification_id: int | None = None


def record(
    *, session: UnitOfWork, clinic_id: int, user_id: int, note: StreamNote, now: datetime
) -> StreamEvent:
    """Add one event to `user_id`'s stream, in the caller's transaction; published once it commits."""
    row = new_row(
        StreamEvent,
        clinic_id=clinic_id,
        user_id=user_id,
        type=note.type,
        lead_id=note.lead_id,
        notification_id=note.notification_id,
        data=note.data,
        created_at=now,
    )
    session.add(row)
    _messages(session).rows.append(row)
    return row


@dataclass
class StreamMessages:
    """A unit's messages to the stream processes, published together once it has committed: its
    new rows' ids (given by its commit's flush) and the users whose access changed."""

    client: redis.Redis | None
    rows: list[StreamEvent] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def publish(self) -> None:
        kept = [row for row in self.rows if sa.inspect(row).persistent]  # not a rolled-back savepoint's
        messages = [json.dumps({"user_id": row.user_id, "id": row.id}) for row in kept] + self.changed
        if messages:
            publish(self.client, messages)


def _messages(session: UnitOfWork) -> StreamMessages:
    """The unit's one StreamMessages, added to what it publishes after its commit at its first use."""
    for publication in session.to_publish:
        if isinstance(publication, StreamMessages):
            return publication
    messages = StreamMessages(session.database.redis)
    session.publish_after_commit(messages)
    return messages


def publish(client: redis.Redis | None, messages: list[str]) -> None:
    """Tell the stream processes; Redis away only delays the events (they are replayed from the table)."""
    if client is None:
        return
    try:
        with client.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.publish(CHANNEL, message)
            pipe.execute()
    except redis.RedisError as error:
        log.warning("stream events not published", extra={"data": {"error": type(error).__name__}})


def user_changed(*, session: UnitOfWork, user_id: int) -> None:
    """Tell the stream processes, once the unit commits, that the user's access changed (disabled,
    another role, a new password or email): their open streams check the user again at once, and
    close when the user may no longer read them (app/streaming). Lost with Redis away: each stream
    still checks at its next heartbeat."""
    _messages(session).changed.append(json.dumps({"user_id": user_id, "changed": True}))


@dataclass
class Replay:
    """What follows a client's Last-Event-ID: the events, or `reset` (the id to resume from after it)."""

    events: list[StreamEvent] = field(default_factory=list)
    reset_to: int | None = None


def since(
    *, session: UnitOfWork, user_id: int, last_id: int | None, now: datetime, retention: timedelta
) -> Replay:
    """The user's events after `last_id` (None: a new stream, nothing to replay; 0: all the window's).

    `last_id` must be one of the user's own events within the window: otherwise what came between
    may have been pruned, and the client is told to reload instead."""
    if last_id is None:
        return Replay()
    cutoff = now - retention
    if last_id != 0:
        anchor = session.scalar(
            sa.select(StreamEvent.created_at).where(StreamEvent.id == last_id, StreamEvent.user_id == user_id)
        )
        if anchor is None or anchor < cutoff:
            return Replay(reset_to=newest_id(session=session, user_id=user_id))
    stmt = (
        sa.select(StreamEvent)
        .where(StreamEvent.user_id == user_id, StreamEvent.id > last_id, StreamEvent.created_at >= cutoff)
        .order_by(StreamEvent.id)
        .limit(REPLAY_LIMIT + 1)
    )
    events = list(session.scalars(stmt))
    if len(events) > REPLAY_LIMIT:
        return Replay(reset_to=newest_id(session=session, user_id=user_id))
    return Replay(events=events)


def newest_id(*, session: UnitOfWork, user_id: int) -> int:
    """The id of the user's latest event (0: none): where a client resumes after a reset."""
    return session.scalar(sa.select(sa.func.max(StreamEvent.id)).where(StreamEvent.user_id == user_id)) or 0


def by_ids(*, session: UnitOfWork, user_id: int, ids: list[int]) -> list[StreamEvent]:
    """The user's events among `ids` (published ones), in id order; another user's are never read."""
    stmt = sa.select(StreamEvent).where(StreamEvent.user_id == user_id, StreamEvent.id.in_(ids))
    return list(session.scalars(stmt.order_by(StreamEvent.id)))


def prune(*, session: UnitOfWork, now: datetime, retention: timedelta) -> int:
    """Delete the events past the replay window (a client that old is told to reload)."""
    result = session.execute(sa.delete(StreamEvent).where(StreamEvent.created_at < now - retention))
    return result.rowcount or 0


def erase_lead(*, session: UnitOfWork, clinic_id: int, lead_id: int, notification_ids) -> None:
    """A lead's erasure reaches the streams' copies of it and of the notifications about it."""
    about = sa.or_(StreamEvent.lead_id == lead_id, StreamEvent.notification_id.in_(list(notification_ids)))
    session.execute(sa.delete(StreamEvent).where(StreamEvent.clinic_id == clinic_id, about))


def shaped(event: StreamEvent, actor: Actor) -> dict:
    """The event as its reader may see it: the PHI policy of the reader's role, at any depth."""
    return {
        "id": event.id,
        "type": event.type,
        "at": event.created_at.isoformat(),
        **phi_policy.withhold_nested(dict(event.data), actor),
    }
