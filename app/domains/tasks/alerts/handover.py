"""Work follows its owner: a user who goes inactive or out of office hands their open tasks, and
the reminders of those tasks, to whoever now owns each task's lead.

Runs right after assignment hands the user's leads over (both are USER_UNAVAILABLE handlers of
app/handlers.py, assignment's first). A task goes to its lead's owner when that owner is someone else
and can take it; a lead nobody could take keeps its tasks where they are (the escalation backstop
remains). Moving a task bumps its timers' revision: the old reminder jobs are cancelled and new ones go
to the new assignee, so the former owner hears nothing more of that work. Done once: a second pass finds
no open task of the user left to move.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityType
from app.domains.auth.models import Clinic, User
from app.domains.leads.models import Lead
from app.domains.tasks.alerts.timers import replace_timers
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.roles import Actor


def _can_take(user: User | None) -> bool:
    return user is not None and user.active and not user.out_of_office


def hand_over_open_tasks(*, session: UnitOfWork, user: User, actor: Actor, now: datetime) -> int:
    """Move the user's open tasks to their leads' owners; returns how many moved."""
    clinic = session.get(Clinic, user.clinic_id)
    why = "out of office" if user.active else "inactive"
    rows = session.execute(
        sa.select(LeadTask, Lead)
        .join(Lead, Lead.id == LeadTask.lead_id)
        .where(
            LeadTask.clinic_id == user.clinic_id,
            LeadTask.assigned_to_id == user.id,
            LeadTask.status.in_([s.value for s in OPEN_TASK_STATUSES]),
        )
        .order_by(LeadTask.id)
        .with_for_update(of=LeadTask)
    ).all()
    moved = 0
    for task, lead in rows:
        to_id = lead.assigned_to_id
        if to_id is None or to_id == user.id or not _can_take(session.get(User, to_id)):
            continue
        task.assigned_to_id = to_id
        task.claimed_by_id = task.claimed_until = None  # the former owner's claim goes with them
        task.updated_at = now
        replace_timers(session, task, clinic, now)
        details = {"task_id": task.id, "from_user_id": user.id, "to_user_id": to_id, "reason": why}
        activities.record(
            session=session,
            lead=lead,
            facts=activities.ActivityFacts(
                type=ActivityType.ASSIGNMENT_CHANGE,
                at=now,
                actor_ref=actor.ref,
                user_id=actor.user_id,
                notes=f"Task {task.id} moved to the lead's owner: previous assignee {why}",
                details=details,
            ),
        )
        audit.record(
            session,
            audit.AuditEntry(
                clinic_id=task.clinic_id,
                actor=actor.ref,
                action="task.hand_over",
                subject_type="task",
                subject_id=task.id,
                before={"assigned_to_id": user.id},
                after={"assigned_to_id": to_id, "reason": why},
                at=now,
            ),
        )
        moved += 1
    return moved
