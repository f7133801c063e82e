"""Loaded into the benchmark's workers through FOLLOWUP_PLUGINS: a trivial database handler for the
ledger, and a plain Celery no-op task to compare it with."""

import sqlalchemy as sa
from celery import shared_task

from app.platform.scheduling import JobKind

TOUCH = "bench.touch"
NOOP = "bench.noop"
BATCH = 50  # rows due together run this many to a transaction, as the app's timer kinds do


def touch(*, session, job, now) -> None:
    """A trivial database handler: one query; the claim and `done` are the job's real writes."""
    session.execute(sa.text("SELECT 1"))


JOB_KINDS = [JobKind(TOUCH, touch, batch=BATCH)]  # added to each worker's engine (app/bootstrap.py)


@shared_task(name=NOOP)
def noop() -> None:
    return None
