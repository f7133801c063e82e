"""What a delivery's Celery task tells the monitors (Flower, Celery events) about its ledger row.

The ledger is the truth and retries by itself; the Celery task that ran a row must still say how it
went, or Flower shows every failed and dead job as SUCCESS. A row the handler failed on and that will
be tried again ends its task in RETRY, with the error and the row's next due time (no Celery retry
is sent: the ledger redispatches it); a row that gave up, or that no handler in this process knows,
ends its task in FAILURE with the error. The message is acknowledged either way (`acks_late` acks a
retried or failed task), so what the ledger does next is unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from celery.exceptions import Retry

from app.platform.scheduling.attempts import GAVE_UP, NO_HANDLER, RETRYING
from app.platform.scheduling.models import ScheduledJob


class JobFailed(Exception):
    """The ledger row's handler failed for good (dead), or no handler knows its kind."""


def told(*, db, job_id: int, outcome: str) -> str:
    """Return `outcome` for a row that ran or was left alone; raise what the monitors should show
    for a row that failed (RETRY while the ledger will try again, FAILURE once it gave up)."""
    if outcome not in (RETRYING, GAVE_UP, NO_HANDLER):
        return outcome
    with db.unit_of_work() as session:
        row = session.execute(
            sa.select(ScheduledJob.kind, ScheduledJob.last_error, ScheduledJob.due_at).where(
                ScheduledJob.id == job_id
            )
        ).one_or_none()
    kind, error, due_at = row if row is not None else ("?", None, None)
    message = f"ledger job {job_id} ({kind}) {outcome}: {error or 'no handler for its kind'}"
    if outcome == RETRYING:
        raise Retry(message, when=due_at)
    raise JobFailed(message)
