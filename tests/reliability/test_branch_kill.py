"""A two-path sequence (wait up to 2 days for a click: clicked -> an SMS, not -> a call task) with
real workers, the first killed with SIGKILL between the wait and the branch: each family gets its
path's message or task exactly once, and the other outcome arriving later changes nothing."""

import os
import signal
from datetime import timedelta

import sqlalchemy as sa

from app.domains.automation.steps import SEQUENCE_STEP_KIND
from app.domains.engagement.events import LinkClicked
from app.platform import clock
from app.platform.events.consumers import PROCESS_KINDS
from app.platform.scheduling.models import ScheduledJob
from tests.automation.outreachkit import configure_clinic, enroll, enrollments, lead_with, messages_to
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.sequences.branchkit import (
    call_tasks_of,
    emit_engagement,
    emit_engagement_in,
    two_path_sequence,
    waits_of,
)
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

SLOW_ENV = {**WORKER_ENV, "FOLLOWUP_PLUGINS": "tests.reliability.handlers,tests.reliability.slow_branch"}


def _make_due(db, job_id: int) -> None:
    with db.unit_of_work() as session:
        _make_due_in(session, job_id)


def _make_due_in(session, job_id: int) -> None:
    """The ledger's due time brought to now (two days pass): the promote sweep sends the job."""
    session.execute(sa.update(ScheduledJob).where(ScheduledJob.id == job_id).values(due_at=clock.now()))


def _branched(db, *lead_ids: int) -> bool:
    return all(waits_of(db, lead_id)[0].status == "done" for lead_id in lead_ids)


def test_each_family_gets_its_path_once_with_the_worker_killed_between_wait_and_branch(
    app, client, db, tenant, fast, tmp_path
):
    configure_clinic(client, tenant)
    clicker = lead_with(client, tenant, phone="(415) 555-2671")
    quiet = lead_with(client, tenant, phone="(415) 555-2672")
    sequence = two_path_sequence(client, tenant)
    for lead in (clicker, quiet):
        enroll(client, tenant, lead["id"], sequence["id"])
    [sent] = messages_to(db, clicker["id"])
    mark = tmp_path / "branches"
    settings = app.config["SETTINGS"]

    with (
        subprocess_worker(
            settings,
            name="branchdoomed",
            FOLLOWUP_TEST_BRANCH_MARK=str(mark),
            FOLLOWUP_TEST_BRANCH_SLEEP="30",
            **SLOW_ENV,
        ) as doomed,
        sweeping(app),
    ):
        wait_until_consuming(app, "branchdoomed")
        # Both outcomes in one commit: on SQLite a second write of this test would wait behind the
        # doomed worker's lock, held through its 30 s sleep, past the 30 s busy timeout.
        quiet_timeout = waits_of(db, quiet["id"])[0].job_id
        with db.unit_of_work() as session:
            emit_engagement_in(session, clicker["id"], LinkClicked, {"notification_id": sent.id, "link": 0})
            _make_due_in(session, quiet_timeout)
        # A branch done in the worker's transaction, not committed (the other one waiting on SQLite's
        # lock, or done too on PostgreSQL): then the kill.
        wait_for(lambda: mark.exists() and mark.read_text().split(), timeout=60, interval=0.05)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    assert not _branched(db, clicker["id"]) and not _branched(db, quiet["id"])  # rolled back with the worker
    assert [m.channel for m in messages_to(db, clicker["id"])] == ["email"]
    assert call_tasks_of(db, quiet["id"]) == []

    with subprocess_worker(settings, name="branchrescuer", **WORKER_ENV), sweeping(app):
        wait_until_consuming(app, "branchrescuer")
        wait_for(lambda: _branched(db, clicker["id"], quiet["id"]), timeout=120, interval=0.2)
        # The other outcome, late: the clicker's timeout comes due, the quiet family clicks after all.
        _make_due(db, waits_of(db, clicker["id"])[0].job_id)
        [theirs] = messages_to(db, quiet["id"])
        emit_engagement(db, quiet["id"], LinkClicked, {"notification_id": theirs.id, "link": 0})
        emit_engagement(db, clicker["id"], LinkClicked, {"notification_id": sent.id, "link": 0})
        wait_for(lambda: _settled(db), timeout=60, interval=0.2)

    assert [m.channel for m in messages_to(db, clicker["id"])] == ["email", "sms"]
    assert call_tasks_of(db, clicker["id"]) == []
    assert [m.channel for m in messages_to(db, quiet["id"])] == ["email"]
    assert len(call_tasks_of(db, quiet["id"])) == 1
    assert [w.result["outcome"] for w in (waits_of(db, clicker["id"])[0], waits_of(db, quiet["id"])[0])] == [
        "link_clicked",
        "timeout",
    ]
    [clicked_path] = enrollments(client, tenant, clicker["id"])
    [quiet_path] = enrollments(client, tenant, quiet["id"])
    assert [(p["key"], (p["via"] or {}).get("outcome")) for p in clicked_path["path"]] == [
        ("intro", None),
        ("text", "link_clicked"),
    ]
    assert [(p["key"], (p["via"] or {}).get("outcome")) for p in quiet_path["path"]] == [
        ("intro", None),
        ("call", "timeout"),
    ]


def _settled(db) -> bool:
    """No events processing or sequence step left to run now (the clinic's later timers aside)."""
    with db.unit_of_work() as session:
        return not session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledJob)
            .where(
                ScheduledJob.kind.in_((*PROCESS_KINDS, SEQUENCE_STEP_KIND)),
                ScheduledJob.status.in_(("pending", "dispatched")),
                ScheduledJob.due_at < clock.now() + timedelta(minutes=1),
            )
        )
