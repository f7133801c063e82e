"""The digests. It reads tasks and leads, so it lives here and sends through notifications.

- Daily: at the digest hour (settings.digest_hour, 08:00 unless set) in the user's local time (else
  the clinic's), one email per staff member with today's and overdue tasks and newly
  assigned leads. Once per user per local day: the email's dedupe key is `digest:{user}:{local
  date}`, so overlapping sweeps, two beats or a re-run add nothing. Nobody with nothing to report
  gets one.
- Hourly overdue digest (seed 000): each user with overdue tasks gets one notice listing them (in-app
  and email by default), at most one an hour; a user with none gets nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.auth.models import Clinic, User
from app.domains.business_hours import rules as hours
from app.domains.leads.models import OPEN_STATUSES, Lead
from app.domains.outbound import service as notifications
from app.domains.outbound.models import Channel, Notification
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask, TaskStatus
from app.platform.db import UnitOfWork

OVERDUE_DIGEST = "overdue_digest"
OVERDUE_DIGEST_LINES = 20


def digest_key(user_id: int, local_date) -> str:
    return f"digest:{user_id}:{local_date.isoformat()}"


def send_due_digests(*, session: UnitOfWork, now: datetime, settings) -> int:
    """Queue the digest of every active user whose local time is past the digest hour and has none today
    (`settings`: the app's, for the digest hour and window)."""
    users = session.execute(
        sa.select(User.id, User.timezone, Clinic.timezone)
        .join(Clinic, Clinic.id == User.clinic_id)
        .where(User.active.is_(True))
    ).all()
    by_zone: dict[str, list[int]] = defaultdict(list)
    for user_id, user_tz, clinic_tz in users:
        by_zone[user_tz or clinic_tz or "UTC"].append(user_id)
    messages = []
    for zone, user_ids in by_zone.items():
        day = hours.digest_due(
            now, zone, hour=settings.digest_hour, window_hours=settings.digest_window_hours
        )
        if day is None:
            continue
        keys = {digest_key(u, day): u for u in user_ids}
        done = set(
            session.scalars(sa.select(Notification.dedupe_key).where(Notification.dedupe_key.in_(keys)))
        )
        for key, user_id in keys.items():
            message = None if key in done else _digest_message(session, user_id, zone, day, key, now)
            if message is not None:
                messages.append(message)
    # All of them in one multi-row write, delivered in batches (a whole timezone reaches 08:00 at once).
    return len(notifications.queue_many(session=session, channel=Channel.EMAIL, messages=messages, now=now))


def _digest_message(
    session: UnitOfWork, user_id: int, zone: str, day, key: str, now: datetime
) -> dict | None:
    """The user's digest as a queue_many message, or None: not wanted by email, or nothing in it."""
    if not notifications.staff_wants(session=session, user_id=user_id, kind="digest", channel=Channel.EMAIL):
        return None
    user = session.get(User, user_id)
    start, end = hours.local_day_bounds(day, zone)
    open_tasks = list(
        session.scalars(
            sa.select(LeadTask)
            .where(
                LeadTask.assigned_to_id == user_id,
                LeadTask.status.in_(OPEN_TASK_STATUSES),
                LeadTask.due_at < end,
            )
            .order_by(LeadTask.due_at)
            .limit(200)
        )
    )
    today = [t for t in open_tasks if t.due_at >= max(start, now)]
    overdue = [t for t in open_tasks if t.due_at < now]
    since = _last_digest_at(session, user_id) or now - timedelta(hours=24)
    leads = list(
        session.scalars(
            sa.select(Lead)
            .where(
                Lead.assigned_to_id == user_id,
                Lead.assigned_at >= since,
                Lead.status.in_(OPEN_STATUSES),
                Lead.deleted_at.is_(None),
            )
            .order_by(Lead.assigned_at)
            .limit(200)
        )
    )
    if not (today or overdue or leads):
        return None
    local = hours.local_day_bounds(day, zone)[0].tzinfo

    def task_line(task: LeadTask) -> dict:
        return {"title": task.title, "due": task.due_at.astimezone(local).strftime("%a %H:%M")}

    return {
        "clinic_id": user.clinic_id,
        "to_address": user.email,
        "template": "digest",
        "context": {
            "user_name": user.name,
            "today": [task_line(t) for t in today],
            "overdue": [task_line(t) for t in overdue],
            "new_leads": [{"name": f"{lead.first_name} {lead.last_name}".strip()} for lead in leads],
        },
        "dedupe_key": key,
        "kind": "digest",
        "recipient_user_id": user_id,
        "not_before": notifications.quiet_until_for(session=session, user_id=user_id, now=now),
    }


def _last_digest_at(session: UnitOfWork, user_id: int) -> datetime | None:
    return session.scalar(
        sa.select(sa.func.max(Notification.created_at)).where(
            Notification.recipient_user_id == user_id, Notification.kind == "digest"
        )
    )


def send_overdue_digests(*, session: UnitOfWork, now: datetime) -> int:
    """Tell each active user with overdue tasks, unless they were told in the last hour; returns how many."""
    counts = session.execute(
        sa.select(LeadTask.assigned_to_id, sa.func.count())
        .join(User, User.id == LeadTask.assigned_to_id)
        .where(LeadTask.status == TaskStatus.OVERDUE, User.active.is_(True))
        .group_by(LeadTask.assigned_to_id)
    ).all()
    recent = set(
        session.scalars(
            sa.select(Notification.recipient_user_id).where(
                Notification.kind == OVERDUE_DIGEST, Notification.created_at > now - timedelta(hours=1)
            )
        )
    )
    sent = 0
    for user_id, count in counts:
        if user_id in recent:
            continue
        sent += _overdue_digest(session, user_id, count, now) is not None
    return sent


def _overdue_digest(session: UnitOfWork, user_id: int, count: int, now: datetime):
    tasks = session.scalars(
        sa.select(LeadTask)
        .where(LeadTask.assigned_to_id == user_id, LeadTask.status == TaskStatus.OVERDUE)
        .order_by(LeadTask.due_at)
        .limit(OVERDUE_DIGEST_LINES)
    ).all()
    lines = [f"- {task.title} (due {task.due_at.isoformat()})" for task in tasks]
    if count > len(tasks):
        lines.append(f"... and {count - len(tasks)} more")
    user = session.get(User, user_id)
    return notifications.notify_staff(
        session=session,
        clinic_id=user.clinic_id,
        user_id=user_id,
        notice=notifications.StaffNotice(
            kind=OVERDUE_DIGEST,
            title=f"{count} overdue task(s)",
            body="\n".join(lines),
            link="/api/leads/tasks/overdue",
            # The hour in the key: two beats in the same hour send one.
            dedupe_key=f"overdue-digest:{user_id}:{now:%Y-%m-%dT%H}",
        ),
        now=now,
    )
