"""Publishing ledger rows to the broker: `scheduling.run_job(job_id)` with eta=due_at on the kind's queue.

The web process publishes without importing workers/: each Flask app keeps one `Dispatcher` (in
app.extensions) holding a sender-only Celery instance built from the same settings as the workers'.
Many rows at once (a sweep, a bulk schedule) go out in one Redis pipeline (kombu `Producer.batch()`).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import redis
import sqlalchemy as sa
from celery import Celery
from celery.utils.nodenames import anon_nodename

from app.celery_config import celery_config
from app.scheduling.models import DISPATCHED, PENDING, ScheduledJob

log = logging.getLogger(__name__)

RUN_JOB = "scheduling.run_job"
PIPELINE_SIZE = 1000  # Redis commands per pipeline flush (a message is 1-2 commands plus its sent event)


@dataclass(frozen=True)
class Message:
    """One delivery of a ledger row: run job `job_id` on `queue`, not before `eta` (None: now)."""

    job_id: int
    queue: str
    eta: datetime | None = None


def message_for(job_id: int, queue: str, due_at: datetime, now: datetime) -> Message:
    """A row already due is sent without an eta, so the worker runs it at once instead of via its timer."""
    return Message(job_id, queue, due_at if due_at > now else None)


class Dispatcher:
    """Sends `scheduling.run_job` messages by name through a sender-only Celery app (lazily connected)."""

    def __init__(self, settings):
        self._settings = settings
        self._celery: Celery | None = None
        self._redis_wire: RedisWire | None = None
        self._lock = threading.Lock()

    @property
    def celery(self) -> Celery:
        if self._celery is None:
            with self._lock:
                if self._celery is None:
                    sender = Celery("followup-sender", set_as_current=False)
                    config = celery_config(self._settings)
                    # No task-sent event per message: it costs about a third of the publish rate in
                    # mass dispatch, and what is pending is the ledger's to show (GET /api/jobs);
                    # workers still send received/started/succeeded events for Flower.
                    config["task_send_sent_event"] = False
                    sender.config_from_object(config)
                    self._celery = sender
        return self._celery

    def publish(self, messages: Sequence[Message]) -> None:
        """Publish every message; one is sent directly, several through one pipelined producer batch."""
        if not messages:
            return
        celery = self.celery
        if len(messages) == 1:
            if self._wire is not None:
                self._wire.send(messages[0])
            else:
                self._send(celery, messages[0], producer=None)
            return
        # In a pipelined batch nothing reaches Redis before the flush, so a per-message publish retry
        # has nothing to retry (a failed flush raises, and the caller hands the rows back); queues
        # are declared once per channel anyway. Dropping both about doubles the publish rate.
        with celery.producer_or_acquire() as producer, producer.batch(max_size=PIPELINE_SIZE):
            for message in messages:
                self._send(celery, message, producer=producer, retry=False, declare=[])

    @staticmethod
    def _send(celery: Celery, message: Message, producer, **options) -> None:
        celery.send_task(
            RUN_JOB, args=[message.job_id], queue=message.queue, eta=message.eta, producer=producer, **options
        )

    @property
    def _wire(self) -> RedisWire | None:
        if self._redis_wire is None and self._settings.broker_is_redis:
            celery = self.celery  # outside the lock: it takes the lock itself
            with self._lock:
                if self._redis_wire is None:
                    self._redis_wire = RedisWire(celery)
        return self._redis_wire

    def check_broker(self) -> None:
        """Connect to the broker once (any transport), or raise: what /readyz reports."""
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    def reset_after_fork(self) -> None:
        """A forked child builds its own connections (the parent's sockets are not ours to close)."""
        self._celery = None
        self._redis_wire = None


class RedisWire:
    """Sends one `scheduling.run_job` message by writing it to the queue's Redis list directly.

    Why: through Celery and kombu one message costs about 0.25 ms of CPU, most of it kombu creating
    a redis client per message (redis-py builds its response-callback table each time); a web
    request that captures a lead publishes one. This writes the same message (Celery's task
    protocol 2, in the envelope kombu's Redis transport reads; checked against Celery's own in
    tests/scheduling/test_wire.py) with one LPUSH on a kept client: about a fifth of the CPU.
    Only for the default priority and a queue's direct exchange, which is how this project's
    queues are set up (app/celery_config.py). Several messages go through Celery's pipelined batch.
    """

    def __init__(self, celery: Celery):
        self._redis = redis.Redis.from_url(celery.conf.broker_url)
        self._origin = anon_nodename()
        self._reply_to = celery.thread_oid

    def send(self, message: Message) -> None:
        self._redis.lpush(message.queue, self.envelope(message, task_id=str(uuid.uuid4())))

    def envelope(self, message: Message, *, task_id: str) -> str:
        args = [message.job_id]
        body = json.dumps([args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
        headers = {
            "lang": "py",
            "task": RUN_JOB,
            "id": task_id,
            "shadow": None,
            "eta": None if message.eta is None else message.eta.isoformat(),
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": repr(args),
            "kwargsrepr": "{}",
            "origin": self._origin,
            "ignore_result": None,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        }
        properties = {
            "correlation_id": task_id,
            "reply_to": self._reply_to,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": message.queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        }
        return json.dumps(
            {
                "body": base64.b64encode(body.encode()).decode(),
                "content-encoding": "utf-8",
                "content-type": "application/json",
                "headers": headers,
                "properties": properties,
            }
        )


def publish_claimed(*, db, dispatcher: Dispatcher, rows: Sequence, now: datetime) -> bool:
    """Publish rows just marked dispatched at `now`; if publishing fails, hand them back as pending.

    `rows` have `id`, `queue`, `due_at`. Returns whether everything was published. On failure (Redis
    down) the rows go back to pending so the promote sweep retries them, instead of waiting out the
    redispatch grace; a row some message did reach is harmless: its run claims it once.
    """
    if not rows:
        return True
    try:
        dispatcher.publish([message_for(r.id, r.queue, r.due_at, now) for r in rows])
        return True
    except Exception:
        log.exception("publishing %d job(s) failed; handing them back to the sweep", len(rows))
    try:
        with db.unit_of_work() as session:
            release(session=session, job_ids=[r.id for r in rows], dispatched_at=now)
    except Exception:
        log.exception("could not hand %d job(s) back; the redispatch sweep will resend them", len(rows))
    return False


def release(*, session, job_ids: Sequence[int], dispatched_at: datetime) -> int:
    """dispatched → pending, only for rows still carrying this dispatch (compare-and-set)."""
    result = session.execute(
        sa.update(ScheduledJob)
        .where(
            ScheduledJob.id.in_(list(job_ids)),
            ScheduledJob.status == DISPATCHED,
            ScheduledJob.dispatched_at == dispatched_at,
        )
        .values(status=PENDING, dispatched_at=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
