"""Meta's 200 messages an hour per Instagram account: a clinic's 250 automated DMs of one hour, 200
go and 50 wait in the ledger for the next hour (not failed), while another clinic's go meanwhile
(a real worker, the Graph stand-in, the ledger's clock as the SMS rate-limit tests use it)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.activities.service import SYSTEM
from app.domains.lead_messages import to_lead
from app.domains.leads.models import Lead
from app.domains.outbound.models import ProviderSendWindow
from app.platform import clock
from app.platform.scheduling.models import ScheduledJob
from tests.automation.outreachkit import configure_clinic, run
from tests.instagram.kit import connect, dm, inbound_of
from tests.outbound.kit import FAST_DELIVERY, rows, use
from tests.reliability.conftest import sweeping
from tests.workers import thread_worker, wait_for


@pytest.fixture
def fast_delivery(app, monkeypatch):
    use(monkeypatch, app.config["SETTINGS"], **FAST_DELIVERY)


def clinic_with_families(client, db, tenant, graph, account: str, families: int) -> list[int]:
    """A connected clinic, open all day and without a per-lead daily cap in the way, with `families`
    leads that each just wrote a DM (inside Meta's 24 hours)."""
    configure_clinic(client, tenant, daily_message_cap=50)
    connect(client, tenant, graph, account)
    for n in range(families):
        igsid = f"{account[-4:]}{n:04d}"
        graph.profiles[igsid] = {"username": f"family{n}"}
        dm(client, account_id=account, igsid=igsid, text="Hi!")
    return sorted({row.lead_id for row in inbound_of(db, tenant.id)})


def queue_automated(app, lead_ids: list[int], count: int, prefix: str) -> list[int]:
    """`count` automated Instagram messages spread over the leads, as a sequence's steps queue them."""
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        ids = []
        for i in range(count):
            lead = session.get(Lead, lead_ids[i % len(lead_ids)])
            sent = to_lead.send(
                session=session,
                lead=lead,
                now=clock.now(),
                message=to_lead.LeadMessage(
                    channel="instagram",
                    subject=None,
                    body=f"Follow-up {i}",
                    dedupe_key=f"{prefix}:{i}",
                    kind=to_lead.MESSAGE_KIND,
                    context={},
                    label="Automated instagram",
                    sent_by=SYSTEM,
                    details={},
                    bulk=True,
                ),
            )
            ids.append(sent.notification.id)
        return ids


def held_job(db, notification_id: int) -> ScheduledJob:
    with db.unit_of_work() as session:
        return session.scalar(
            sa.select(ScheduledJob).where(
                ScheduledJob.subject_type == "notification",
                ScheduledJob.subject_id == notification_id,
                ScheduledJob.status.in_(("pending", "dispatched")),
            )
        )


def test_250_in_an_hour_200_go_the_rest_wait_and_another_clinic_is_not_held(
    app, client, db, tenant, make_tenant, graph, fast_delivery
):
    busy = clinic_with_families(client, db, tenant, graph, "17841400000000010", families=10)
    other = make_tenant("Other Smiles")
    quiet = clinic_with_families(client, db, other, graph, "17841400000000020", families=1)
    busy_ids = queue_automated(app, busy, 250, "busy")
    other_ids = queue_automated(app, quiet, 5, "other")
    with thread_worker(app), sweeping(app):
        wait_for(lambda: sum(r.status == "sent" for r in rows(db, busy_ids)) == 200, timeout=180)
        wait_for(lambda: all(r.status == "sent" for r in rows(db, other_ids)), timeout=60)
        wait_for(
            lambda: sum(r.status == "pending" and bool(r.last_error) for r in rows(db, busy_ids)) == 50,
            timeout=60,
        )
        time.sleep(0.5)  # a send over the limit would land now
    by_account = {
        a: sum(s["account"] == a for s in graph.sent) for a in ("17841400000000010", "17841400000000020")
    }
    assert by_account == {"17841400000000010": 200, "17841400000000020": 5}
    held = [r for r in rows(db, busy_ids) if r.status != "sent"]
    assert {r.status for r in held} == {"pending"} and all(r.attempts == 0 for r in held)
    assert "instagram rate limit (200 per 1 hour)" in held[0].last_error
    with db.unit_of_work() as session:
        window = session.get(ProviderSendWindow, (tenant.id, "instagram"))
    next_hour = window.window_start + timedelta(hours=1)
    assert window.sent == 200 and {r.next_attempt_at for r in held} == {next_hour}
    # The hour passes: the held ones go in the new window (run with the `now` of their due time).
    job = held_job(db, held[0].id)
    assert job.due_at == next_hour
    assert run(app, job, job.due_at) == "done"
    wait_for(lambda: rows(db, [held[0].id])[0].status == "sent", timeout=30)
    assert sum(s["account"] == "17841400000000010" for s in graph.sent) == 201
