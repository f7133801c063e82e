"""Retention (issue 34 item 7): a clinic's setting erases its closed leads N months after they
closed, in a daily crontab sweep; open leads, recent ones and clinics without the setting are kept."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.domains.intake.imports import CHUNK_KIND as IMPORT_CHUNK
from app.domains.leads.models import Lead
from app.domains.privacy import retention
from app.platform import clock
from app.platform.celery_config import beat_entries
from app.platform.config import Settings
from app.platform.scheduling.models import ScheduledJob
from tests import ledger
from tests.leadkit import create_lead


def _lose(client, tenant, lead_id: int) -> None:
    resp = client.post(f"/api/leads/{lead_id}/lost", json={"reason": "OTHER"}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()


def test_closed_leads_past_the_clinics_retention_are_erased(client, db, tenant, make_tenant):
    resp = client.put(
        "/api/clinic", json={"settings": {"erase_closed_after_months": 6}}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    lost = create_lead(client, tenant, first_name="Gone", notes="old concern")
    kept_open = create_lead(client, tenant, first_name="Open", phone="(415) 555-0177")
    _lose(client, tenant, lost["id"])
    other = make_tenant("No retention")
    other_lost = create_lead(client, other, first_name="Stays")
    _lose(client, other, other_lost["id"])

    assert retention.erase_expired_leads(db=db, now=clock.now() + timedelta(days=150)) == 0
    erased = retention.erase_expired_leads(db=db, now=clock.now() + timedelta(days=200))
    assert erased == 1
    assert retention.erase_expired_leads(db=db, now=clock.now() + timedelta(days=200)) == 0  # once

    with db.unit_of_work() as session:
        names = {
            lead.id: (lead.first_name, lead.notes, lead.erased_at is not None) for lead in session.query(Lead)
        }
    assert names[lost["id"]] == ("[erased]", None, True)
    assert names[kept_open["id"]] == ("Open", None, False)
    assert names[other_lost["id"]] == ("Stays", None, False)


def test_the_setting_is_checked_and_zero_means_never(client, tenant):
    for bad in (-1, 1201, "six", 2.5):
        resp = client.put(
            "/api/clinic", json={"settings": {"erase_closed_after_months": bad}}, headers=tenant.headers()
        )
        assert resp.status_code == 422 and "erase_closed_after_months" in str(resp.get_json()), bad
    assert retention.retention_months({"erase_closed_after_months": 0}) == 0
    assert retention.retention_months({}) == 0


def test_the_sweep_runs_daily_on_a_crontab_at_its_hour():
    entry = beat_entries(Settings(retention_hour=5))["privacy-erase-expired"]
    assert entry["task"] == "privacy.erase_expired_leads"
    assert entry["schedule"].hour == {5} and entry["schedule"].minute == {0}


def test_gave_up_jobs_are_purged_after_the_clinics_retention(client, db, tenant, make_tenant):
    """Issue 42: a job that gave up (dead, failed) is never purged by the ledger's own purge (kept for
    an admin to retry); its payload and error may describe a person, so the clinic's retention
    purges it, and a clinic without retention keeps its own."""
    resp = client.put(
        "/api/clinic", json={"settings": {"erase_closed_after_months": 6}}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    other = make_tenant("No retention")
    now = clock.now()
    with db.unit_of_work() as session:
        for clinic_id, status, key in (
            (tenant.id, "dead", "old-dead"), (tenant.id, "failed", "old-failed"), (other.id, "dead", "other")
        ):  # fmt: skip
            job = ledger.schedule(
                session=session, kind=IMPORT_CHUNK, due_at=now, dedupe_key=key, now=now,
                clinic_id=clinic_id, payload={"note": "Ann Example, +14155550123"},
            )  # fmt: skip
            session.flush()
            job.status, job.finished_at = status, now

    retention.erase_expired_leads(db=db, now=now + timedelta(days=150))
    assert _gave_up_keys(db) == {"old-dead", "old-failed", "other"}  # within the retention
    retention.erase_expired_leads(db=db, now=now + timedelta(days=200))
    assert _gave_up_keys(db) == {"other"}
    with db.unit_of_work() as session:  # their keys went with them: the same key may be used again
        again = ledger.schedule(
            session=session,
            kind=IMPORT_CHUNK,
            due_at=now,
            dedupe_key="old-dead",
            now=now,
            clinic_id=tenant.id,
        )
        assert again.status in ("pending", "dispatched")  # a new row, not the purged one


def _gave_up_keys(db) -> set[str]:
    with db.unit_of_work() as session:
        return set(
            session.scalars(sa.select(ScheduledJob.dedupe_key).where(ScheduledJob.kind == IMPORT_CHUNK))
        )
