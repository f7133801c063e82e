"""The overdue sweep marks tasks in chunks (a transaction, and one events processing job, each) taken
in turns across clinics: a clinic with a backlog neither makes one giant transaction nor keeps the
other clinics' tasks waiting behind its own. Their processing runs on the timers queue, never ahead
of a new lead's on the realtime one."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.tasks.events import TaskOverdue
from app.domains.tasks.models import LeadTask, TaskStatus
from app.platform.events.consumers import PROCESS_KINDS
from app.platform.events.models import DomainEvent
from app.platform.scheduling.models import ScheduledJob
from tests.tasks.taskkit import in_minutes, iso, lead_for
from tests.tasks.test_tasks_api import new_task
from workers import tasks as sweeps

TASK_OVERDUE = TaskOverdue.NAME

CHUNK = 3


def overdue_chunks(db) -> list[tuple[str, list[int]]]:
    """The queue and the clinics of each processing job's task.overdue events, in the order the jobs
    were written."""
    with db.unit_of_work() as session:
        clinic_of = dict(
            session.execute(
                sa.select(DomainEvent.id, DomainEvent.clinic_id).where(DomainEvent.type == TASK_OVERDUE)
            ).all()
        )
        jobs = session.execute(
            sa.select(ScheduledJob.queue, ScheduledJob.payload)
            .where(ScheduledJob.kind.in_(PROCESS_KINDS))
            .order_by(ScheduledJob.id)
        )
        named = [
            (queue, [clinic_of[i] for i in payload["event_ids"] if i in clinic_of]) for queue, payload in jobs
        ]
    return [(queue, chunk) for queue, chunk in named if chunk]


def test_overdue_tasks_are_marked_in_chunks_taken_in_turns_across_clinics(
    app, client, db, tenant, make_tenant, monkeypatch
):
    monkeypatch.setattr(app.config["SETTINGS"], "sweep_chunk_rows", CHUNK)
    backlog = make_tenant("Backlog Dental")
    busy_lead = lead_for(client, backlog)
    for minutes in range(6):  # the older tasks: first in line if the sweep went by due time alone
        new_task(client, backlog, busy_lead["id"], role="clinic_admin", due_at=iso(in_minutes(-60 + minutes)))
    quiet_lead = lead_for(client, tenant)
    for _ in range(2):
        new_task(client, tenant, quiet_lead["id"], role="clinic_admin", due_at=iso(in_minutes(-10)))

    with app.app_context():
        assert sweeps.mark_overdue() >= 8

    queues, chunks = zip(*overdue_chunks(db), strict=True)
    assert set(queues) == {"timers"}
    assert all(len(chunk) <= CHUNK for chunk in chunks)
    assert set(chunks[0]) == {backlog.id, tenant.id}  # both clinics served by the first chunk
    assert sum(len(chunk) for chunk in chunks) >= 8
    with db.unit_of_work() as session:
        still_open = session.scalar(
            sa.select(sa.func.count())
            .select_from(LeadTask)
            .where(
                LeadTask.status.in_((TaskStatus.PENDING, TaskStatus.IN_PROGRESS)),
                LeadTask.due_at < in_minutes(0),
            )
        )
    assert still_open == 0
