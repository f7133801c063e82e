"""Publishing ledger rows to the broker: `scheduling.run_job(job_id)` with eta=due_at on the kind's queue.

The web process publishes without importing workers/: each Flask app keeps one `Dispatcher` (in
app.extensions) holding a sender-only Celery instance built from the same settings as the workers'.
Many rows at once (a sweep, a bulk schedule) go out in one Redis pipeline (`RedisWire.publish_many`; on
another broker kombu's `Producer.batch()`).
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

import sqlalchemy as sa
from celery import Celery
from celery.utils.nodenames import anon_nodename

from app.celery_config import celery_config
from app.redis_clients import redis_client
from app.scheduling import registry
from app.scheduling.models import DISPATCHED, PENDING, ScheduledJob

log = logging.getLogger(__name__)

RUN_JOB = "scheduling.run_job"
PIPELINE_SIZE = 1000  # messages per pipeline flush (kombu) or per LPUSH (RedisWire.publish_many)


@dataclass(frozen=True)
class Message:
    """One delivery of a ledger row: run job `job_id` on `queue`, not before `eta` (None: now).

    `kind` and `subject` are what ops see in Flower: the message's name is the job's kind (Celery's
    `shadow` name; the task run is still `scheduling.run_job`) and its arguments carry the subject
    (`lead:7`), so `task.reminder` failures can be filtered there. The ledger row stays the truth:
    the worker reads neither.

    `batch`: the other rows of a kind that runs in batches, due now, delivered with `job_id` and
    run with it in one transaction (runner.run_batch); its `subject` is then None.
    """

    job_id: int
    queue: str
    eta: datetime | None = None
    kind: str | None = None
    subject: str | None = None
    batch: tuple[int, ...] = ()

    @property
    def kwargs(self) -> dict:
        if self.batch:
            return {"subject": self.subject, "batch": list(self.batch)}
        return {"subject": self.subject}


def subject_of(subject_type: str | None, subject_id: int | None) -> str | None:
    """`lead:7`, as the API writes a job's subject."""
    return None if subject_type is None else f"{subject_type}:{subject_id}"


def message_for(row, now: datetime) -> Message:
    """The message for a row (`id`, `queue`, `due_at`, `kind`, `subject_type`, `subject_id`). A row
    already due is sent without an eta, so the worker runs it at once instead of via its timer."""
    eta = row.due_at if row.due_at > now else None
    return Message(row.id, row.queue, eta, row.kind, subject_of(row.subject_type, row.subject_id))


def messages_for(rows: Sequence, now: datetime) -> list[Message]:
    """The messages for rows just marked dispatched: one a row (`message_for`), except that the rows
    already due of a kind registered with `batch` go together, that many to a message.

    Only rows already due: a row with an eta keeps its own message, so it runs at its time and no
    row waits for another's. Each row is in one message, as with one a row: a lost one leaves its
    rows to the redispatch sweep, a duplicate finds them done.
    """
    messages, together = [], {}
    for row in rows:
        kind = registry.kind_of(row.kind)
        if kind is not None and kind.batch > 1 and not kind.drain and row.due_at <= now:
            together.setdefault(row.kind, []).append(row)
        else:
            messages.append(message_for(row, now))
    for kind, due in together.items():
        size = registry.kind_of(kind).batch
        for start in range(0, len(due), size):
            first, *others = due[start : start + size]
            if not others:
                messages.append(message_for(first, now))
            else:
                messages.append(Message(first.id, first.queue, None, kind, batch=tuple(r.id for r in others)))
    return messages


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
                    config.update(_bounded_publish(self._settings, config))
                    sender.config_from_object(config)
                    self._celery = sender
        return self._celery

    def publish(self, messages: Sequence[Message]) -> None:
        """Publish every message: on a Redis broker written directly (several in one pipeline),
        elsewhere through Celery (several in one pipelined producer batch)."""
        if not messages:
            return
        celery = self.celery
        wire = self._wire
        if wire is not None:
            if len(messages) == 1:
                wire.send(messages[0])
            else:
                wire.publish_many(messages)
            return
        if len(messages) == 1:
            self._send(celery, messages[0], producer=None)
            return
        # In a pipelined batch nothing reaches the broker before the flush, so a per-message publish
        # retry has nothing to retry (a failed flush raises, and the caller hands the rows back);
        # queues are declared once per channel anyway. Dropping both about doubles the publish rate.
        with celery.producer_or_acquire() as producer, producer.batch(max_size=PIPELINE_SIZE):
            for message in messages:
                self._send(celery, message, producer=producer, retry=False, declare=[])

    @staticmethod
    def _send(celery: Celery, message: Message, producer, **options) -> None:
        celery.send_task(
            RUN_JOB,
            args=[message.job_id],
            kwargs=message.kwargs,
            shadow=message.kind,
            queue=message.queue,
            eta=message.eta,
            producer=producer,
            **options,
        )

    @property
    def _wire(self) -> RedisWire | None:
        if self._redis_wire is None and self._settings.broker_is_redis:
            celery = self.celery  # outside the lock: it takes the lock itself
            with self._lock:
                if self._redis_wire is None:
                    self._redis_wire = RedisWire(celery, self._settings)
        return self._redis_wire

    def check_broker(self) -> None:
        """Connect to the broker once (any transport), or raise: what /readyz reports."""
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    def reset_after_fork(self) -> None:
        """A forked child builds its own connections (the parent's sockets are not ours to close)."""
        self._celery = None
        self._redis_wire = None


def _bounded_publish(settings, config: dict) -> dict:
    """A publish through kombu waits for Redis no longer than RedisWire does (app/redis_clients.py):
    the same socket timeouts, and the same number of retries after a failed connection."""
    transport = {
        **config["broker_transport_options"],
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": settings.redis_socket_timeout,
    }
    return {
        "broker_transport_options": transport,
        "broker_connection_timeout": settings.redis_connect_timeout,
        "task_publish_retry_policy": {
            "max_retries": settings.redis_retries,
            "interval_start": 0.05,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
    }


class RedisWire:
    """Sends one `scheduling.run_job` message by writing it to the queue's Redis list directly.

    Why: through Celery and kombu each message pays for kombu creating a redis client (redis-py
    builds its response-callback table each time), and a web request that captures a lead
    publishes one. This writes the same message (Celery's task protocol 2, in the envelope kombu's
    Redis transport reads; checked against Celery's own in tests/scheduling/test_wire.py) with one
    LPUSH on a kept client, a small part of that cost.
    Only for the default priority and a queue's direct exchange, which is how this project's
    queues are set up (app/celery_config.py). Several messages go in one Redis pipeline (`publish_many`).
    """

    def __init__(self, celery: Celery, settings):
        # The app's timeouts and retry policy: a stalled broker costs the request after the commit
        # one socket timeout, then the row goes back to the promote sweep (publish_claimed).
        self._redis = redis_client(celery.conf.broker_url, settings)
        self._origin = anon_nodename()
        self._reply_to = celery.thread_oid

    def send(self, message: Message) -> None:
        self._redis.lpush(message.queue, self.envelope(message, task_id=str(uuid.uuid4())))

    def publish_many(self, messages: Sequence[Message]) -> None:
        """Every message in one pipeline of LPUSHes, each carrying up to PIPELINE_SIZE messages of one
        queue, in order (a worker pops the oldest first). Through kombu's batch each message costs a
        client-side publish of its own; here the cost is building the envelopes."""
        by_queue: dict[str, list[str]] = {}
        for message in messages:
            by_queue.setdefault(message.queue, []).append(self.envelope(message, task_id=str(uuid.uuid4())))
        with self._redis.pipeline(transaction=False) as pipe:
            for queue, envelopes in by_queue.items():
                for start in range(0, len(envelopes), PIPELINE_SIZE):
                    pipe.lpush(queue, *envelopes[start : start + PIPELINE_SIZE])
            pipe.execute()

    def envelope(self, message: Message, *, task_id: str) -> str:
        args, kwargs = [message.job_id], message.kwargs
        body = json.dumps([args, kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
        headers = {
            "lang": "py",
            "task": RUN_JOB,
            "id": task_id,
            "shadow": message.kind,
            "eta": None if message.eta is None else message.eta.isoformat(),
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": repr(args),
            "kwargsrepr": repr(kwargs),
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

    `rows` have what `message_for` reads. Returns whether everything was published. On failure (Redis
    down) the rows go back to pending so the promote sweep retries them, instead of waiting out the
    redispatch grace; a row some message did reach is harmless: its run claims it once.
    """
    if not rows:
        return True
    try:
        dispatcher.publish(messages_for(rows, now))
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
