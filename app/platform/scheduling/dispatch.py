"""Publishing ledger rows to the broker: `scheduling.run_job(job_id)` with eta=due_at on the kind's queue.

Every kind goes as that one task (workers/scheduling.py), the kind only its message's `shadow` name
(what Flower shows); the worker finds the kind's handler from the row (runner.py, registry.py).

The web process publishes without importing workers/: each Flask app keeps one `Dispatcher` (in
app.extensions) holding the app's one Celery app (`celery_init_app`, app/platform/celery_config.py),
the one its workers run tasks with. Every message goes through Celery's `send_task` on a pooled producer; many
rows at once (a sweep, a bulk schedule) in one pipelined kombu `Producer.batch()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from celery import Celery

from app.platform.celery_config import new_celery
from app.platform.scheduling.models import DISPATCHED, PENDING, ScheduledJob
from app.platform.scheduling.registry import JobKinds

log = logging.getLogger(__name__)

RUN_JOB = "scheduling.run_job"
PIPELINE_SIZE = 1000  # messages per pipeline flush (kombu's Producer.batch)


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


def messages_for(rows: Sequence, now: datetime, kinds: JobKinds) -> list[Message]:
    """The messages for rows just marked dispatched: one a row (`message_for`), except that the rows
    already due of a kind registered with `batch` go together, that many to a message.

    Only rows already due: a row with an eta keeps its own message, so it runs at its time and no
    row waits for another's. Each row is in one message, as with one a row: a lost one leaves its
    rows to the redispatch sweep, a duplicate finds them done.
    """
    messages, together = [], {}
    for row in rows:
        kind = kinds.kind_of(row.kind)
        if kind is not None and kind.batch > 1 and not kind.drain and row.due_at <= now:
            together.setdefault(row.kind, []).append(row)
        else:
            messages.append(message_for(row, now))
    for kind, due in together.items():
        size = kinds.kind_of(kind).batch
        for start in range(0, len(due), size):
            first, *others = due[start : start + size]
            if not others:
                messages.append(message_for(first, now))
            else:
                messages.append(Message(first.id, first.queue, None, kind, batch=tuple(r.id for r in others)))
    return messages


class Dispatcher:
    """Sends `scheduling.run_job` messages by name through the process's Celery app (lazily
    connected): the Flask app's (`celery_init_app`), or, for services run without one, an app built
    from `settings` when first needed."""

    def __init__(self, settings, celery: Celery | None = None):
        self._settings = settings
        self._celery = celery
        self._lock = threading.Lock()

    @property
    def celery(self) -> Celery:
        if self._celery is None:
            with self._lock:
                if self._celery is None:
                    self._celery = new_celery(self._settings)
        return self._celery

    def publish(self, messages: Sequence[Message]) -> None:
        """Publish every message through Celery, on one pooled producer; several in one pipelined
        producer batch (kombu's `Producer.batch`)."""
        if not messages:
            return
        celery = self.celery
        with celery.producer_or_acquire() as producer:
            if len(messages) == 1:
                self._send(celery, messages[0], producer=producer)
                return
            # In a pipelined batch nothing reaches the broker before the flush, so a per-message
            # publish retry has nothing to retry (a failed flush raises, and the caller hands the
            # rows back), and the queues are declared before it, once per connection (kombu counts
            # them): a message to a queue nobody declared yet (a broker just started, before any
            # worker consumes) is dropped by RabbitMQ. Dropping both per message about doubles
            # the publish rate.
            for queue in sorted({message.queue for message in messages}):
                producer.maybe_declare(celery.amqp.queues[queue])
            with producer.batch(max_size=PIPELINE_SIZE):
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

    def check_broker(self) -> None:
        """Connect to the broker once (any transport), or raise: what /readyz reports."""
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    def connect_ahead(self) -> None:
        """Connect to the broker and declare the app's queues now, in a process about to serve (a
        gunicorn worker, a Celery pool child): its first message would otherwise wait for both (on
        RabbitMQ a handshake and a declaration a queue, about 0.1-0.2 s of the first new lead's
        time: bench/automation --broker=rabbitmq --modes=cold). Celery's result backend, which
        `send_task` loads on first use, is loaded too. A broker not reachable yet is not an error
        here: the first publish connects and retries."""
        celery = self.celery
        try:
            with celery.producer_or_acquire() as producer:
                producer.connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
                for queue in celery.amqp.queues.values():
                    producer.maybe_declare(queue)
            _ = celery.backend
        except Exception as error:  # kombu and the transports raise their own kinds; none may stop a start
            log.warning("no broker connection opened ahead", extra={"data": {"error": type(error).__name__}})

    def reset_after_fork(self) -> None:
        """A forked child builds its own connections (the parent's sockets are not ours to close):
        the app forgets its pools, as Celery has it do in a child forked by multiprocessing."""
        if self._celery is not None:
            self._celery._after_fork()


def publish_claimed(*, db, dispatcher: Dispatcher, rows: Sequence, now: datetime) -> bool:
    """Publish rows just marked dispatched at `now`; if publishing fails, hand them back as pending.

    `rows` have what `message_for` reads. Returns whether everything was published. On failure (Redis
    down) the rows go back to pending so the promote sweep retries them, instead of waiting out the
    redispatch grace; a row some message did reach is harmless: its run claims it once.
    """
    if not rows:
        return True
    try:
        dispatcher.publish(messages_for(rows, now, db.job_kinds))
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
