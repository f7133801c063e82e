"""One bad event does not lose its neighbours: a consumer failing on one event of a transaction
leaves the others processed once, and only the bad one ends dead, for an admin to retry. A real
`celery worker` subprocess (FOLLOWUP_PLUGINS loads the test consumer), real Redis and database."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.platform import clock
from app.platform.audit.models import AuditEvent
from app.platform.events import recovery
from app.platform.events import service as events
from app.platform.events.models import DomainEvent
from app.platform.scheduling import runner
from app.platform.scheduling.models import ScheduledJob
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.reliability.handlers import CONSUMER_FIXED, EVENT_EFFECT, TestEvent
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

pytestmark = pytest.mark.reliability
GRACE = timedelta(seconds=60)


def emit_together(app, db, clinic_id: int, payloads: list[dict]) -> list[int]:
    """The events of one transaction (one processing job naming them all); their ids."""
    with app.app_context(), db.unit_of_work() as session:
        emitted = [
            events.emit(
                session=session,
                event=TestEvent(**payload),
                subject=events.Subject(clinic_id, "lead", index + 1),
                now=clock.now(),
            )
            for index, payload in enumerate(payloads)
        ]
        session.flush()
        return [event.id for event in emitted]


def effects_by_event(db) -> dict[int, int]:
    with db.unit_of_work() as session:
        rows = session.execute(
            sa.select(AuditEvent.subject_id, sa.func.count())
            .where(AuditEvent.action == EVENT_EFFECT)
            .group_by(AuditEvent.subject_id)
        ).all()
    return {int(subject_id): count for subject_id, count in rows}


def job_by_key(db, key: str) -> ScheduledJob | None:
    with db.unit_of_work() as session:
        return session.scalars(sa.select(ScheduledJob).where(ScheduledJob.dedupe_key == key)).first()


def processed(db, event_ids: list[int]) -> set[int]:
    with db.unit_of_work() as session:
        return set(
            session.scalars(
                sa.select(DomainEvent.id).where(
                    DomainEvent.id.in_(event_ids), DomainEvent.processed_at.is_not(None)
                )
            )
        )


def test_a_consumer_failing_on_one_event_loses_none_of_the_others_and_an_admin_retries_it(
    app, client, db, redis, tenant, fast
):
    settings = app.config["SETTINGS"]
    redis.flushdb()  # no message or flag left over from another test
    payloads = [{"bad": index == 2} for index in range(5)]
    with subprocess_worker(settings, name="events", **WORKER_ENV), sweeping(app):
        wait_until_consuming(app, "events")
        ids = emit_together(app, db, tenant.id, payloads)
        bad, good = ids[2], [event_id for event_id in ids if event_id != ids[2]]

        def bad_is_dead():
            row = job_by_key(db, f"events:{bad}:alone")
            return row is not None and row.status == "dead"

        wait_for(lambda: processed(db, good) == set(good) and bad_is_dead(), timeout=60, interval=0.2)
        assert effects_by_event(db) == dict.fromkeys(good, 1)
        assert processed(db, [bad]) == set()
        dead = job_by_key(db, f"events:{bad}:alone")
        assert dead.attempts == fast.job_max_attempts and "cannot take event" in dead.last_error

        # The consumer is fixed; the admin sees the dead job and retries it.
        headers = tenant.headers("clinic_admin")
        listed = client.get("/api/jobs?status=dead", headers=headers).get_json()
        assert [item["id"] for item in listed] == [dead.id]
        redis.set(CONSUMER_FIXED, "1")
        retried = client.post(f"/api/jobs/{dead.id}/retry", headers=headers)
        assert retried.status_code == 200
        wait_for(lambda: processed(db, [bad]) == {bad}, timeout=30, interval=0.1)
        wait_for(lambda: job_by_key(db, f"events:{bad}:alone").status == "done", timeout=30, interval=0.1)
    assert effects_by_event(db) == dict.fromkeys(ids, 1)
    original = job_by_key(db, f"events:{ids[0]}")
    assert original.status == "done"


def test_the_sweep_gives_a_job_to_an_unprocessed_event_no_job_names_and_none_to_the_others(
    app, db, redis, tenant, fast
):
    redis.flushdb()
    [kept] = emit_together(app, db, tenant.id, [{}])
    [lost] = emit_together(app, db, tenant.id, [{}])
    with app.app_context(), db.unit_of_work() as session:  # the lost event's job is gone
        session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.dedupe_key == f"events:{lost}")
            .values(status="cancelled")
        )
    later = clock.now() + GRACE + timedelta(seconds=1)
    with app.app_context():
        with db.unit_of_work() as session:
            assert recovery.requeue_unprocessed(session=session, now=clock.now(), grace=GRACE, limit=10) == 0
        requeued = []
        for _ in range(2):  # a second run (or a second beat) adds nothing; pages of one event
            with db.unit_of_work() as session:
                requeued.append(
                    recovery.requeue_unprocessed(session=session, now=later, grace=GRACE, limit=1)
                )
        assert requeued == [1, 0]
        swept = job_by_key(db, f"events:{lost}:alone")
        assert swept is not None and swept.status in ("pending", "dispatched")
        assert job_by_key(db, f"events:{kept}:alone") is None  # its own job will take it
        assert runner.run_job(db=db, job_id=swept.id, now=later) == "done"
    assert processed(db, [lost, kept]) == {lost}
    assert effects_by_event(db) == {lost: 1}


def test_an_event_that_kills_its_worker_loses_none_of_the_others(app, db, redis, tenant, fast):
    settings = app.config["SETTINGS"]
    redis.flushdb()
    payloads = [{"kills": index == 1} for index in range(4)]
    with subprocess_worker(settings, name="events", **WORKER_ENV), sweeping(app):
        wait_until_consuming(app, "events")
        ids = emit_together(app, db, tenant.id, payloads)
        poison, good = ids[1], [event_id for event_id in ids if event_id != ids[1]]

        def poison_is_dead():
            row = job_by_key(db, f"events:{poison}:alone")
            return row is not None and row.status == "dead"

        wait_for(lambda: processed(db, good) == set(good) and poison_is_dead(), timeout=120, interval=0.2)
    assert effects_by_event(db) == dict.fromkeys(good, 1)
    assert processed(db, [poison]) == set()
