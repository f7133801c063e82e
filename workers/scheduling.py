"""The job ledger's tasks: run one job, and the sweeps beat calls. Ids in, one service call."""

from celery import shared_task

from app import clock
from app.db import get_db
from app.scheduling import runner, sweeps


@shared_task(name="scheduling.run_job", acks_late=True, bind=True)
def run_job(self, job_id: int, subject: str | None = None, batch: list[int] | None = None) -> str:
    # `subject` (and the message's shadow name, the job's kind) are there for Flower; the row is the truth.
    # The clock too: a draining kind's delivery goes on to run the kind's other due rows. `batch`: the
    # message's other rows, run with this one (a kind registered with `batch`). The queue it came
    # from: bulk work delivered off the realtime queue may step aside for a new lead's.
    queue = (self.request.delivery_info or {}).get("routing_key")
    background = queue is not None and queue != "realtime"
    return runner.run_job(
        db=get_db(), job_id=job_id, now=clock.now(), clock=clock.now, batch=batch or (), background=background
    )


@shared_task(name="scheduling.promote_due")
def promote_due() -> int:
    return sweeps.promote_due(db=get_db(), now=clock.now())


@shared_task(name="scheduling.redispatch_stale")
def redispatch_stale() -> int:
    return sweeps.redispatch_stale(db=get_db(), now=clock.now())


@shared_task(name="scheduling.purge_done")
def purge_done() -> int:
    return sweeps.purge_done(db=get_db(), now=clock.now())
