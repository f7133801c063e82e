"""Resolving a lead's conversation (nothing more to answer: it leaves the inbox's Open view),
snoozing it (put away until a chosen time: out of the Open view until then) and reopening it (which
also ends a snooze). A family's new message reopens it, and ends a snooze, by itself
(service.record_inbound)."""

from __future__ import annotations

from datetime import datetime

from app.domains.conversations import threads
from app.domains.conversations.models import OPEN, RESOLVED, Conversation
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, ValidationFailed
from app.platform.roles import Actor

UNTIL = "until"  # the snooze's field, as the API and the console name it


def _conversation(session: UnitOfWork, actor: Actor, lead_id: int) -> Conversation:
    conversation = threads.lead_conversation(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    if conversation is None:
        raise Conflict("the lead has no conversation yet: nothing to resolve, snooze or reopen")
    return conversation


def _answer(conversation: Conversation, lead_id: int, now: datetime) -> dict:
    return {
        "conversation_id": conversation.id,
        "lead_id": lead_id,
        "status": conversation.status,
        "snoozed_until": conversation.snoozed_at(now),
    }


def _audit(session, actor: Actor, lead_id: int, change: tuple[str, dict, dict], now: datetime) -> None:
    action, before, after = change
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action=f"lead.conversation.{action}",
            subject_type="lead",
            subject_id=lead_id,
            before=before,
            after=after,
            at=now,
        ),
    )


def set_status(*, session: UnitOfWork, actor: Actor, lead_id: int, status: str, now: datetime) -> dict:
    """The lead's conversation marked `status` (open or resolved; the same again changes nothing),
    no longer snoozed. Another clinic's lead is a 404; a lead with no conversation yet a 409."""
    conversation = _conversation(session, actor, lead_id)
    before, snoozed = conversation.status, conversation.snoozed_at(now)
    if before != status or snoozed is not None:
        conversation.status, conversation.snoozed_until = status, None
        conversation.updated_at = now
        action = "resolved" if status == RESOLVED else "reopened"
        was = {"status": before, **({"snoozed_until": snoozed.isoformat()} if snoozed else {})}
        _audit(session, actor, lead_id, (action, was, {"status": status}), now)
        session.flush()
    return _answer(conversation, lead_id, now)


def snooze(*, session: UnitOfWork, actor: Actor, lead_id: int, until: datetime, now: datetime) -> dict:
    """The lead's conversation put away until `until` (a later time than `now`, else a 422 naming
    `until`): open, out of the inbox's Open view until then or the family's next message. Another
    clinic's lead is a 404; a lead with no conversation yet a 409."""
    conversation = _conversation(session, actor, lead_id)
    if until <= now:
        raise ValidationFailed(UNTIL, "a snooze ends later than now: choose a time ahead")
    before = {"status": conversation.status}
    conversation.status, conversation.snoozed_until = OPEN, until
    conversation.updated_at = now
    _audit(
        session,
        actor,
        lead_id,
        ("snoozed", before, {"status": OPEN, "snoozed_until": until.isoformat()}),
        now,
    )
    session.flush()
    return _answer(conversation, lead_id, now)
