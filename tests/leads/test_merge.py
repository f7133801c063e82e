"""Duplicates to merge or dismiss over the API (issue 64 item 3): a merge moves the merged lead's
work to the survivor and closes it; a dismissed pair is never suggested again."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.leads import duplicates
from app.domains.leads.models import Lead
from app.platform import clock
from app.platform.scheduling.models import ScheduledJob
from tests.automation.outreachkit import call, configure_clinic, enroll, enrollments, make_sequence, steps_of
from tests.intake.test_twilio import AUTH_TOKEN, CLINIC_NUMBER, INBOUND, PHONE, signed_post, text
from tests.leadkit import create_lead, events, get_lead
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import sms_settings, use


@pytest.fixture
def texts(app, monkeypatch):
    """Twilio's stand-in, for the family's texted message that makes a thread."""
    with sms_provider(token=AUTH_TOKEN) as (provider, url):
        provider.numbers.add(CLINIC_NUMBER)
        use(monkeypatch, app.config["SETTINGS"], **sms_settings(url, token=AUTH_TOKEN))
        yield provider


def _merge(client, tenant, lead_id: int, from_lead_id, role: str = "treatment_coordinator"):
    return client.post(
        f"/api/leads/{lead_id}/merge", json={"from_lead_id": from_lead_id}, headers=tenant.headers(role)
    )


def _items(client, tenant, path: str) -> list[dict]:
    resp = client.get(path, headers=tenant.headers("clinic_admin"))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    return body["items"] if isinstance(body, dict) else body


def _open_jobs_of(db, lead_id: int) -> list[ScheduledJob]:
    with db.unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(ScheduledJob).where(
                    ScheduledJob.subject_type == "lead",
                    ScheduledJob.subject_id == lead_id,
                    ScheduledJob.status.in_(["pending", "dispatched"]),
                )
            )
        )


def test_a_merge_moves_the_work_to_the_survivor_and_closes_the_merged_lead(client, db, tenant, texts):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    survivor = create_lead(client, tenant, first_name="Jane", last_name="Doe", phone="415-555-0199")
    merged = create_lead(
        client, tenant, first_name="Jane", last_name="Doe", phone=PHONE, email="jane@example.com"
    )
    other_id = merged["id"]
    # The merged lead's work: a note, a task, a consultation and a texted thread.
    headers = tenant.headers("treatment_coordinator")
    note = client.post(
        f"/api/leads/{other_id}/activities", json={"type": "NOTE", "notes": "Asked"}, headers=headers
    )
    assert note.status_code == 201, note.get_json()
    due = (clock.now() + timedelta(hours=2)).isoformat()
    task = client.post(
        f"/api/leads/{other_id}/tasks",
        json={"title": "Call back", "type": "CALL", "due_at": due},
        headers=headers,
    )
    assert task.status_code == 201, task.get_json()
    starts = (clock.now() + timedelta(days=3)).replace(microsecond=0).isoformat()
    booked = client.post(f"/api/leads/{other_id}/consultations", json={"starts_at": starts}, headers=headers)
    assert booked.status_code == 201, booked.get_json()
    assert signed_post(client, INBOUND, text("Is Tuesday free?", sid="SMm1")).status_code == 200
    assert [m["body"] for m in _items(client, tenant, f"/api/leads/{other_id}/conversation")] == [
        "Is Tuesday free?"
    ]
    assert _open_jobs_of(db, other_id), "the merged lead had work planned"

    resp = _merge(client, tenant, survivor["id"], other_id)

    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["email"] == "jane@example.com"  # its own was empty: taken from the other
    assert resp.get_json()["phone"] == "+14155550199"  # its own is kept
    activities = _items(client, tenant, f"/api/leads/{survivor['id']}/activities")
    assert "Asked" in [a.get("notes") for a in activities]
    assert task.get_json()["id"] in [
        t["id"] for t in _items(client, tenant, f"/api/leads/{survivor['id']}/tasks")
    ]
    consultations = _items(client, tenant, f"/api/leads/{survivor['id']}/consultations")
    assert [c["id"] for c in consultations] == [booked.get_json()["id"]]
    thread = _items(client, tenant, f"/api/leads/{survivor['id']}/conversation")
    assert [m["body"] for m in thread] == ["Is Tuesday free?"]
    assert _open_jobs_of(db, other_id) == []
    closed = get_lead(client, tenant, other_id).get_json()
    assert (closed["status"], closed["merged_into_id"]) == ("ARCHIVED", survivor["id"])
    [event] = events(db, "lead.merged")
    assert event.payload["merged_lead_id"] == other_id and event.payload["filled"] == ["email"]
    assert "jane@example.com" not in str(event.payload)  # field names only, never the values

    again = _merge(client, tenant, survivor["id"], other_id)
    assert again.status_code == 409 and again.get_json()["code"] == "already_merged"
    assert f"merged into lead {survivor['id']}" in again.get_json()["message"]


def test_a_lead_into_itself_is_409_and_another_clinics_lead_is_404(client, tenant, make_tenant):
    lead = create_lead(client, tenant)
    itself = _merge(client, tenant, lead["id"], lead["id"])
    assert itself.status_code == 409 and itself.get_json()["code"] == "merge_into_itself"
    elsewhere = create_lead(client, make_tenant("Elsewhere"))
    assert _merge(client, tenant, lead["id"], elsewhere["id"]).status_code == 404
    assert _merge(client, tenant, elsewhere["id"], lead["id"]).status_code == 404
    bad = _merge(client, tenant, lead["id"], "seven")
    assert bad.status_code == 422 and "from_lead_id" in str(bad.get_json()["errors"])
    assert _merge(client, tenant, lead["id"], elsewhere["id"], role="front_desk").status_code in (403, 404)


def test_a_dismissed_pair_is_not_suggested_again_in_either_order(app, client, db, tenant, make_tenant):
    first = create_lead(client, tenant, phone="(415) 555-2671")
    second = create_lead(client, tenant, first_name="John", last_name="Roe", phone="+1 415-555-2671")
    assert second["possible_duplicates"] == [{"lead_id": first["id"], "matched": ["phone"]}]

    def suggested(lead_id: int) -> list[int]:
        with db.unit_of_work() as session:
            lead = session.get(Lead, lead_id)
            return [d["lead_id"] for d in duplicates.duplicates_of_lead(session=session, lead=lead)]

    assert suggested(first["id"]) == [second["id"]]
    path = f"/api/leads/{second['id']}/duplicates/{first['id']}/dismiss"
    for _ in range(2):  # idempotent
        resp = client.post(path, headers=tenant.headers("treatment_coordinator"))
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["other_lead_id"] == first["id"]
    assert suggested(first["id"]) == [] and suggested(second["id"]) == []
    other = make_tenant("Other")
    assert client.post(path, headers=other.headers("treatment_coordinator")).status_code == 404


def test_erasing_the_survivor_erases_the_lead_merged_into_it(client, db, tenant):
    survivor = create_lead(client, tenant, phone="415-555-0177")
    merged = create_lead(client, tenant, first_name="Janet", phone="415-555-0178", email="janet@example.com")
    assert _merge(client, tenant, survivor["id"], merged["id"]).status_code == 200
    erased = client.post(f"/api/leads/{survivor['id']}/erase", headers=tenant.headers("clinic_admin"))
    assert erased.status_code == 200, erased.get_json()
    with db.unit_of_work() as session:
        tombstone = session.get(Lead, merged["id"])
        assert tombstone.erased_at is not None
        assert (tombstone.first_name, tombstone.phone, tombstone.email) == ("[erased]", None, None)


def test_two_active_sequences_keep_the_survivors_and_one_alone_carries_on(client, db, tenant):
    nurture = make_sequence(client, tenant, [call(amount=2, unit="days")], name="Nurture")
    recall = make_sequence(client, tenant, [call(amount=3, unit="days")], name="Recall")
    survivor = create_lead(client, tenant, phone="415-555-0181")
    both = create_lead(client, tenant, phone="415-555-0182")
    kept = enroll(client, tenant, survivor["id"], nurture["id"])
    stopped = enroll(client, tenant, both["id"], recall["id"])
    assert _merge(client, tenant, survivor["id"], both["id"]).status_code == 200
    by_id = {e["id"]: e for e in enrollments(client, tenant, survivor["id"])}
    assert by_id[kept["id"]]["status"] == "active"
    assert (by_id[stopped["id"]]["status"], by_id[stopped["id"]]["end_reason"]) == ("unenrolled", "merged")
    assert [s.status for s in steps_of(db, survivor["id"]) if s.enrollment_id == stopped["id"]] == [
        "cancelled"
    ]

    # A merged lead's enrollment, none active on the survivor: it carries on there, its step still planned.
    alone = create_lead(client, tenant, phone="415-555-0183")
    carried = enroll(client, tenant, alone["id"], recall["id"])
    newcomer = create_lead(client, tenant, phone="415-555-0184")
    assert _merge(client, tenant, newcomer["id"], alone["id"]).status_code == 200
    [moved] = enrollments(client, tenant, newcomer["id"])
    assert (moved["id"], moved["status"]) == (carried["id"], "active")
    [step] = [s for s in steps_of(db, newcomer["id"]) if s.enrollment_id == carried["id"]]
    assert step.status == "scheduled"
    with db.unit_of_work() as session:
        job = session.get(ScheduledJob, step.job_id)
        assert (job.status, job.subject_id) == ("pending", newcomer["id"])


def test_a_merge_moves_the_merged_leads_further_patients_but_not_one_named_twice(app, client, db, tenant):
    from app.domains.merging import service as merging
    from tests.automation.kit import actor_of

    diego = {"first_name": "Diego", "last_name": "Lopez", "relationship": "CHILD"}
    survivor = create_lead(
        client, tenant, first_name="Maria", last_name="Lopez", phone="415-555-0191",
        patients=[{"first_name": "Ana", "relationship": "CHILD"}, diego],
    )  # fmt: skip
    merged = create_lead(
        client, tenant, first_name="Maria", last_name="Lopez", phone="415-555-0191",
        patients=[{"first_name": "Maria", "relationship": "SELF"}, {**diego, "first_name": "diego "},
                  {"first_name": "Sofia", "relationship": "CHILD", "birth_year": 2016}],
    )  # fmt: skip
    with app.app_context(), db.unit_of_work() as session:
        merging.merge(
            session=session, actor=actor_of(tenant, "treatment_coordinator"), lead_id=survivor["id"],
            from_lead_id=merged["id"], now=clock.now(),
        )  # fmt: skip
    names = [p["first_name"] for p in get_lead(client, tenant, survivor["id"]).get_json()["patients"]]
    assert names == ["Ana", "Diego", "Sofia"]  # Diego once, Sofia after the survivor's own
    left = [p["first_name"] for p in get_lead(client, tenant, merged["id"]).get_json()["patients"]]
    assert left == ["Maria", "diego"]  # the merged lead's own, and the Diego already there
