"""A lead's long timers through the API, the ledger run at the times the test passes in, a local
Twilio-like provider taking the texts: a recall months ahead fires on its local date at the clinic's
opening (across a DST change and a month end) after a restart, once; conversion, erasure and the
cancel endpoint end it; the benefits reset nudges the cost-hesitant once a year; an attended
consultation's records are reminded of before they expire unless the lead converted."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app import create_app
from app.domains.consultations.models import LeadTimer
from app.platform import clock
from app.platform.api import injection
from app.platform.scheduling.models import ScheduledJob
from tests.automation.outreachkit import lead_with
from tests.consultations.kit import CLINIC_NUMBER, PHONE, providers, run_due, tasks_of, texts_to
from tests.leadkit import create_lead
from tests.outbound.kit import assign_sms_senders

ZONE = "America/New_York"
EVERY_DAY_9_TO_5 = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RECALL_TASK, RECALL_TEXT = "Recall: book the planned visit", "time for the visit we planned"
BENEFITS_TASK, BENEFITS_TEXT = "Benefits reset: call about the treatment cost", "new benefits year"
RECORDS_TASK, RECORDS_TEXT = "Records expire soon: ask for the decision", "are valid until"


@pytest.fixture
def office(app, monkeypatch):
    with providers(app, monkeypatch) as both:
        yield both


@contextmanager
def clock_at(monkeypatch, moment: datetime):
    """The views' `now` (read once at the web edge, app/platform/api/injection.py) is `moment` inside
    the block; authentication keeps the real clock (the test's tokens are issued now)."""
    real = injection.clock
    monkeypatch.setattr(injection, "clock", SimpleNamespace(now=lambda: moment))
    try:
        yield
    finally:
        monkeypatch.setattr(injection, "clock", real)


def new_york_clinic(client, tenant, **settings) -> None:
    """A clinic in New York open 09:00-17:00 every day, texting from its number."""
    assign_sms_senders(tenant, CLINIC_NUMBER)
    body = {
        "timezone": ZONE,
        "business_hours": EVERY_DAY_9_TO_5,
        "settings": {"sms_number": CLINIC_NUMBER, **settings},
    }
    resp = client.put("/api/clinic", json=body, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()


def opening(day: date) -> datetime:
    """09:00 in New York on `day`, in UTC (EST or EDT, whichever that day has)."""
    return datetime.combine(day, time(9), ZoneInfo(ZONE)).astimezone(UTC)


def recall(client, tenant, lead_id: int, expect: int = 201, **body) -> dict:
    resp = client.post(f"/api/leads/{lead_id}/recalls", json=body, headers=tenant.headers("front_desk"))
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def recalls_of(client, tenant, lead_id: int) -> list[dict]:
    resp = client.get(f"/api/leads/{lead_id}/recalls", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def timers_of(client, tenant, lead_id: int) -> list[dict]:
    resp = client.get(f"/api/leads/{lead_id}/timers", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def second_lead(client, tenant) -> dict:
    return create_lead(client, tenant, role="clinic_admin", phone="(415) 555-2672", email="other@example.com")


def titled(db, lead_id: int, title: str) -> list:
    return [t for t in tasks_of(db, lead_id) if t.title == title]


def saying(texts, words: str) -> list[dict]:
    return [m for m in texts_to(texts) if words in m["Body"]]


def pending_timer_jobs(db) -> list[ScheduledJob]:
    with db.unit_of_work() as session:
        stmt = sa.select(ScheduledJob).where(
            ScheduledJob.kind == "consultations.timer", ScheduledJob.status.in_(("pending", "dispatched"))
        )
        return list(session.scalars(stmt))


def test_a_recall_14_months_ahead_survives_a_restart_and_fires_on_its_local_date_once(
    app, client, db, tenant, office, monkeypatch
):
    _, texts = office
    new_york_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    # 31 January in New York (EST): "in 1 month" is the last day of February, "in 14 months" the
    # 31st of March a year later, after the clocks went forward (EDT).
    today = datetime(2027, 1, 31, 15, 0, tzinfo=UTC)
    with clock_at(monkeypatch, today):
        short = recall(client, tenant, lead["id"], in_months=1)
        long = recall(client, tenant, lead["id"], in_months=14, note="recheck the crowding")
    assert short["on"] == "2027-02-28" and long["on"] == "2028-03-31"
    assert (
        datetime.fromisoformat(short["due_at"])
        == opening(date(2027, 2, 28))
        == datetime(2027, 2, 28, 14, tzinfo=UTC)
    )
    assert (
        datetime.fromisoformat(long["due_at"])
        == opening(date(2028, 3, 31))
        == datetime(2028, 3, 31, 13, tzinfo=UTC)
    )
    assert [r["status"] for r in recalls_of(client, tenant, lead["id"])] == ["scheduled", "scheduled"]

    # A restart: a fresh app (the same settings: the local providers) runs the ledger from the
    # database at the chosen times.
    fresh = create_app(app.config["SETTINGS"])
    run_due(fresh, db, opening(date(2027, 2, 28)) - timedelta(minutes=1))
    assert not titled(db, lead["id"], RECALL_TASK) and not saying(texts, RECALL_TEXT)
    run_due(fresh, db, opening(date(2027, 2, 28)))
    [task] = titled(db, lead["id"], RECALL_TASK)
    assert task.due_at == opening(date(2027, 2, 28))
    assert len(saying(texts, RECALL_TEXT)) == 1

    run_due(fresh, db, opening(date(2028, 3, 31)) - timedelta(minutes=1))
    assert len(titled(db, lead["id"], RECALL_TASK)) == 1 and len(saying(texts, RECALL_TEXT)) == 1
    run_due(fresh, db, opening(date(2028, 3, 31)))
    run_due(fresh, db, opening(date(2028, 3, 31)) + timedelta(hours=2))  # again later: nothing twice
    assert len(titled(db, lead["id"], RECALL_TASK)) == 2 and len(saying(texts, RECALL_TEXT)) == 2
    listed = recalls_of(client, tenant, lead["id"])
    assert [r["status"] for r in listed] == ["done", "done"]
    assert listed[1]["note"] == "recheck the crowding"
    front_desk = client.get(f"/api/leads/{lead['id']}/recalls", headers=tenant.headers("front_desk"))
    assert "note" not in front_desk.get_json()[1]  # PHI: only for a reader with lead:phi


def test_bad_recalls_name_the_field_and_another_clinics_recall_is_not_found(
    client, tenant, make_tenant, monkeypatch
):
    new_york_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    today = datetime(2027, 6, 15, 15, 0, tzinfo=UTC)
    with clock_at(monkeypatch, today):
        for body, field in (
            ({"on": "2027-07-01", "in_months": 2}, "in_months"),
            ({}, "on"),
            ({"on": "2027-06-14"}, "on"),
            ({"in_months": 0}, "in_months"),
            ({"in_months": 61}, "in_months"),
        ):
            resp = client.post(
                f"/api/leads/{lead['id']}/recalls", json=body, headers=tenant.headers("front_desk")
            )
            assert resp.status_code == 422, (body, resp.get_json())
            assert field in resp.get_json()["errors"]["json"], (body, resp.get_json())
        same_day = recall(client, tenant, lead["id"], on="2027-06-15")
    assert same_day["on"] == "2027-06-15"
    other = make_tenant("Other Orthodontics")
    for resp in (
        client.post(f"/api/recalls/{same_day['id']}/cancel", headers=other.headers()),
        client.get(f"/api/leads/{lead['id']}/recalls", headers=other.headers()),
        client.post(f"/api/leads/{lead['id']}/recalls", json={"in_months": 6}, headers=other.headers()),
    ):
        assert resp.status_code == 404, resp.get_json()


def test_the_cancel_endpoint_ends_a_recall_and_nothing_goes(app, client, db, tenant, office):
    _, texts = office
    new_york_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    made = recall(client, tenant, lead["id"], in_months=6)
    resp = client.post(f"/api/recalls/{made['id']}/cancel", headers=tenant.headers("front_desk"))
    assert resp.status_code == 200, resp.get_json()
    cancelled = resp.get_json()
    assert cancelled["status"] == "cancelled" and cancelled["reason"].startswith("cancelled by")
    again = client.post(f"/api/recalls/{made['id']}/cancel", headers=tenant.headers("front_desk"))
    assert again.status_code == 409
    assert not pending_timer_jobs(db)
    run_due(app, db, datetime.fromisoformat(made["due_at"]) + timedelta(hours=1))
    assert not titled(db, lead["id"], RECALL_TASK) and not saying(texts, RECALL_TEXT)


def test_a_conversion_cancels_the_recall(app, client, db, tenant, office):
    _, texts = office
    new_york_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    made = recall(client, tenant, lead["id"], in_months=3)
    resp = client.post(f"/api/leads/{lead['id']}/convert", json={}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    run_due(app, db, clock.now() + timedelta(minutes=1))  # the conversion's event
    [ended] = recalls_of(client, tenant, lead["id"])
    assert ended["status"] == "cancelled" and ended["reason"] == "the lead converted"
    assert not pending_timer_jobs(db)
    run_due(app, db, datetime.fromisoformat(made["due_at"]) + timedelta(hours=1))
    assert not titled(db, lead["id"], RECALL_TASK) and not saying(texts, RECALL_TEXT)


def test_erasure_cancels_a_recall_and_drops_its_note(app, client, db, tenant):
    new_york_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    recall(client, tenant, lead["id"], in_months=3, note="recheck the crowding")
    resp = client.post(f"/api/leads/{lead['id']}/erase", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    with db.unit_of_work() as session:
        [timer] = session.scalars(sa.select(LeadTimer).where(LeadTimer.lead_id == lead["id"]))
        assert (timer.status, timer.reason, timer.note) == ("cancelled", "the lead was erased", None)
    assert not pending_timer_jobs(db)


def pending_decision(client, tenant, lead_id: int, why: str) -> None:
    for stage, extra in (("consultation_completed", {}), ("pending_decision", {"hesitation_reason": why})):
        resp = client.post(
            f"/api/leads/{lead_id}/stage", json={"stage": stage, **extra}, headers=tenant.headers()
        )
        assert resp.status_code == 200, resp.get_json()


def nudge(app, db, now: datetime) -> None:
    """The beat's task, as a worker runs it at `now`, then the ledger at that time."""
    from workers.consultations import nudge_benefits

    with app.app_context():
        nudge_benefits(now.isoformat())
    run_due(app, db, now)


def test_the_benefits_reset_nudges_a_cost_hesitant_pending_lead_once(app, client, db, tenant, office):
    _, texts = office
    new_york_clinic(client, tenant, benefits_reset="01-01")
    cost = lead_with(client, tenant, phone=PHONE)
    other = create_lead(
        client, tenant, role="clinic_admin", phone="(415) 555-2672", email="other@example.com"
    )
    pending_decision(client, tenant, cost["id"], "cost")
    pending_decision(client, tenant, other["id"], "second_opinion")
    nudge(app, db, opening(date(2027, 12, 31)))  # the day before: nobody
    assert not titled(db, cost["id"], BENEFITS_TASK) and not saying(texts, BENEFITS_TEXT)
    reset_day = opening(date(2028, 1, 1)) + timedelta(hours=1)
    nudge(app, db, reset_day)
    nudge(app, db, reset_day + timedelta(hours=1))  # the next run the same day: nothing twice
    assert len(titled(db, cost["id"], BENEFITS_TASK)) == 1
    assert len(saying(texts, BENEFITS_TEXT)) == 1
    assert not titled(db, other["id"], BENEFITS_TASK)
    [nudged] = timers_of(client, tenant, cost["id"])
    assert (nudged["kind"], nudged["status"], nudged["on"]) == ("benefits_reset", "done", "2028-01-01")
    assert timers_of(client, tenant, other["id"]) == []


def test_the_benefits_reset_setting_is_checked(client, tenant):
    for bad in ("02-29", "13-01", "1-1"):
        resp = client.put("/api/clinic", json={"settings": {"benefits_reset": bad}}, headers=tenant.headers())
        assert resp.status_code == 422 and "benefits_reset" in str(resp.get_json()["errors"]), bad


def attended(client, tenant, lead_id: int) -> dict:
    booked = client.post(
        f"/api/leads/{lead_id}/consultations",
        json={"starts_at": clock.now().isoformat()},
        headers=tenant.headers("front_desk"),
    )
    assert booked.status_code == 201, booked.get_json()
    resp = client.post(
        f"/api/consultations/{booked.get_json()['id']}/check-in",
        json={},
        headers=tenant.headers("front_desk"),
    )
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_records_expiry_reminds_days_before_unless_the_lead_converted(app, client, db, tenant, office):
    _, texts = office
    new_york_clinic(client, tenant, records_valid_days=60, records_reminder_days=7)
    lead = lead_with(client, tenant, phone=PHONE)
    converting = create_lead(
        client, tenant, role="clinic_admin", phone="(415) 555-2672", email="other@example.com"
    )
    consultation = attended(client, tenant, lead["id"])
    attended(client, tenant, converting["id"])
    consulted_on = datetime.fromisoformat(consultation["starts_at"]).astimezone(ZoneInfo(ZONE)).date()
    [timer] = timers_of(client, tenant, lead["id"])
    expires_on, remind_on = consulted_on + timedelta(days=60), consulted_on + timedelta(days=53)
    assert (timer["kind"], timer["status"], timer["consultation_id"]) == (
        "records_expiry",
        "scheduled",
        consultation["id"],
    )
    assert timer["expires_on"] == expires_on.isoformat() and timer["on"] == remind_on.isoformat()
    resp = client.post(f"/api/leads/{converting['id']}/convert", json={}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()

    run_due(app, db, opening(remind_on) - timedelta(minutes=1))
    assert not titled(db, lead["id"], RECORDS_TASK) and not saying(texts, RECORDS_TEXT)
    run_due(app, db, opening(remind_on))
    assert len(titled(db, lead["id"], RECORDS_TASK)) == 1
    [text] = saying(texts, RECORDS_TEXT)
    assert f"{expires_on:%d %b %Y}" in text["Body"]
    assert not titled(db, converting["id"], RECORDS_TASK)  # converted before: nothing
    [ended] = timers_of(client, tenant, converting["id"])
    assert (ended["status"], ended["reason"]) == ("cancelled", "the lead converted")
