"""Bulk enrolment through the API, run by a real worker (in-process thread worker, real Redis): an
integrator enrols the leads of an expo in the clinic's sequence with one request."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from app.domains.automation.models import AutomationStep, SequenceEnrollment
from app.domains.leads.models import Lead
from app.domains.sequences import bulk_enrolment
from app.platform import clock
from app.platform.scheduling import sweeps
from app.platform.scheduling.models import ScheduledJob
from app.platform.scheduling.runner import run_job
from tests.automation.outreachkit import enroll, make_sequence, open_jobs, sms
from tests.ledger import queued_job_ids
from tests.reliability.test_bulk_kill import seed_leads
from tests.workers import thread_worker, wait_for


def start(client, tenant, sequence_id, body, expect=202, headers=None):
    resp = client.post(
        f"/api/sequences/{sequence_id}/enrollments",
        json=body,
        headers=headers or tenant.headers("treatment_coordinator"),
    )
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def finished(client, tenant, bulk_id):
    body = client.get(f"/api/bulk-jobs/{bulk_id}", headers=tenant.headers()).get_json()
    return body if body["status"] in ("done", "failed") else None


def rows(client, tenant, bulk_id) -> dict[int, dict]:
    found, page = {}, 1
    while True:
        resp = client.get(
            f"/api/bulk-jobs/{bulk_id}/rows?page={page}&page_size=100", headers=tenant.headers()
        )
        assert resp.status_code == 200, resp.get_json()
        if not resp.get_json():
            return found
        found.update({row["lead_id"]: row for row in resp.get_json()})
        page += 1


def expo_leads(db, tenant) -> list[int]:
    with db.unit_of_work() as session:
        return list(
            session.scalars(sa.select(Lead.id).where(Lead.source_campaign == "expo").order_by(Lead.id))
        )


def mark(db, lead_ids, **values):
    with db.unit_of_work() as session:
        session.execute(sa.update(Lead).where(Lead.id.in_(lead_ids)).values(**values))


def first_steps(db, sequence_id) -> dict[int, int]:
    """Each lead's count of the sequence's first step on the why-trail."""
    with db.unit_of_work() as session:
        found = session.execute(
            sa.select(AutomationStep.lead_id, sa.func.count())
            .where(AutomationStep.dedupe_key.like("enrollment:%:step:0"))
            .join(SequenceEnrollment, SequenceEnrollment.lead_id == AutomationStep.lead_id)
            .where(SequenceEnrollment.sequence_id == sequence_id)
            .group_by(AutomationStep.lead_id)
        ).all()
    return dict(found)


@pytest.fixture
def chunks_of_50(app, monkeypatch):
    # SQLite has one writer: a chunk's transaction holds it, and a shorter one keeps the others'
    # (and this test's reads) inside the busy timeout on a loaded machine.
    monkeypatch.setattr(app.config["SETTINGS"], "bulk_chunk_size", 50)


def test_a_thousand_leads_enrolled_once_each_with_the_reason_for_each_one_left_out(
    app, client, db, tenant, chunks_of_50
):
    seed_leads(db, tenant, 1000)
    ids = expo_leads(db, tenant)
    assert len(ids) == 1000
    opted_out, do_not_contact, already = ids[0:50], ids[50:60], ids[60:63]
    mark(db, opted_out, sms_opt_out=True)
    mark(db, do_not_contact, do_not_contact=True)
    sequence = make_sequence(client, tenant, [sms(amount=1, unit="days")], name="After the expo")
    for lead_id in already:
        enroll(client, tenant, lead_id, sequence["id"])

    with thread_worker(app):
        started = start(client, tenant, sequence["id"], {"lead_ids": ids})
        bulk = wait_for(lambda: finished(client, tenant, started["id"]), timeout=600)

    assert (started["kind"], started["total"]) == ("sequences.enroll", 1000)
    eligible = 1000 - len(opted_out) - len(do_not_contact) - len(already)
    assert (bulk["status"], bulk["done"], bulk["failed"]) == ("done", eligible, 1000 - eligible)
    assert bulk["outcomes"] == {
        "enrolled": eligible,
        "already_enrolled": 3,
        "opted_out": 50,
        "do_not_contact": 10,
        "not_enrolled": 0,
    }
    report = rows(client, tenant, bulk["id"])
    assert len(report) == 1000
    assert {report[i]["outcome"] for i in opted_out} == {"opted_out"}
    assert {report[i]["outcome"] for i in do_not_contact} == {"do_not_contact"}
    assert {report[i]["outcome"] for i in already} == {"already_enrolled"}
    assert {report[i]["outcome"] for i in ids[63:]} == {"enrolled"}
    # The sequence's first step, once for each lead enrolled (the three enrolled by hand had theirs).
    steps = first_steps(db, sequence["id"])
    assert set(steps) == set(ids[60:]) and set(steps.values()) == {1}
    # ... each on the ledger once.
    with db.unit_of_work() as session:
        step_ids = session.scalars(
            sa.select(AutomationStep.id).where(AutomationStep.dedupe_key.like("enrollment:%:step:0"))
        ).all()
        keys = session.scalars(
            sa.select(ScheduledJob.dedupe_key).where(ScheduledJob.dedupe_key.like("automation-step:%"))
        ).all()
    per_step = Counter(int(key.split(":")[1]) for key in keys)
    assert len(step_ids) == eligible + 3 and {per_step[step_id] for step_id in step_ids} == {1}


def test_the_same_idempotency_key_starts_one_bulk_enrolment(app, client, db, tenant):
    seed_leads(db, tenant, 5)
    sequence = make_sequence(client, tenant, [sms(amount=1, unit="days")])
    headers = {**tenant.headers("treatment_coordinator"), "Idempotency-Key": "expo-2026-enrol"}
    first = start(client, tenant, sequence["id"], {"filter": {"source_campaign": "expo"}}, headers=headers)
    again = client.post(
        f"/api/sequences/{sequence['id']}/enrollments",
        json={"filter": {"source_campaign": "expo"}},
        headers=headers,
    )
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["id"] == first["id"]
    with thread_worker(app):
        bulk = wait_for(lambda: finished(client, tenant, first["id"]), timeout=60)
    assert (bulk["total"], bulk["done"]) == (5, 5)
    assert len(first_steps(db, sequence["id"])) == 5


def test_a_cancelled_bulk_enrolment_enrols_nobody(app, client, db, tenant):
    seed_leads(db, tenant, 4)
    sequence = make_sequence(client, tenant, [sms(amount=1, unit="days")])
    started = start(client, tenant, sequence["id"], {"lead_ids": expo_leads(db, tenant)})
    cancel = client.post(f"/api/bulk-jobs/{started['id']}/cancel", headers=tenant.headers())
    assert cancel.status_code == 200, cancel.get_json()
    with thread_worker(app):
        pass
    assert (
        client.get(f"/api/bulk-jobs/{started['id']}", headers=tenant.headers()).get_json()["status"]
        == "cancelled"
    )
    assert first_steps(db, sequence["id"]) == {}


def test_bad_requests_name_their_field_and_another_clinics_sequence_or_lead_is_a_404(
    client, db, tenant, make_tenant
):
    seed_leads(db, tenant, 2)
    ids = expo_leads(db, tenant)
    sequence = make_sequence(client, tenant, [sms()])
    both = start(client, tenant, sequence["id"], {"lead_ids": ids, "filter": {}}, expect=422)
    assert "lead_ids" in both["errors"]["json"]
    neither = start(client, tenant, sequence["id"], {}, expect=422)
    assert "lead_ids" in neither["errors"]["json"]
    other = make_tenant()
    theirs = make_sequence(client, other, [sms()])
    start(client, tenant, theirs["id"], {"lead_ids": ids}, expect=404)
    start(client, other, sequence["id"], {"lead_ids": ids}, expect=404, headers=other.headers())
    mine = make_sequence(client, other, [sms()], name="Theirs 2")
    start(client, other, mine["id"], {"lead_ids": ids}, expect=404, headers=other.headers())
    client.put(f"/api/sequences/{sequence['id']}", json={"active": False}, headers=tenant.headers())
    inactive = start(client, tenant, sequence["id"], {"lead_ids": ids}, expect=409)
    assert inactive["code"] == "sequence_inactive"


def test_a_campaigns_steps_coming_due_together_wait_off_the_new_leads_queue(app, client, db, tenant, redis):
    """A campaign's next steps, thousands coming due at the same moment, must not queue ahead of a
    new lead's processing on the realtime queue: they are published on the bulk queue, where the
    clinics take turns and bulk work steps aside while new leads wait."""
    seed_leads(db, tenant, 60)
    sequence = make_sequence(client, tenant, [sms(amount=1, unit="days")], name="Expo follow-up")
    start(client, tenant, sequence["id"], {"lead_ids": expo_leads(db, tenant)})
    with app.app_context():
        for chunk in open_jobs(db, bulk_enrolment.CHUNK_KIND):
            assert run_job(db=db, job_id=chunk.id, now=clock.now()) == "done"
    with db.unit_of_work() as session:
        step_jobs = session.scalars(
            sa.select(ScheduledJob).where(ScheduledJob.dedupe_key.like("automation-step:%"))
        ).all()
    assert len(step_jobs) == 60
    due = max(job.due_at for job in step_jobs)
    with app.app_context():
        assert sweeps.promote_due(db=db, now=due) == 60
    ids = {job.id for job in step_jobs}
    assert ids <= set(queued_job_ids(redis, "bulk"))
    assert not ids & set(queued_job_ids(redis, "realtime"))
