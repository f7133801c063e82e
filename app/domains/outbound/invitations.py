"""An invited user's password-setup link, by email through the notifications ledger (USER_INVITED
of app/handlers.py, auth's invitation hook). Always email: the invitee has no preferences yet and
no other address."""

from __future__ import annotations

from datetime import datetime

from app.domains.outbound import outgoing
from app.domains.outbound.models import Channel
from app.platform.db import UnitOfWork

KIND = "invitation"
RESET = "reset"  # a forgotten password's link (auth's onboarding.RESET)


def send_invitation(*, session: UnitOfWork, user, clinic, setup: dict, now: datetime) -> None:
    """The user's one-time link to set a password (`setup`: its link, expiry and purpose): an
    invitation's words, or a forgotten password's."""
    outgoing.send(
        session=session,
        message=outgoing.OutgoingMessage(
            clinic_id=user.clinic_id,
            channel=Channel.EMAIL,
            to_address=user.email,
            template="password_reset" if setup["purpose"] == RESET else "invitation",
            context={
                "user_name": user.name,
                "link": setup["link"],
                "expires_at": setup["expires_at"].strftime("%Y-%m-%d %H:%M UTC"),
            },
            # One email per link: a later link is a new message.
            dedupe_key=f"{setup['purpose']}:{user.id}:{now.isoformat()}",
            kind=KIND,
            recipient_user_id=user.id,
        ),
        now=now,
    )
