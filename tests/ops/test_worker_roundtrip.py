"""A real round trip: a task goes through Redis to a real worker, which writes to the database."""

import sqlalchemy as sa

from app.domains.ops.models import Heartbeat
from tests.workers import subprocess_worker, wait_for


def _heartbeat_named(db, name):
    with db.unit_of_work() as session:
        return session.scalar(sa.select(Heartbeat).where(Heartbeat.name == name))


def test_task_through_redis_to_an_in_process_worker_changes_the_database(celery_app, celery_worker, db):
    # Celery's embedded worker (the celery_worker fixture, celery.contrib.pytest) on the real Redis.
    celery_app.send_task("ops.heartbeat", kwargs={"name": "roundtrip-thread"}, queue="realtime")
    beat = wait_for(lambda: _heartbeat_named(db, "roundtrip-thread"))
    assert beat.at is not None


def test_task_through_redis_to_a_worker_process_changes_the_database(app, db):
    from workers.celery_app import worker_app

    celery = worker_app(app)
    with subprocess_worker(app.config["SETTINGS"]):
        celery.send_task("ops.heartbeat", kwargs={"name": "roundtrip-process"}, queue="realtime")
        wait_for(lambda: _heartbeat_named(db, "roundtrip-process"), timeout=60)
