"""One-click unsubscribe (RFC 8058): the signed URL every email to a lead carries in List-Unsubscribe.

The mailbox provider POSTs `List-Unsubscribe=One-Click` to it with no login and no cookies; the
token (app/domains/auth/signing.py) names the lead. It opts the lead out of email, audited like any change
of the lead, and a second POST changes nothing. The same token makes the header's mailto
(unsubscribe+<token>@EMAIL_INBOUND_DOMAIN): an email to it, posted by SendGrid's Inbound Parse
(app/domains/intake/inbound/email_replies.py), opts the lead out the same way.
"""

from __future__ import annotations

from datetime import datetime

from app.domains.auth import signing
from app.domains.leads import consent, rules
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound

ACTOR = "unsubscribe_link"  # the lead's own choice, through the link in its email
MAILTO_ACTOR = "unsubscribe_email"  # through the List-Unsubscribe mailto: an email to that address


def lead_of(*, session: UnitOfWork, secret: str | None, token: str) -> Lead:
    lead_id = signing.lead_of_unsubscribe_token(secret, token) if secret else None
    lead = session.get(Lead, lead_id) if lead_id is not None else None
    if lead is None or lead.deleted_at is not None:
        raise NotFound("this unsubscribe link is not valid")
    return lead


def unsubscribe(
    *, session: UnitOfWork, secret: str | None, token: str, now: datetime, actor_ref: str = ACTOR
) -> bool:
    """Opt the token's lead out of email; whether this call changed it."""
    lead = lead_of(session=session, secret=secret, token=token)
    return consent.opted_out(
        session=session,
        lead=lead,
        field="email_opt_out",
        source=rules.UNSUBSCRIBE,
        actor_ref=actor_ref,
        now=now,
    )
