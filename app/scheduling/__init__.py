"""The job ledger: schedule, dispatch after commit, claim and run, sweeps.

It knows no other domain. A domain registers the handler of each of its job kinds in its
handlers.py (`register("task.reminder", send_task_reminder, queue="notifications")`) and writes jobs
with `schedule(...)` in the same transaction as the change that causes them.
"""

from app.scheduling.registry import register
from app.scheduling.runner import run_job
from app.scheduling.service import cancel, cancel_job, schedule, schedule_at_commit, schedule_many

__all__ = ["cancel", "cancel_job", "register", "run_job", "schedule", "schedule_at_commit", "schedule_many"]
