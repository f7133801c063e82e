"""Connecting a clinic's Instagram professional account, and finding what a DM or a send needs.

The token is a credential that speaks as the clinic on Instagram: stored encrypted (the PHI key),
never answered (only its last four characters, masked), never logged or audited. An account id
routes Meta's webhooks, so it belongs to one clinic only: connecting another clinic's is a 409.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.auth.instagram import graph
from app.domains.auth.instagram.models import InstagramAccount, InstagramContact
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound, ValidationFailed
from app.platform.roles import Actor

# Meta's messaging windows on Instagram, from the family's last message: automated messages within
# 24 hours; a person's reply within 7 days, with the human-agent tag after the first 24 hours.
AUTOMATED_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
HUMAN_AGENT_TAG = "HUMAN_AGENT"

# last_used_at is written at most this often: a busy account must not write its row on every send.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _audit(session: UnitOfWork, actor: Actor, action: str, row: InstagramAccount, now: datetime) -> None:
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action=action,
            subject_type="instagram_account",
            subject_id=row.id,
            after={"account_id": row.account_id},  # never the token
            at=now,
        ),
    )


def get_account(*, session: UnitOfWork, clinic_id: int) -> InstagramAccount:
    """The clinic's connected account; not found when it has none."""
    row = account_of(session, clinic_id)
    if row is None:
        raise NotFound("no Instagram account is connected")
    return row


def account_of(session: UnitOfWork, clinic_id: int) -> InstagramAccount | None:
    return session.scalar(sa.select(InstagramAccount).where(InstagramAccount.clinic_id == clinic_id))


def account_by_id(session: UnitOfWork, account_id: str) -> InstagramAccount | None:
    """The connected account Meta's event was addressed to (whichever clinic's it is)."""
    return session.scalar(sa.select(InstagramAccount).where(InstagramAccount.account_id == account_id))


def connect(
    *, session: UnitOfWork, actor: Actor, account_id: str, access_token: str, now: datetime, settings
):
    """Connect (or replace) the clinic's account with a token Meta says is that account's: else a 422
    naming access_token (before anything else is told, such as whether another clinic has it);
    Meta unable to say, GraphUnavailable (503). A 409 naming the account id if another clinic has it."""
    owner = graph.token_owner(settings, access_token)
    if owner != account_id:
        why = (
            "Meta does not accept this token"
            if owner is None
            else f"this token is not account {account_id}'s"
        )
        raise ValidationFailed("access_token", why)
    taken = account_by_id(session, account_id)
    if taken is not None and taken.clinic_id != actor.clinic_id:
        raise _taken(account_id)
    row = account_of(session, actor.clinic_id)
    if row is None:
        row = InstagramAccount(clinic_id=actor.clinic_id)
        session.add(row)
    row.account_id, row.access_token, row.token_hint = account_id, access_token, access_token[-4:]
    row.connected_at, row.connected_by, row.last_used_at = now, actor.ref, None
    try:
        with session.begin_nested():  # two clinics connecting one account at once: one wins
            session.flush()
    except IntegrityError:
        raise _taken(account_id) from None
    _audit(session, actor, "instagram.connected", row, now)
    return row


def _taken(account_id: str) -> Conflict:
    return Conflict(
        f"Instagram account {account_id} is connected to another clinic",
        errors={"account_id": [f"{account_id} is connected to another clinic"]},
    )


def disconnect(*, session: UnitOfWork, actor: Actor, now: datetime) -> None:
    """Forget the clinic's account and its token: DMs to it are ignored, Instagram sends fail."""
    row = get_account(session=session, clinic_id=actor.clinic_id)
    _audit(session, actor, "instagram.disconnected", row, now)
    session.delete(row)
    session.flush()


def mark_used(session: UnitOfWork, row: InstagramAccount, now: datetime) -> None:
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now


def contact_by_igsid(session: UnitOfWork, clinic_id: int, igsid: str) -> InstagramContact | None:
    return session.scalar(
        sa.select(InstagramContact).where(
            InstagramContact.clinic_id == clinic_id, InstagramContact.igsid == igsid
        )
    )


def contact_of_lead(session: UnitOfWork, lead_id: int) -> InstagramContact | None:
    """The lead's Instagram user (the latest one, should two have become one lead)."""
    return session.scalar(
        sa.select(InstagramContact)
        .where(InstagramContact.lead_id == lead_id)
        .order_by(InstagramContact.id.desc())
        .limit(1)
    )


def lead_contact(*, session: UnitOfWork, clinic_id: int, lead_id: int) -> dict:
    """The lead's Instagram user (handle, scoped id) and until when Meta's windows let the clinic
    write: automated messages, then a person's reply. Not found: the lead never wrote on Instagram
    (or is another clinic's)."""
    contact = session.scalar(
        sa.select(InstagramContact)
        .where(InstagramContact.clinic_id == clinic_id, InstagramContact.lead_id == lead_id)
        .order_by(InstagramContact.id.desc())
        .limit(1)
    )
    if contact is None:
        raise NotFound(f"lead {lead_id} has no Instagram conversation")
    last = contact.last_inbound_at
    return {
        "handle": contact.handle,
        "igsid": contact.igsid,
        "last_inbound_at": last,
        "automated_until": last + AUTOMATED_WINDOW if last else None,
        "reply_until": last + HUMAN_AGENT_WINDOW if last else None,
    }


def last_inbound_at(session: UnitOfWork, lead_id: int) -> datetime | None:
    """When the lead last wrote on Instagram: Meta's windows run from it."""
    contact = contact_of_lead(session, lead_id)
    return None if contact is None else contact.last_inbound_at
