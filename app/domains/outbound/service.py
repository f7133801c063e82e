"""The notifications domain's face: what other domains call to reach a lead or a staff member.

Other domains import this module (and its models and rules) only; the rest of app/domains/outbound
is how it is done: rendering (rendering.py), the ledger's delivery jobs (outgoing.py,
worker/batches.py, worker/attempts.py), the providers (providers/channels.py, providers/smtp.py),
preferences and the in-app inbox.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import sqlalchemy as sa

from app.domains.auth import service as auth
from app.domains.auth.models import Clinic, User
from app.domains.outbound import outgoing, preferences, recipients
from app.domains.outbound.admin import RETRYABLE, bulk_retryable, retry_many, retry_notification
from app.domains.outbound.inbox import StaffNotice, notify_in_app
from app.domains.outbound.models import Channel, Notification
from app.domains.outbound.outgoing import (
    AS_WRITTEN,
    MessageToLead,
    OutgoingMessage,
    queue_many,
    send,
    send_to_lead,
)
from app.domains.outbound.queries import holds_of
from app.domains.outbound.receipts import (
    email_bounced,
    email_delivered,
    email_notification,
    status_changed,
)
from app.domains.outbound.rules import DEFAULT_SUMMARY_FREQUENCY, SUMMARY_FREQUENCIES
from app.domains.outbound.worker.sending import Hold, SendHooks, clinic_settings, stored_context
from app.platform import phi
from app.platform.db import UnitOfWork
from app.platform.db.protected import keys_of
from app.platform.roles import Role
from app.platform.scheduling.memo import Memo

__all__ = [
    "AS_WRITTEN",
    "DEFAULT_SUMMARY_FREQUENCY",
    "RETRYABLE",
    "SUMMARY_FREQUENCIES",
    "Hold",
    "MessageToLead",
    "OutgoingMessage",
    "SendHooks",
    "StaffNotice",
    "bulk_retryable",
    "clinic_settings",
    "email_bounced",
    "email_delivered",
    "email_notification",
    "holds_of",
    "notify_admins",
    "notify_in_app",
    "notify_staff",
    "queue_many",
    "quiet_until_for",
    "recipient_index",
    "recipient_indexes",
    "retry_many",
    "retry_notification",
    "send",
    "send_to_lead",
    "staff_wants",
    "status_changed",
    "stored_context",
]


def notify_staff(
    *,
    session: UnitOfWork,
    clinic_id: int,
    user_id: int | None,
    notice: StaffNotice,
    now: datetime,
    memo: Memo | None = None,
) -> Notification | None:
    """Tell a staff member by their preferences: in-app always (silent, at once); email/SMS copies on the
    channels they chose for the notice's kind, deferred to the end of their quiet hours. Returns the
    in-app row. `memo`: the caller's transaction's, if it has one (scheduling.Memo: a job's), which
    keeps who has no preferences row for the transaction's other notices (preferences.py)."""
    in_app = notify_in_app(
        session=session,
        clinic_id=clinic_id,
        user_id=user_id,
        notice=notice,
        now=now,
        known_new=notice.known_new,
    )
    if user_id is None:
        return in_app
    prefs = preferences.preferences_of(session, user_id, memo)  # read once: channels, quiet hours, number
    copies = [c for c in preferences.channels_in(prefs, notice.kind) if c in (Channel.EMAIL, Channel.SMS)]
    if not copies:
        return in_app
    user = session.get(User, user_id)
    not_before = preferences.after_quiet_hours(session, user_id, prefs, now)
    context = {
        "title": notice.title,
        "body": notice.body,
        "link": notice.link,
        "user_name": user.name,
        "origin": notice.origin,
    }
    for channel in copies:
        address = user.email if channel == Channel.EMAIL else (prefs.sms_number if prefs else None)
        if not address:
            continue
        message = outgoing.OutgoingMessage(
            clinic_id=clinic_id,
            channel=channel,
            to_address=address,
            template="staff_alert",
            context=context,
            dedupe_key=f"{notice.dedupe_key}:{channel}",
            kind=notice.kind,
            recipient_user_id=user_id,
            not_before=not_before,
        )
        outgoing.send(session=session, message=message, now=now)
    return in_app


class ClinicAdmins(dict):
    """A transaction's memo (scheduling.Memo) of each clinic's admins: a timers batch escalates many
    of a clinic's leads to the same admins, read once; the rows held here keep them in the identity
    map for `notify_staff`."""

    def of(self, session: UnitOfWork, clinic_id: int) -> list[User]:
        if clinic_id not in self:
            self[clinic_id] = auth.list_users(session=session, clinic_id=clinic_id, role=Role.CLINIC_ADMIN)
        return self[clinic_id]


def notify_admins(
    *, session: UnitOfWork, clinic_id: int, notice: StaffNotice, now: datetime, memo: Memo | None = None
) -> None:
    """Tell every active clinic admin (an escalation), each by their preferences. Each admin's copy is
    keyed by the notice's `dedupe_key` and the admin, so a redelivered job tells nobody twice.
    `memo`: the caller's job's, which keeps the clinic's admins for its transaction's other notices."""
    admins = (memo.part(ClinicAdmins) if memo is not None else ClinicAdmins()).of(session, clinic_id)
    for admin in admins:
        if admin.active:
            own_copy = dataclasses.replace(notice, dedupe_key=f"{notice.dedupe_key}:{admin.id}")
            notify_staff(
                session=session, clinic_id=clinic_id, user_id=admin.id, notice=own_copy, now=now, memo=memo
            )


def staff_wants(*, session: UnitOfWork, user_id: int, kind: str, channel: str) -> bool:
    """Whether the user receives `kind` on `channel` (e.g. the digest by email)."""
    return channel in preferences.channels_of(session, user_id, kind)


def quiet_until_for(*, session: UnitOfWork, user_id: int, now: datetime) -> datetime | None:
    """The end of the user's quiet hours if `now` falls in them, else None."""
    return preferences.after_quiet_hours(session, user_id, preferences.preferences_of(session, user_id), now)


# The blind index a message's recipient is written with (key rotation rebuilds it with the address).
recipient_index = recipients.index_of


def recipient_indexes(*, session: UnitOfWork, clinic_id: int, text: str) -> list[str]:
    """The `Notification.to_address_index` values a search for the recipient `text` matches: an
    exact, normalised email or phone number (read in the clinic's region)."""
    clinic = session.get(Clinic, clinic_id)
    region = clinic.default_phone_region if clinic is not None else "US"
    return recipients.indexes_to_find(keys=keys_of(session), clinic_id=clinic_id, text=text, region=region)


def clinic_that_texted(
    *, session: UnitOfWork, channel: str, phone: str, sender: str, since: datetime
) -> int | None:
    """The clinic whose newest message to a lead at `phone` on `channel` went from `sender` (the
    platform's shared one) after `since`. The recipient's blind index is keyed per clinic: the
    phone's is made for every clinic and matched in one query."""
    keys, value = keys_of(session), recipients.normalized(phone)
    pairs = [
        (clinic_id, index)
        for clinic_id in session.scalars(sa.select(Clinic.id))
        for index in phi.blind_indexes(
            keys=keys, purpose=recipients.PURPOSE, scope=str(clinic_id), value=value
        )
    ]
    if not pairs:
        return None
    # An outcome left unknown has no sent_at, yet may have reached the phone.
    went_at = sa.func.coalesce(Notification.sent_at, Notification.created_at)
    return session.scalar(
        sa.select(Notification.clinic_id)
        .where(
            sa.tuple_(Notification.clinic_id, Notification.to_address_index).in_(pairs),
            Notification.channel == channel,
            Notification.sender == sender,
            Notification.lead_id.is_not(None),
            went_at >= since,
        )
        .order_by(went_at.desc(), Notification.id.desc())
        .limit(1)
    )
