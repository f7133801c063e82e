"""What the Team page shows: per coordinator (treatment coordinators and clinic admins) their open
leads, tasks due today and overdue, the median minutes from a lead's first task to their first call
or message over the last 30 days (analytics' speed to lead), and whether the assignment policies may
give them leads now; and a coordinator's open leads to hand to someone else. Each figure is read by
its domain's service; nothing is queried here."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.domains.analytics import coordination
from app.domains.assignment import service as assignment
from app.domains.auth import service as auth
from app.domains.leads import lookups
from app.domains.leads.rules import COORDINATOR_ROLES
from app.domains.tasks import team
from app.platform.roles import Actor

RESPONSE_DAYS = 30
LEADS_LISTED = 500  # a coordinator's open leads listed to hand over, oldest first


def _availability(user, available: set[int]) -> str:
    if user.id in available:
        return "available"
    return "out of office" if user.active else "inactive"


def workload(*, session, actor: Actor, now: datetime) -> list[dict]:
    """One row per coordinator of the clinic, by name."""
    clinic_id = actor.clinic_id
    people = [u for u in auth.list_users(session=session, clinic_id=clinic_id) if u.role in COORDINATOR_ROLES]
    ids = [u.id for u in people]
    open_leads = lookups.open_lead_counts(session=session, clinic_id=clinic_id, user_ids=ids)
    tasks = {
        row["assigned_to_id"]: row["by_due"]
        for row in team.summary(session=session, actor=actor, filters={"assigned_to_id": ids}, now=now)[
            "assignees"
        ]
    }
    speed = coordination.speed_split(
        session=session, clinic_id=clinic_id, start=now - timedelta(days=RESPONSE_DAYS), end=now
    )
    response = {
        row["coordinator_id"]: row["human_to_first_attempt_median_minutes"] for row in speed["by_coordinator"]
    }
    available = assignment.available_now(session=session, clinic_id=clinic_id)
    return [
        {
            "id": user.id,
            "name": user.name,
            "role": user.role,
            "open_leads": open_leads.get(user.id, 0),
            "due_today": tasks.get(user.id, {}).get("today", 0),
            "overdue": tasks.get(user.id, {}).get("overdue", 0),
            "response_minutes": response.get(user.id),
            "availability": _availability(user, available),
        }
        for user in sorted(people, key=lambda u: (u.name.lower(), u.id))
    ]


def open_leads_of(*, session, actor: Actor, user_id: int) -> list:
    """A coordinator's open leads (their oldest first), to hand over; another clinic's user is a 404."""
    user = auth.get_user(session=session, clinic_id=actor.clinic_id, user_id=user_id)
    return lookups.open_leads_of(session=session, clinic_id=actor.clinic_id, user_id=user.id)[:LEADS_LISTED]
