"""An invited user's password-setup link, by email through the notifications ledger (USER_INVITED
of app/handlers.py, auth's invitation hook). Always email: the invitee has no preferences yet and
no other address."""

from __future__ import annotations

from datetime import datetime

from app.domains.outbound import outgoing
from app.domains.outbound.models import Channel
from app.platform.db import UnitOfWork

KIND = "invitation"


def send_invitation(
    *, session: UnitOfWork, user, clinic, link: str, expires_at: datetime, now: datetime
) -> None:
    outgoing.send(
        session=session,
        message=outgoing.OutgoingMessage(
            clinic_id=user.clinic_id,
            channel=Channel.EMAIL,
            to_address=user.email,
            template="invitation",
            context={
                "user_name": user.name,
                "link": link,
                "expires_at": expires_at.strftime("%Y-%m-%d %H:%M UTC"),
            },
            # One email per link: a new link (a later invitation) is a new message.
            dedupe_key=f"invitation:{user.id}:{now.isoformat()}",
            kind=KIND,
            recipient_user_id=user.id,
        ),
        now=now,
    )
