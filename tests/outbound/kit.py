"""Helpers of the notification tests: settings for the fake providers, rows, waiting on statuses."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.auth.senders import identity
from app.domains.outbound import outgoing
from app.domains.outbound.models import Notification
from app.platform import clock

FAST_DELIVERY = {
    "notification_retry_base_seconds": 0.2,
    "notification_retry_max_seconds": 1.0,
    "notification_max_attempts": 6,
    "notification_send_timeout": 2.0,
    "notification_stuck_seconds": 7.0,
    "schedule_horizon_seconds": 5.0,
    "promote_interval": 1.0,
    "redispatch_grace_seconds": 2.0,
    "redispatch_interval": 1.0,
}


def use(monkeypatch, settings, **values) -> None:
    for name, value in values.items():
        monkeypatch.setattr(settings, name, value)


def smtp_settings(port: int) -> dict:
    return {"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}


def sms_settings(url: str, token: str = "secret-token") -> dict:
    return {
        "sms_backend": "http",
        "sms_api_url": url,
        "sms_messaging_api_url": f"{url}/v1",  # the stand-in answers the Messaging Services API too
        "sms_account": "AC123",
        "sms_token": token,
        "sms_from": "+15550000000",
    }


def assign_sms_senders(tenant, *senders: str) -> None:
    """The platform operator assigns each SMS number or Messaging Service to the tenant's clinic (as
    POST /api/platform/clinics/<id>/sms-senders does): its admin may then choose it."""
    app = tenant.app
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        for sender in senders:
            identity.assign_sms_sender(
                session=session,
                clinic_id=tenant.id,
                sender=sender,
                config=app.config["SETTINGS"],
                now=clock.now(),
            )


def as_env(values: dict) -> dict[str, str]:
    names = {
        "email_backend": "EMAIL_BACKEND",
        "smtp_host": "SMTP_HOST",
        "smtp_port": "SMTP_PORT",
        "smtp_starttls": "SMTP_STARTTLS",
        "sms_backend": "SMS_BACKEND",
        "sms_api_url": "SMS_API_URL",
        "sms_messaging_api_url": "SMS_MESSAGING_API_URL",
        "sms_account": "SMS_ACCOUNT",
        "sms_token": "SMS_TOKEN",
        "sms_from": "SMS_FROM",
    }
    return {names.get(k, f"FOLLOWUP_{k.upper()}"): str(v) for k, v in values.items()}


def queue_emails(
    app, tenant, n: int, *, prefix: str = "m", to=lambda i: f"patient{i}@example.com"
) -> list[int]:
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        rows = [
            outgoing.send(
                session=session,
                message=outgoing.OutgoingMessage(
                    clinic_id=tenant.id,
                    channel="email",
                    to_address=to(i),
                    template="lead_message",
                    context={"subject": f"Hello {i}", "body": "We would love to see you."},
                    dedupe_key=f"{prefix}:{i}",
                ),
                now=clock.now(),
            )
            for i in range(n)
        ]
        session.flush()
        return [r.id for r in rows]


def queue_sms(app, tenant, n: int, *, prefix: str = "s") -> list[int]:
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        rows = [
            outgoing.send(
                session=session,
                message=outgoing.OutgoingMessage(
                    clinic_id=tenant.id,
                    channel="sms",
                    to_address=f"+1555123{i:04d}",
                    template="lead_message",
                    context={"body": f"Your consultation is tomorrow ({i})"},
                    dedupe_key=f"{prefix}:{i}",
                ),
                now=clock.now(),
            )
            for i in range(n)
        ]
        session.flush()
        return [r.id for r in rows]


def statuses(db, ids) -> dict[int, str]:
    with db.unit_of_work() as session:
        return dict(
            session.execute(
                sa.select(Notification.id, Notification.status).where(Notification.id.in_(ids))
            ).all()
        )


def rows(db, ids) -> list[Notification]:
    with db.unit_of_work() as session:
        return list(
            session.scalars(sa.select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id))
        )


def all_in(db, ids, wanted: set[str]):
    found = statuses(db, ids)
    return len(found) == len(ids) and set(found.values()) <= wanted
