"""The job ledger: schedule, dispatch after commit, claim and run, sweeps.

It knows no other domain. The composition root lists the handler of each job kind (JOB_KINDS in
app/handlers.py), which app/bootstrap.py turns into the engine's `JobKinds`, carried by the
Database (`db.job_kinds`); a domain puts a job on the ledger with `uow.schedule(Job(...))`, in the same
transaction as the change that causes it.
"""

from app.platform.scheduling.registry import JobKind, JobKinds
from app.platform.scheduling.runner import run_job
from app.platform.scheduling.service import Job, cancel, cancel_job, row_of, written

__all__ = ["Job", "JobKind", "JobKinds", "cancel", "cancel_job", "row_of", "run_job", "written"]
