"""The web process publishes run_job messages through Celery (one pooled producer; a pipelined
batch for many): each is run once by a real worker, many go in order."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from app.platform import clock
from app.platform.scheduling import sweeps
from app.platform.scheduling.dispatch import Dispatcher, Message
from tests.conftest import test_settings
from tests.ledger import effects, queued_job_ids, schedule, schedule_many
from tests.ledger import job as ledger_job
from tests.reliability.handlers import EFFECT
from tests.workers import thread_worker, wait_for

VARYING = {"id", "root_id", "correlation_id", "delivery_tag", "origin", "reply_to"}


def _without_ids(envelope: dict) -> dict:
    """The envelope with its per-message ids blanked and its body decoded."""
    body = json.loads(base64.b64decode(envelope.pop("body")))
    headers = {k: v for k, v in envelope.pop("headers").items() if k not in VARYING}
    properties = {k: v for k, v in envelope.pop("properties").items() if k not in VARYING}
    return {**envelope, "body": body, "headers": headers, "properties": properties}


def test_a_job_sent_by_wire_is_run_once_by_a_real_worker(app, db, redis, tenant):
    now = clock.now()
    with app.app_context(), db.unit_of_work() as session:
        job_id = schedule(
            session=session,
            kind=EFFECT,
            due_at=now,
            dedupe_key="wire-roundtrip",
            now=now,
            clinic_id=tenant.id,
            subject_type="test",
            subject_id=1,
        ).id
    # Published after the commit (a single message).
    assert queued_job_ids(redis, "realtime") == [job_id]
    with thread_worker(app):
        wait_for(lambda: effects(db) == (1, 1))
    assert ledger_job(db, job_id).status == "done"


def test_many_messages_go_in_one_pipeline_as_celery_writes_them_and_in_order(
    migrated_database, redis_url, redis
):
    dispatcher = Dispatcher(test_settings(migrated_database, redis_url))
    eta = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    messages = [
        Message(
            job_id=i, queue="realtime" if i % 3 else "notifications", eta=eta, kind="k", subject=f"lead:{i}"
        )
        for i in range(1, 2501)  # more than one LPUSH of PIPELINE_SIZE messages per queue
    ]
    redis.delete("realtime", "notifications")
    dispatcher._send(dispatcher.celery, messages[0], producer=None)  # one through Celery, to compare
    by_celery = json.loads(redis.rpop(messages[0].queue))
    dispatcher.publish(messages)  # several: one pipelined producer batch
    for queue in ("realtime", "notifications"):
        popped = []
        while (raw := redis.rpop(queue)) is not None:  # as a worker takes them: the oldest first
            popped.append(json.loads(raw))
        expected = [m.job_id for m in messages if m.queue == queue]
        assert [json.loads(base64.b64decode(e["body"]))[0][0] for e in popped] == expected
        if queue == messages[0].queue:
            assert _without_ids(popped[0]) == _without_ids(by_celery)


def test_jobs_promoted_together_are_run_once_each_by_a_real_worker(app, db, redis, tenant):
    now = clock.now()
    # Scheduled longer ago than the horizon, so stored pending: every row waits for the promote sweep.
    long_ago = now - timedelta(seconds=app.config["SETTINGS"].schedule_horizon_seconds + 1)
    session = db.new_unit()
    try:
        with app.app_context():
            schedule_many(
                session=session,
                jobs=[
                    {"kind": EFFECT, "due_at": now, "dedupe_key": f"wire-many-{i}", "clinic_id": tenant.id}
                    for i in range(20)
                ],
                now=long_ago,
            )
        session.commit()
    finally:
        session.close()
    with app.app_context():  # one sweep claims them all and publishes them together (publish_many)
        assert sweeps.promote_due(db=db, now=now) == 20
    assert len(queued_job_ids(redis, "realtime")) == 20
    with thread_worker(app):
        wait_for(lambda: effects(db) == (20, 20))
