"""A reply is a contact: the family's text completes the automation's initial-contact call task once
(the text delivered twice), not when the clinic turned it off; and the lead list's `in_sequence`."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.platform.events.models import DomainEvent
from tests.automation.outreachkit import configure_clinic, enroll, lead_with, make_sequence, sms
from tests.intake.test_twilio import AUTH_TOKEN, CLINIC_NUMBER, INBOUND, PHONE, signed_post, text
from tests.leadkit import create_lead
from tests.outbound.kit import use
from tests.workers import thread_worker, wait_for


@pytest.fixture
def twilio(app, monkeypatch):
    use(monkeypatch, app.config["SETTINGS"], sms_token=AUTH_TOKEN)


def tasks(client, tenant, lead_id: int) -> list[dict]:
    resp = client.get(f"/api/leads/{lead_id}/tasks", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    return body["items"] if isinstance(body, dict) else body


def timeline_notes(client, tenant, lead_id: int) -> list[str]:
    resp = client.get(f"/api/leads/{lead_id}/activities", headers=tenant.headers())
    body = resp.get_json()
    return [a.get("notes") for a in (body["items"] if isinstance(body, dict) else body)]


@pytest.mark.parametrize("turned_off", [False, True])
def test_a_reply_completes_the_initial_contact_task_once(app, client, db, tenant, twilio, turned_off):
    configure_clinic(
        client, tenant, sms_number=CLINIC_NUMBER, **({"complete_tasks_on_reply": False} if turned_off else {})
    )
    lead = lead_with(client, tenant, phone=PHONE)
    with thread_worker(app):
        wait_for(lambda: [t["title"] for t in tasks(client, tenant, lead["id"])] == ["Initial contact"])
        for _ in range(2):  # Twilio delivers the text twice
            assert signed_post(client, INBOUND, text("Yes, call me after 5", sid="SMr")).status_code == 200
        wait_for(lambda: "Yes, call me after 5" in timeline_notes(client, tenant, lead["id"]))
        if not turned_off:
            wait_for(lambda: tasks(client, tenant, lead["id"])[0]["status"] == "COMPLETED")
        wait_for(lambda: not _events_pending(db))
    task = tasks(client, tenant, lead["id"])[0]
    notes = timeline_notes(client, tenant, lead["id"])
    if turned_off:
        assert task["status"] in ("PENDING", "OVERDUE") and "Replied by SMS" not in notes
    else:
        assert task["status"] == "COMPLETED" and notes.count("Replied by SMS") == 1


def _events_pending(db) -> bool:
    """Whether an event of the clinic is still waiting for its consumers (the workers')."""
    with db.unit_of_work() as session:
        waiting = (
            sa.select(sa.func.count()).select_from(DomainEvent).where(DomainEvent.processed_at.is_(None))
        )
        return bool(session.scalar(waiting))


def test_the_lead_list_filters_by_in_sequence(client, tenant):
    configure_clinic(client, tenant)
    inside = lead_with(client, tenant, phone="(415) 555-2671")
    outside = create_other(client, tenant)
    sequence = make_sequence(client, tenant, [sms(amount=2, unit="days")])
    enroll(client, tenant, inside["id"], sequence["id"])

    def listed(value: str) -> set[int]:
        resp = client.get("/api/leads", query_string={"in_sequence": value}, headers=tenant.headers())
        assert resp.status_code == 200, resp.get_json()
        return {lead["id"] for lead in resp.get_json()}

    assert listed("true") == {inside["id"]}
    shown = client.get(f"/api/leads/{inside['id']}", headers=tenant.headers("front_desk")).get_json()
    assert shown["in_sequence"] is True
    other = client.get(f"/api/leads/{outside['id']}", headers=tenant.headers()).get_json()
    assert other["in_sequence"] is False
    listed_flags = client.get("/api/leads", headers=tenant.headers()).get_json()
    assert {lead["id"]: lead["in_sequence"] for lead in listed_flags} == {
        inside["id"]: True,
        outside["id"]: False,
    }
    assert outside["id"] in listed("false") and inside["id"] not in listed("false")
    assert client.get("/api/leads?in_sequence=maybe", headers=tenant.headers()).status_code == 422


def create_other(client, tenant) -> dict:
    return create_lead(client, tenant, role="clinic_admin", email="other@example.com", phone="(415) 555-2672")
