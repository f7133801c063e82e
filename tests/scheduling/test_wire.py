"""The web process writes run_job messages to Redis itself (RedisWire): the same message Celery writes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from app import clock
from app.scheduling import schedule
from app.scheduling.dispatch import Dispatcher, Message, RedisWire
from tests.conftest import test_settings
from tests.ledger import effects, queued_job_ids
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


@pytest.mark.parametrize("eta", [None, datetime(2026, 11, 22, 9, 30, tzinfo=UTC) + timedelta(days=1)])
def test_a_message_written_directly_is_the_one_celery_writes(migrated_database, redis_url, redis, eta):
    dispatcher = Dispatcher(test_settings(migrated_database, redis_url))
    message = Message(
        job_id=4711, queue="notifications", eta=eta, kind="notification.deliver", subject="notification:9"
    )
    redis.delete("notifications")
    dispatcher._send(dispatcher.celery, message, producer=None)  # through Celery and kombu
    RedisWire(dispatcher.celery, dispatcher._settings).send(message)
    written = [json.loads(raw) for raw in redis.lrange("notifications", 0, -1)]
    redis.delete("notifications")
    assert len(written) == 2
    by_celery, by_wire = written[1], written[0]  # LPUSH: the newest first
    assert (
        by_wire["headers"]["id"] == by_wire["headers"]["root_id"] == by_wire["properties"]["correlation_id"]
    )
    assert _without_ids(by_wire) == _without_ids(by_celery)


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
    # Published after the commit, by wire (a single message on a Redis broker).
    assert queued_job_ids(redis, "realtime") == [job_id]
    with thread_worker(app):
        wait_for(lambda: effects(db) == (1, 1))
    assert ledger_job(db, job_id).status == "done"
