"""Helpers of the consultation tests: a clinic with local SMTP and Twilio-like servers, bookings over
HTTP, the ledger run at a time the test chooses (the clock passed in), signed appointment events."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from app.domains.automation.models import AutomationRule, AutomationStep
from app.domains.consultations.models import Consultation
from app.domains.outbound.models import Notification
from app.domains.tasks.models import LeadTask
from app.platform import clock
from app.platform.app_db import get_db
from app.platform.events.consumers import PROCESS_KINDS
from app.platform.scheduling.models import ScheduledJob
from app.platform.scheduling.runner import run_job
from tests.automation.outreachkit import configure_clinic, lead_with
from tests.leadkit import post_signed
from tests.outbound.fakes import sms_provider, smtp_server
from tests.outbound.kit import FAST_DELIVERY, sms_settings, smtp_settings, use

TOKEN = "secret-token"
CLINIC_NUMBER = "+14155550100"
PHONE, E164 = "(415) 555-2671", "+14155552671"
OPEN = ("pending", "dispatched")


@contextmanager
def providers(app, monkeypatch):
    """A local SMTP server and a Twilio-like SMS provider the engine sends through."""
    with smtp_server() as (mailbox, port), sms_provider(token=TOKEN) as (texts, url):
        settings = app.config["SETTINGS"]
        use(monkeypatch, settings, **FAST_DELIVERY, **sms_settings(url, token=TOKEN), **smtp_settings(port))
        texts.numbers.add(CLINIC_NUMBER)
        yield mailbox, texts


def clinic_and_lead(client, tenant, **settings) -> dict:
    """A clinic open all day where it is now midday, sending texts from its number; a lead with a
    phone and an email."""
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER, **settings)
    return lead_with(client, tenant, phone=PHONE)


def book(client, tenant, lead_id: int, starts_at: datetime, expect: int = 201, **fields) -> dict:
    body = {"starts_at": starts_at.isoformat(), **fields}
    resp = client.post(f"/api/leads/{lead_id}/consultations", json=body, headers=tenant.headers("front_desk"))
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def act(client, tenant, consultation_id: int, action: str, expect: int = 200, **body) -> dict:
    resp = client.post(
        f"/api/consultations/{consultation_id}/{action}", json=body, headers=tenant.headers("front_desk")
    )
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def texts_to(provider, number: str = E164) -> list[dict]:
    with provider.lock:
        return [m for m in provider.messages if m["To"] == number]


def mails_with(mailbox, words: str) -> list[bytes]:
    with mailbox.lock:
        return [raw for raw in mailbox.raw_messages if words.encode() in raw]


def due_jobs(db, now: datetime) -> list[ScheduledJob]:
    with db.unit_of_work() as session:
        stmt = sa.select(ScheduledJob).where(ScheduledJob.status.in_(OPEN), ScheduledJob.due_at <= now)
        return list(session.scalars(stmt.order_by(ScheduledJob.due_at, ScheduledJob.id)))


def run_due(app, db, now: datetime) -> int:
    """Run every ledger job due by `now`, as a worker would at that time, until none is left (what
    a job writes due by then runs too); returns how many ran."""
    ran = 0
    for _ in range(20):
        jobs = due_jobs(db, now)
        if not jobs:
            return ran
        with app.app_context():
            for job in jobs:
                run_job(db=get_db(), job_id=job.id, now=now)
                ran += 1
    raise AssertionError("jobs kept coming due")


def events_done(db) -> bool:
    with db.unit_of_work() as session:
        return not session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledJob)
            .where(ScheduledJob.kind.in_(PROCESS_KINDS), ScheduledJob.status.in_(OPEN))
        )


def consultation(db, consultation_id: int) -> Consultation:
    with db.unit_of_work() as session:
        return session.get(Consultation, consultation_id)


def rule_steps(db, lead_id: int, default_key: str) -> list[AutomationStep]:
    with db.unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(AutomationStep)
                .join(AutomationRule, AutomationRule.id == AutomationStep.rule_id)
                .where(AutomationStep.lead_id == lead_id, AutomationRule.default_key == default_key)
                .order_by(AutomationStep.run_at, AutomationStep.id)
            )
        )


def tasks_of(db, lead_id: int) -> list[LeadTask]:
    with db.unit_of_work() as session:
        return list(
            session.scalars(sa.select(LeadTask).where(LeadTask.lead_id == lead_id).order_by(LeadTask.id))
        )


def sms_to_lead(db, lead_id: int) -> list[Notification]:
    with db.unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(Notification)
                .where(Notification.lead_id == lead_id, Notification.channel == "sms")
                .order_by(Notification.id)
            )
        )


def post_appointment(client, clinic, event: dict, **sign_kwargs):
    return post_signed(client, clinic, "/api/capture/appointment", event, "appointment", **sign_kwargs)


def attend(client, tenant, lead_id: int) -> dict:
    """A consultation booked for now and checked in at once: the consultation as the check-in left it."""
    booked = book(client, tenant, lead_id, clock.now())
    return act(client, tenant, booked["id"], "check-in")
