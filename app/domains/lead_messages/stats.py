"""Per template: how many messages were made from it (usage) and how many of those got a reply.

A reply, defined once here: an INBOUND email or SMS from the lead after a message from the
template and before the next OUTBOUND call, email or SMS to that lead (by anyone). Each message
counts at most one reply, and an answer to a later message is that message's, not the template's.
No time window: the next outreach ends the message's chance, whenever it comes. (The analytics
report's `replied` flag on automated messages is a different fact: any inbound within 72 hours.)
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.domains.activities import rules as activity_rules
from app.domains.activities.models import ActivityDirection, LeadActivity
from app.domains.lead_messages.models import MessageTemplateUse
from app.platform.db import UnitOfWork


def replied_clause(use=MessageTemplateUse) -> sa.ColumnElement[bool]:
    """SQL: the message `use` got a reply (the definition above)."""
    reply, later = aliased(LeadActivity), aliased(LeadActivity)
    outreach_between = (
        sa.select(later.id)
        .where(
            later.lead_id == use.lead_id,
            later.direction == str(ActivityDirection.OUTBOUND),
            later.type.in_(sorted(str(t) for t in activity_rules.CHANNEL_TYPES)),
            later.occurred_at > use.sent_at,
            later.occurred_at < reply.occurred_at,
        )
        .exists()
    )
    return (
        sa.select(reply.id)
        .where(
            reply.lead_id == use.lead_id,
            reply.direction == str(ActivityDirection.INBOUND),
            reply.type.in_(sorted(str(t) for t in activity_rules.MESSAGE_TYPES)),
            reply.occurred_at > use.sent_at,
            ~outreach_between,
        )
        .exists()
    )


def counts(*, session: UnitOfWork, clinic_id: int, template_ids: list[int]) -> dict[int, dict[str, int]]:
    """{template_id: {"usage_count": n, "reply_count": m}} for the given templates of the clinic."""
    if not template_ids:
        return {}
    use = MessageTemplateUse
    rows = session.execute(
        sa.select(
            use.template_id,
            sa.func.count(),
            sa.func.count(sa.case((replied_clause(use), use.id))),
        )
        .where(use.clinic_id == clinic_id, use.template_id.in_(template_ids))
        .group_by(use.template_id)
    )
    found = {tid: {"usage_count": n, "reply_count": r} for tid, n, r in rows}
    return {tid: found.get(tid, {"usage_count": 0, "reply_count": 0}) for tid in template_ids}
