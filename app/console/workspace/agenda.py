"""What the Today page shows a coordinator, read by the services the API uses: the call they hold
(the next-call claim, read from the task's claim on every visit, so it survives leaving the page),
their tasks due today and overdue with the lead's SLA clock, their tasks coming up after today with
when in words, the clinic's consultations of the day, unread reminders, families' replies waiting on
their leads, leads left with no next step (their own; the clinic's for an admin) and, after a call
is logged, the next step the engine made.
Logging a call is the API's activity logging (and the call task it was for is completed with it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.console.story import names_of_clinic
from app.console.wording import Names, clock_time, consultation_status, due_when, no_next_step
from app.domains.activities import feed as activity_feed
from app.domains.auth import service as auth
from app.domains.automation import orphans
from app.domains.availability import service as availability
from app.domains.consultations import listing as consultations
from app.domains.conversations import inbox as conversations
from app.domains.conversations.schemas import InboxOut
from app.domains.intelligence import next_call
from app.domains.leads import lookups
from app.domains.leads import schemas as lead_schemas
from app.domains.leads.models import LostReason
from app.domains.outbound import inbox as notifications
from app.domains.tasks import claims
from app.domains.tasks import outcomes as task_outcomes
from app.domains.tasks import service as tasks
from app.domains.tasks.models import OPEN_TASK_STATUSES
from app.domains.tasks.sla import service as sla
from app.platform import phi_policy
from app.platform.db import PageRequest
from app.platform.errors import Conflict, ValidationFailed
from app.platform.roles import Actor, Permission

TASKS_SHOWN, UPCOMING_SHOWN, REMINDERS_SHOWN, REPLIES_SHOWN, STRANDED_SHOWN = 50, 20, 10, 10, 20
# The outcomes one keystroke logs (the key is the button's position): every call outcome.
CALL_OUTCOMES = tuple(task_outcomes.CALL_TASK_OUTCOMES)


@dataclass(frozen=True)
class Asked:
    """What the page was opened with: the call they just logged. (The call they hold is the
    server's to say: the task's claim, not the page's address.)"""

    logged_activity_id: int | None = None


def _lead_cards(session, actor: Actor, lead_ids: list[int]) -> dict[int, dict]:
    """The leads as the API would show them to `actor` (the PHI policy leaves out what it may not
    see), by id, read at once."""
    found = lookups.live_leads_by_id(session=session, clinic_id=actor.clinic_id, lead_ids=lead_ids)
    schema = lead_schemas.LeadOut(only=("id", "first_name", "last_name", "phone", "email"))
    cards = {}
    with phi_policy.reading_as(actor):
        for lead_id, lead in found.items():
            shown = schema.dump(lead)
            cards[lead_id] = {**shown, "name": f"{shown['first_name']} {shown['last_name']}".strip()}
    return cards


def _clock(clock, now: datetime) -> dict | None:
    if clock is None:
        return None
    left = round((clock.due_at - now).total_seconds() / 60)
    return {
        "kind": clock.kind.replace("_", " "),
        "status": clock.status,
        "due_at": clock.due_at,
        "minutes_left": left,
    }


def _lead_of(session, actor: Actor, lead_id: int) -> dict:
    return _lead_cards(session, actor, [lead_id]).get(lead_id) or {"id": lead_id, "name": f"Lead {lead_id}"}


def task_rows(session, actor: Actor, listed: list, now: datetime) -> list[dict]:
    """Tasks as Today lists them: due or late by how much, their lead, the lead's SLA clock due
    first (the leads and clocks of the whole list in two queries)."""
    lead_ids = sorted({task.lead_id for task in listed})
    cards = _lead_cards(session, actor, lead_ids)
    clocks = sla.running_clocks(session=session, lead_ids=lead_ids)
    rows = []
    for task in listed:
        late = round((now - task.due_at).total_seconds() / 60)
        rows.append(
            {
                "id": task.id,
                "title": task.title,
                "type": task.type,
                "priority": task.priority,
                "due_at": task.due_at,
                "overdue_minutes": late if late > 0 else None,
                "due_in_minutes": -late if late <= 0 else None,
                "lead": cards.get(task.lead_id) or {"id": task.lead_id, "name": f"Lead {task.lead_id}"},
                "sla": _clock(clocks.get(task.lead_id), now),
            }
        )
    return rows


def stranded_leads(session, actor: Actor) -> list[dict]:
    """Open leads with no next step, each with why in words: the user's own, or the clinic's for
    whoever configures it (the admin, who can give them an owner)."""
    mine = None if actor.can(Permission.CONFIGURE) else actor.user_id
    found = orphans.leads_without_next_step(
        session=session, clinic_id=actor.clinic_id, owner_id=mine, limit=STRANDED_SHOWN
    )
    cards = _lead_cards(session, actor, list(found))
    return [
        {"lead": cards.get(lead_id) or {"id": lead_id, "name": f"Lead {lead_id}"}, "why": no_next_step(why)}
        for lead_id, why in found.items()
    ]


def end_of_day(now: datetime, zone) -> datetime:
    """Midnight after `now` in the clinic's timezone: "due today" is the clinic's today."""
    local = now.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)


def upcoming_tasks(session, actor: Actor, now: datetime, names) -> tuple[list[dict], int]:
    """The user's open tasks due after the clinic's today (the next opening's included), soonest
    first, each with when in words ("Tomorrow at 8:00 AM"); and how many there are."""
    later = tasks.MyTasksFilter(due_from=end_of_day(now, names.zone))
    found, total = tasks.my_tasks(
        session=session, actor=actor, filters=later, now=now, paging=PageRequest(1, UPCOMING_SHOWN)
    )
    rows = [
        {**row, "when": due_when(row["due_at"], names, now)} for row in task_rows(session, actor, found, now)
    ]
    return rows, total


def todays_consultations(session, actor: Actor, now: datetime, names) -> list[dict]:
    """The clinic's consultations of its local today, earliest first: the time, the family (as the
    PHI policy lets `actor` see it), the type, the provider and the status in words."""
    found = consultations.of_day(
        session=session, clinic_id=actor.clinic_id, day=now.astimezone(names.zone).date()
    )
    if not found:
        return []
    cards = _lead_cards(session, actor, sorted({c.lead_id for c in found}))
    types = {t.id: t.name for t in availability.list_types(session=session, clinic_id=actor.clinic_id)}
    providers = {
        p.id: p.name for p in availability.list_providers(session=session, clinic_id=actor.clinic_id)
    }
    return [
        {
            "id": c.id,
            "time": clock_time(c.starts_at, names),
            "lead": cards.get(c.lead_id) or {"id": c.lead_id, "name": f"Lead {c.lead_id}"},
            "type": types.get(c.type_id, ""),
            "provider": providers.get(c.provider_id) or c.provider_name or "",
            "status": c.status,
            "status_words": consultation_status(c.status),
        }
        for c in found
    ]


def my_day(*, session, actor: Actor, now: datetime, asked: Asked) -> dict:
    """Everything Today shows `actor`."""
    names = names_of_clinic(session=session, actor=actor)
    due = tasks.MyTasksFilter(due_to=end_of_day(now, names.zone))
    mine, total = tasks.my_tasks(
        session=session, actor=actor, filters=due, now=now, paging=PageRequest(1, TASKS_SHOWN)
    )
    upcoming, upcoming_total = upcoming_tasks(session, actor, now, names)
    reminders, unread = notifications.inbox(
        session=session, user_id=actor.user_id, unread_only=True, paging=PageRequest(1, REMINDERS_SHOWN)
    )
    replies = conversations.inbox_page(
        session=session, actor=actor, filters={"view": conversations.MINE, "unread": True}, cursor=None,
        limit=REPLIES_SHOWN, now=now,
    )  # fmt: skip
    return {
        "names": names,
        "now": now,
        "may_call": actor.can(Permission.UPDATE),
        "call": held_call(session=session, actor=actor, now=now, names=names),
        "tasks": task_rows(session, actor, mine, now),
        "tasks_total": total,
        "upcoming": upcoming,
        "upcoming_more": upcoming_total - len(upcoming),
        "consultations": todays_consultations(session, actor, now, names),
        "reminders": reminders,
        "reminders_total": unread,
        "replies": _as_the_api_shows(replies, actor)["items"],
        "stranded": stranded_leads(session, actor),
        "stranded_mine": not actor.can(Permission.CONFIGURE),
        "logged": logged_call(session=session, actor=actor, activity_id=asked.logged_activity_id, now=now),
        "outcomes": list(CALL_OUTCOMES),
        "lost_reasons": [r.value for r in LostReason],
    }


def _as_the_api_shows(replies: dict, actor: Actor) -> dict:
    """The inbox page dumped by the API's schema as `actor` reads it: a message's text is PHI."""
    with phi_policy.reading_as(actor):
        return InboxOut().dump(replies)


def take_next_call(*, session, actor: Actor, now: datetime) -> dict | None:
    """Claim the user's next call (the API's POST /api/me/next-task): the task and why, or None."""
    return next_call.next_task(session=session, actor=actor, now=now)


def held_call(*, session, actor: Actor, now: datetime, names) -> dict | None:
    """The call the user holds now (their next-call claim, until logged, released or its lease
    ends) as Today lists a task, with until when it is theirs in words; None if they hold none."""
    if actor.user_id is None or not actor.can(Permission.UPDATE):
        return None
    task = claims.held_by(session=session, actor=actor, now=now)
    if task is None:
        return None
    return {**task_rows(session, actor, [task], now)[0], "held_until": clock_time(task.claimed_until, names)}


def keep_call(*, session, actor: Actor, task_id: int, now: datetime) -> str | None:
    """Hold the user's call for a new lease (the API's renewal of a next-task claim): until when it
    is theirs now, said in the clinic's time, or None when it is no longer theirs to keep (done, or
    someone else's)."""
    try:
        claim = claims.renew(session=session, actor=actor, task_id=task_id, now=now)
    except Conflict:
        return None
    return clock_time(claim.claimed_until, Names(zone=clinic_zone(session, actor)))


def release_call(*, session, actor: Actor, task_id: int, now: datetime) -> bool:
    """Give back the call the user holds (the API's POST /api/me/next-task/:id/release); whether
    they held it."""
    return next_call.release(session=session, actor=actor, task_id=task_id, now=now)


def clinic_zone(session, actor: Actor) -> ZoneInfo:
    """The clinic's timezone: what a time typed on the page means."""
    return ZoneInfo(auth.get_clinic(session=session, clinic_id=actor.clinic_id).timezone)


def log_call(*, session, actor: Actor, task_id: int, completion: task_outcomes.Completion, now: datetime):
    """Log the call of a task with its outcome, as the API's task completion does (task_outcomes.log_call:
    the PHONE_CALL activity the rules see, the call task completed with it). The activity logged."""
    if completion.outcome not in CALL_OUTCOMES:
        raise ValidationFailed("outcome", f"one of {', '.join(CALL_OUTCOMES)}")
    return task_outcomes.log_call(session=session, actor=actor, task_id=task_id, call=completion, now=now)


def logged_call(*, session, actor: Actor, activity_id: int | None, now: datetime) -> dict | None:
    """A call just logged and the next steps the engine made for its lead since: its open tasks
    created after the call (the automation runs in the worker: none yet means not yet)."""
    if activity_id is None:
        return None
    activity = activity_feed.get_activity(session=session, actor=actor, activity_id=activity_id, now=now)
    lead_tasks, _ = tasks.list_lead_tasks(
        session=session,
        actor=actor,
        lead_id=activity.lead_id,
        status=None,
        paging=PageRequest(1, TASKS_SHOWN),
    )
    made = [t for t in lead_tasks if t.status in OPEN_TASK_STATUSES and t.created_at >= activity.created_at]
    return {
        "activity_id": activity.id,
        "outcome": activity.outcome,
        "lead": _lead_of(session, actor, activity.lead_id),
        "next_steps": task_rows(session, actor, made, now),
    }
