"""The job ledger's tasks: run one job, and the sweeps beat calls. Ids in, one service call."""

from celery import shared_task

from app.platform import clock
from app.platform.app_db import get_db
from app.platform.db import database_now
from app.platform.scheduling import monitor, runner, sweeps


@shared_task(name="scheduling.run_job", acks_late=True, bind=True)
def run_job(self, job_id: int, subject: str | None = None, batch: list[int] | None = None) -> str:
    # `subject` (and the message's shadow name, the job's kind) are there for Flower; the row is the truth.
    # The clock too: a draining kind's delivery goes on to run the kind's other due rows. `batch`: the
    # message's other rows, run with this one (a kind registered with `batch`). The queue it came
    # from: bulk work delivered off the realtime queue may step aside for a new lead's, and on a queue
    # taken in turns between clinics the delivery is a turn (app/platform/scheduling/turns.py).
    queue = (self.request.delivery_info or {}).get("routing_key")
    background = queue is not None and queue != "realtime"
    # The database's clock is the time of record; this host's may be off (the broker's eta fires by it).
    db = get_db()
    db_clock = db.clock
    now = db_clock()
    delivery = runner.Delivery(
        clock=db_clock,
        batch=batch or (),
        background=background,
        host_offset=clock.now() - now,  # this host's clock read on purpose: how far off it runs
        queue=queue,
    )
    outcome = runner.run_job(db=db, job_id=job_id, now=now, delivery=delivery)
    return monitor.told(db=db, job_id=job_id, outcome=outcome)  # Flower's FAILURE or RETRY


@shared_task(name="scheduling.promote_due")
def promote_due() -> int:
    db = get_db()
    return sweeps.promote_due(db=db, now=database_now(db))


@shared_task(name="scheduling.redispatch_stale")
def redispatch_stale() -> int:
    db = get_db()
    return sweeps.redispatch_stale(db=db, now=database_now(db))


@shared_task(name="scheduling.purge_done")
def purge_done() -> int:
    db = get_db()
    return sweeps.purge_done(db=db, now=database_now(db))
