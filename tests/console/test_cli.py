"""`followup notifications retry`, `followup jobs retry`, `followup webhooks redeliver`: the console's
filters from the command line, run as an operator runs them (a process of its own)."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from app.domains.outbound.models import Notification
from app.platform import clock
from app.platform.audit.models import AuditEvent
from app.platform.scheduling.models import ScheduledJob
from tests import ledger
from tests.console.test_console_pages import set_status
from tests.outbound.kit import queue_emails
from tests.workers import PROJECT_ROOT, worker_env


def followup(app, *args: str, answer: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=PROJECT_ROOT,
        env=worker_env(app.config["SETTINGS"]),
        input=answer,
        capture_output=True,
        text=True,
        timeout=120,
    )


def statuses(db, ids):
    with db.unit_of_work() as session:
        return dict(
            session.execute(
                sa.select(Notification.id, Notification.status).where(Notification.id.in_(ids))
            ).all()
        )


def test_notifications_retry_prints_what_it_touches_asks_and_retries(app, db, tenant, make_tenant):
    refused, timed_out, sent, unknown = queue_emails(app, tenant, 4)
    (other,) = queue_emails(app, make_tenant("Other"), 1, prefix="o")
    set_status(db, [refused, other], "dead", last_error="Connection refused")
    set_status(db, [timed_out], "dead", last_error="timed out")
    set_status(db, [sent], "sent")
    # Matches the filter too, but its outcome is unknown: listed as left out, never retried in bulk.
    set_status(
        db, [unknown], "unknown", last_error="outcome unknown, may already have reached the lead: refused"
    )
    args = ("notifications", "retry", "--clinic", str(tenant.id), "--error", "refused")

    declined = followup(app, *args, answer="n\n")
    assert declined.returncode == 1, declined.stderr
    assert "1 notifications of clinic" in declined.stdout and f"#{refused} dead" in declined.stdout
    assert "may already have reached the lead" in declined.stdout and "Nothing done." in declined.stdout
    assert statuses(db, [refused])[refused] == "dead"

    done = followup(app, *args, "--yes")
    assert done.returncode == 0, done.stderr
    assert "1 queued again." in done.stdout
    assert statuses(db, [refused, timed_out, other, unknown]) == {
        refused: "pending", timed_out: "dead", other: "dead", unknown: "unknown",
    }  # fmt: skip
    with db.unit_of_work() as session:
        [audit] = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "notification.retry")
        ).all()
        assert (int(audit.subject_id), audit.actor) == (refused, "cli")

    bad = followup(app, "notifications", "retry", "--clinic", str(tenant.id), "--channel", "pigeon")
    assert bad.returncode == 2 and "--channel" in bad.stderr
    last_day = followup(app, "notifications", "retry", "--clinic", str(tenant.id), "--until", "9999-12-31")
    assert last_day.returncode == 2 and "--until" in last_day.stderr and "Traceback" not in last_day.stderr


def test_jobs_retry_runs_dead_jobs_of_a_kind_again(app, db, tenant):
    now = clock.now()
    with db.unit_of_work() as session:
        job = ledger.schedule(
            session=session, kind="notification.deliver", due_at=now, dedupe_key="cli:dead", now=now,
            clinic_id=tenant.id,
        )  # fmt: skip
        job_id = job.id
    with db.unit_of_work() as session:
        session.execute(
            sa.update(ScheduledJob).where(ScheduledJob.id == job_id).values(status="dead", last_error="boom")
        )
    done = followup(
        app, "jobs", "retry", "--clinic", str(tenant.id), "--kind", "notification.deliver", "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert f"#{job_id} dead notification.deliver" in done.stdout and "1 queued again." in done.stdout
    with db.unit_of_work() as session:
        assert session.get(ScheduledJob, job_id).status in ("pending", "dispatched")


def test_webhooks_redeliver_with_nothing_failed_says_so(app, tenant):
    done = followup(app, "webhooks", "redeliver", "--clinic", str(tenant.id))
    assert done.returncode == 0 and "0 webhooks of clinic" in done.stdout
