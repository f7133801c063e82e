"""Publishing ledger rows to the broker: `scheduling.run_job(job_id)` with eta=due_at on the kind's queue.

The web process publishes without importing workers/: each Flask app keeps one `Dispatcher` (in
app.extensions) holding a sender-only Celery instance built from the same settings as the workers'.
Many rows at once (a sweep, a bulk schedule) go out in one Redis pipeline (kombu `Producer.batch()`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from celery import Celery

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

    def reset_after_fork(self) -> None:
        """A forked child builds its own connections (the parent's sockets are not ours to close)."""
        self._celery = None


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
