"""The clinic admins' daily / weekly analytics summary email (issue 17 item 10).

A real in-process worker runs `analytics.send_summaries` from Redis (the moment passed as `now`)
and delivers through the notification ledger to a real local SMTP server (aiosmtpd). Expected
figures are counted here from the planted leads.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.domains.analytics import summary
from app.domains.auth.models import User
from app.domains.leads.models import Lead, LeadSource
from app.domains.ops.models import Heartbeat
from app.domains.outbound.models import Notification
from tests.leadkit import add_user
from tests.outbound.fakes import smtp_server
from tests.outbound.kit import FAST_DELIVERY, smtp_settings, use
from tests.workers import thread_worker, wait_for

CHICAGO = ZoneInfo("America/Chicago")
MONDAY_8_10 = datetime(2026, 11, 16, 8, 10, tzinfo=CHICAGO)  # a Monday, past the 08:00 digest hour


def local(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=CHICAGO)


@pytest.fixture
def mailbox(app, monkeypatch):
    with smtp_server() as (server, port):
        use(monkeypatch, app.config["SETTINGS"], **FAST_DELIVERY, **smtp_settings(port))
        yield server


def plant(app, tenant, captured: list[datetime], conversions: list[tuple]) -> None:
    """Leads captured at the given moments; conversions as (captured, converted, value)."""
    db = app.extensions["followup.db"]
    with db.unit_of_work() as session:
        source = session.scalars(sa.select(LeadSource.id).where(LeadSource.clinic_id == tenant.id)).first()
        for created, converted, value in [*((c, None, None) for c in captured), *conversions]:
            session.add(
                Lead(
                    clinic_id=tenant.id, status="CONVERTED" if converted else "ACTIVE",
                    pipeline_stage="treatment_started" if converted else "new_lead", stage_entered_at=created,
                    first_name="Jane", last_name="Doe", preferred_contact="PHONE",
                    patient_relationship="SELF", source_id=source, treatment_interest=[],
                    converted_at=converted, treatment_value=value,
                    created_at=created, updated_at=created, created_by="test", updated_by="test",
                )
            )  # fmt: skip


def run_summaries(celery, db, now: datetime, marker: str) -> None:
    """Send the sweep for `now` twice (as two beats would), then wait until both ran: the one-thread
    worker takes the realtime queue in order, so the heartbeat sent after them runs after them."""
    for _ in range(2):
        celery.send_task("analytics.send_summaries", kwargs={"now": now.isoformat()}, queue="realtime")
    celery.send_task("ops.heartbeat", kwargs={"name": marker}, queue="realtime")

    def marked():
        with db.unit_of_work() as session:
            return session.scalar(sa.select(Heartbeat).where(Heartbeat.name == marker))

    wait_for(marked, timeout=60)


def summaries(db) -> list[str]:
    with db.unit_of_work() as session:
        return sorted(
            session.scalars(sa.select(Notification.dedupe_key).where(Notification.kind == summary.SUMMARY))
        )


def body_of(message) -> str:
    [text] = [p for p in message.get_payload() if p.get_content_type() == "text/plain"]
    return text.get_payload(decode=True).decode()


def test_each_admin_gets_one_summary_per_period_at_the_clinics_local_hour(
    app, db, client, make_tenant, mailbox
):
    clinic = make_tenant("Chicago Ortho", timezone="America/Chicago")
    faraway = make_tenant("Tokyo Ortho", timezone="Asia/Tokyo")  # 23:10 there: nothing due
    daily = clinic.users["clinic_admin"]  # no preference: daily
    admins = {}
    for frequency in ("weekly", "off"):
        user_id = add_user(app, clinic, role="clinic_admin")
        with db.unit_of_work() as session:
            email = session.get(User, user_id).email
        admins[frequency] = clinic.users[f"{frequency} admin"] = SimpleNamespace(
            id=user_id, clinic_id=clinic.id, email=email
        )
        resp = client.put(
            "/api/me/notification-preferences",
            json={"summary_frequency": frequency},
            headers=clinic.headers(f"{frequency} admin"),
        )
        assert resp.status_code == 200 and resp.get_json()["summary_frequency"] == frequency
    weekly_id = admins["weekly"].id
    # Sunday Nov 15 (the daily period): 3 leads, one conversion worth 5,000.00 captured 10 days
    # before; Saturday Nov 14 (the day before): 2 leads. The week of Nov 9..15: those and 1 more on
    # Nov 9; the week before (Nov 2..8): 4 leads. A lead at 23:30 local on Nov 15 is 05:30 UTC Nov 16:
    # local days count, not UTC ones. The Tokyo clinic's leads that Sunday never count here.
    sunday = [local(15, 1), local(15, 9), local(15, 23) + timedelta(minutes=30)]
    saturday = [local(14, 10), local(14, 11)]
    week_before = [local(2), local(4), local(6), local(8, 20)]
    plant(
        app, clinic, [*sunday, *saturday, local(9, 9), *week_before],
        [(local(5, 14), local(5, 14) + timedelta(days=10), Decimal("5000.00"))],
    )  # fmt: skip
    plant(app, faraway, [local(15, 10)] * 7, [(local(1), local(15, 10), Decimal("777.00"))])
    weekly_email, off_email = admins["weekly"].email, admins["off"].email

    def mail_to(address):
        return [m for m in list(mailbox.messages) if m["To"] == address]

    with thread_worker(app, concurrency=1) as celery:
        run_summaries(celery, db, MONDAY_8_10, "monday")
        wait_for(lambda: mail_to(daily.email) and mail_to(weekly_email), timeout=60)
        run_summaries(celery, db, MONDAY_8_10 + timedelta(minutes=30), "monday-again")  # a later beat
        # Tuesday: a new day for the daily admin; not a Monday, so nothing for the weekly one.
        run_summaries(celery, db, MONDAY_8_10 + timedelta(days=1), "tuesday")
        wait_for(lambda: len(mail_to(daily.email)) == 2, timeout=60)
        wait_for(lambda: all(n.status == "sent" for n in _summary_rows(db)), timeout=60)

    assert summaries(db) == sorted(
        [
            f"summary:{daily.id}:daily:2026-11-15",
            f"summary:{daily.id}:daily:2026-11-16",
            f"summary:{weekly_id}:weekly:2026-11-09",
        ]
    )
    assert sorted(mailbox.accepted.values()) == [1, 1, 1]  # each email delivered once
    assert len(mail_to(weekly_email)) == 1 and mail_to(off_email) == []
    assert all(m["To"] not in {u.email for u in faraway.users.values()} for m in mailbox.messages)

    sunday_mail = mail_to(daily.email)[0]
    assert "daily summary (2026-11-15)" in sunday_mail["Subject"]
    text = body_of(sunday_mail)
    change = (len(sunday) - len(saturday)) * 100 / len(saturday)
    assert f"New leads: {len(sunday)} (previous period: {len(saturday)}, {change:+.1f}%)" in text
    assert "Conversions: 1 (average 10.0 days from capture)" in text
    assert "Revenue: 5000.00" in text and "777" not in text

    week_text = body_of(mail_to(weekly_email)[0])
    this_week = len(sunday) + len(saturday) + 1
    week_before_leads = len(week_before) + 1  # and the lead captured on Nov 5 (converted on Nov 15)
    change = (this_week - week_before_leads) * 100 / week_before_leads
    assert f"New leads: {this_week} (previous period: {week_before_leads}, {change:+.1f}%)" in week_text
    assert "weekly summary (2026-11-09 to 2026-11-15)" in mail_to(weekly_email)[0]["Subject"]
    monday_text = body_of(mail_to(daily.email)[1])  # Monday Nov 16: nothing new
    assert f"New leads: 0 (previous period: {len(sunday)}, -100.0%)" in monday_text


def _summary_rows(db) -> list[Notification]:
    with db.unit_of_work() as session:
        return list(session.scalars(sa.select(Notification).where(Notification.kind == summary.SUMMARY)))


def test_due_period_daily_weekly_off_in_local_time():
    zone = "America/Chicago"
    at = MONDAY_8_10.astimezone(UTC)
    daily = summary.due_period(at, zone, "daily", hour=8, window_hours=4)
    assert (daily.first_day.isoformat(), daily.last_day.isoformat()) == ("2026-11-15", "2026-11-15")
    assert daily.start == local(15, 0) and daily.end == local(16, 0)
    weekly = summary.due_period(at, zone, "weekly", hour=8, window_hours=4)
    assert (weekly.first_day.isoformat(), weekly.last_day.isoformat()) == ("2026-11-09", "2026-11-15")
    assert summary.due_period(at, zone, "off", hour=8, window_hours=4) is None
    assert summary.due_period(at - timedelta(minutes=20), zone, "daily", hour=8, window_hours=4) is None
    tuesday = at + timedelta(days=1)
    assert summary.due_period(tuesday, zone, "weekly", hour=8, window_hours=4) is None


def test_admins_choose_the_frequency_others_cannot_and_bad_values_are_422(client, tenant):
    admin, coordinator = tenant.headers("clinic_admin"), tenant.headers("treatment_coordinator")
    resp = client.get("/api/me/notification-preferences", headers=admin)
    assert resp.status_code == 200 and resp.get_json()["summary_frequency"] == "daily"
    resp = client.put("/api/me/notification-preferences", json={"summary_frequency": "weekly"}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["summary_frequency"] == "weekly"
    assert client.get("/api/me/notification-preferences", headers=admin).get_json()["summary_frequency"] == (
        "weekly"
    )
    for value in ("hourly", "", 7, None):
        body = {"summary_frequency": value}
        resp = client.put("/api/me/notification-preferences", json=body, headers=admin)
        assert resp.status_code == 422 and "summary_frequency" in str(resp.get_json()["errors"]), value
    resp = client.put(
        "/api/me/notification-preferences", json={"summary_frequency": "daily"}, headers=coordinator
    )
    assert resp.status_code == 422 and "summary_frequency" in str(resp.get_json()["errors"])
    got = client.get("/api/me/notification-preferences", headers=coordinator).get_json()
    assert got["summary_frequency"] == "off"


def test_beat_runs_the_summary_sweep(app):
    from app.platform import celery_config

    entry = celery_config.beat_entries(app.config["SETTINGS"])["analytics-summaries"]
    assert entry["task"] == "analytics.send_summaries"
    assert entry["schedule"] == app.config["SETTINGS"].summary_interval
