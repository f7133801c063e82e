"""Resolving a lead's conversation (nothing more to answer: it leaves the inbox's Open view) and
reopening it. A family's new message reopens it by itself (service.record_inbound)."""

from __future__ import annotations

from datetime import datetime

from app.domains.conversations import threads
from app.domains.conversations.models import RESOLVED
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict
from app.platform.roles import Actor


def set_status(*, session: UnitOfWork, actor: Actor, lead_id: int, status: str, now: datetime) -> dict:
    """The lead's conversation marked `status` (open or resolved; the same again changes nothing).
    Another clinic's lead is a 404; a lead with no conversation yet a 409 (nothing to resolve)."""
    conversation = threads.lead_conversation(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    if conversation is None:
        raise Conflict("the lead has no conversation yet: nothing to resolve or reopen")
    before = conversation.status
    if before != status:
        conversation.status = status
        conversation.updated_at = now
        audit.record(
            session,
            audit.AuditEntry(
                clinic_id=actor.clinic_id,
                actor=actor.ref,
                action=f"lead.conversation.{'resolved' if status == RESOLVED else 'reopened'}",
                subject_type="lead",
                subject_id=lead_id,
                before={"status": before},
                after={"status": status},
                at=now,
            ),
        )
        session.flush()
    return {"conversation_id": conversation.id, "lead_id": lead_id, "status": conversation.status}
