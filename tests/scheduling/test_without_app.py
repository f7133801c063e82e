"""The ledger's use cases with explicit wiring and no Flask app: a Database built here with its
settings, dispatcher and Redis, a plain session from it, and the clock passed in.

Before the wiring was explicit, `schedule` and `run_job` read the dispatcher, Redis and settings
from `current_app`, so each of these failed outside an app context ("Working outside of application
context"); service tests had to push one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import has_app_context

import app.domains  # noqa: F401 - every domain's job kinds, as create_app wires them
import tests.reliability.handlers  # noqa: F401 - the test.* job kinds
from app.bootstrap import bootstrap
from app.domains.auth import service as auth
from app.platform import clock
from app.platform.audit.models import AuditEvent
from app.platform.db import Database
from app.platform.redis_clients import redis_client
from app.platform.scheduling import run_job, sweeps
from app.platform.scheduling.dispatch import Dispatcher
from tests.conftest import test_settings, truncate_all
from tests.ledger import job, queued_job_ids, schedule
from tests.reliability.handlers import EFFECT


@pytest.fixture
def wired(migrated_database, redis_url):
    """What create_app builds, built by hand: no Flask app anywhere (the engine by the bootstrap)."""
    settings = test_settings(migrated_database, redis_url)
    redis = redis_client(settings.redis_url, settings)
    wiring = bootstrap(settings, plugins=settings.plugins)
    db = Database(
        settings.database_url, settings=settings, dispatcher=Dispatcher(settings), redis=redis, wiring=wiring
    )
    yield db
    truncate_all(db.engine)
    redis.flushdb()
    db.engine.dispose()


@pytest.fixture
def clinic_id(wired):
    with wired.unit_of_work() as session:
        return auth.create_clinic(
            session=session, name="No App Dental", now=clock.now(), hooks=wired.wiring.auth
        ).id


def _effects(db) -> list[int]:
    with db.unit_of_work() as session:
        return sorted(
            session.scalars(sa.select(AuditEvent.subject_id).where(AuditEvent.action == EFFECT)).all()
        )


def test_a_job_scheduled_and_run_without_an_app_is_published_once_and_takes_effect_once(wired, clinic_id):
    assert not has_app_context()
    now = clock.now()
    with wired.unit_of_work() as session:
        row = schedule(
            session=session, kind=EFFECT, due_at=now, dedupe_key="no-app", now=now, clinic_id=clinic_id
        )
    # Published after the commit through the dispatcher of the Database that opened the session.
    assert queued_job_ids(wired.redis) == [row.id]
    assert run_job(db=wired, job_id=row.id, now=now) == "done"
    assert run_job(db=wired, job_id=row.id, now=now) == "skipped"  # a second delivery does nothing
    assert _effects(wired) == [str(row.id)]
    assert job(wired, row.id).status == "done"


def test_a_job_a_handler_schedules_is_published_when_the_claim_commits(wired, clinic_id):
    now = clock.now()
    with wired.unit_of_work() as session:
        parent = schedule(
            session=session, kind="test.chain", due_at=now, dedupe_key="parent", now=now, clinic_id=clinic_id
        )
    wired.redis.delete("realtime")
    assert run_job(db=wired, job_id=parent.id, now=now) == "done"
    [child_id] = queued_job_ids(wired.redis)
    assert run_job(db=wired, job_id=child_id, now=now) == "done"
    assert _effects(wired) == sorted([str(parent.id), str(child_id)])


def test_a_failing_job_backs_off_by_the_settings_the_database_was_built_with(wired, clinic_id):
    wired.settings.job_retry_base_seconds = 3600  # beyond the horizon: back to pending, not published
    now = clock.now()
    with wired.unit_of_work() as session:
        row = schedule(
            session=session, kind="test.fails", due_at=now, dedupe_key="fails", now=now, clinic_id=clinic_id
        )
    assert run_job(db=wired, job_id=row.id, now=now) == "retrying"
    retried = job(wired, row.id)
    assert retried.status == "pending" and retried.attempts == 1
    assert now + timedelta(hours=1) <= retried.due_at <= now + timedelta(hours=1.1)
    assert _effects(wired) == []  # the failed attempt's effect rolled back


def test_the_promote_sweep_publishes_a_far_job_once_it_comes_within_the_horizon(wired, clinic_id):
    now = clock.now()
    due = now + timedelta(days=1)
    with wired.unit_of_work() as session:
        row = schedule(
            session=session, kind=EFFECT, due_at=due, dedupe_key="far", now=now, clinic_id=clinic_id
        )
    assert queued_job_ids(wired.redis) == []  # beyond the horizon: left pending for the sweep
    assert sweeps.promote_due(db=wired, now=now) == 0
    assert sweeps.promote_due(db=wired, now=due - timedelta(seconds=1)) == 1
    assert queued_job_ids(wired.redis) == [row.id]
    assert run_job(db=wired, job_id=row.id, now=due) == "done"
    assert (
        # 40 days on: the row's whole month (PostgreSQL's partition) is past the retention too.
        sweeps.purge_done(db=wired, now=due + timedelta(days=wired.settings.purge_done_after_days + 40)) == 1
    )
