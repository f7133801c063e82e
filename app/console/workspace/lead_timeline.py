"""The lead page's one timeline (issue 76 item 2): the family's messages, calls, tasks made and done,
stage moves and consultations in one list, oldest first, each said as a sentence (wording.TIMELINE).

Its pages are the activity log's (story.TIMELINE activities a page, newest page first, as the API
reads them): the first page also holds the conversation's newest messages (the thread, with their
delivery and, for a reader who may see them, their texts), the tasks made and the consultations
booked since the oldest activity it shows; an activity of a message the thread already shows is
not said twice. Older pages are the activity log's alone (a message there is its activity). The
texts (a message's body, a call's notes) are PHI: a reader without `lead:phi` gets the sentences."""

from __future__ import annotations

from datetime import datetime

from app.console import wording
from app.console.wording import MESSAGE_THINGS, TIMELINE, TIMELINE_WHO, Names
from app.console.wording_rules import VALUES

# An activity of a message of the conversation: sent (its notification) or received (its message).
CONVERSATION_KEYS = ("notification_id", "message_id")
MESSAGE_TYPES = frozenset(MESSAGE_THINGS)
# The activities whose notes are the system's own words (an assignment's policy), never shown.
SYSTEM_NOTES = frozenset(("ASSIGNMENT_CHANGE", "PRIORITY_CHANGE"))


def _at(value) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _who(activity: dict, names: Names) -> str:
    actor = activity.get("actor") or ""
    if actor.startswith("user:") and activity.get("created_by") in names.users:
        return names.users[activity["created_by"]]
    return TIMELINE_WHO.get(actor.partition(":")[0], TIMELINE_WHO["user"])


def _outcome(value: str | None) -> str:
    return VALUES["outcome"].get(value, wording.code(value)).lower() if value else ""


def sentence(activity: dict, names: Names) -> str:
    """One activity as a sentence: "Maria Lopez called the family: voicemail."."""
    kind, who = activity.get("type"), _who(activity, names)
    inbound = activity.get("direction") == "INBOUND"
    outcome = _outcome(activity.get("outcome"))
    if kind == "PHONE_CALL":
        if inbound:
            return TIMELINE["call_in_said"].format(outcome=outcome) if outcome else TIMELINE["call_in"]
        return TIMELINE["call_out"].format(who=who, outcome=outcome or TIMELINE["nobody"])
    if kind in MESSAGE_TYPES:
        said = TIMELINE["message_in" if inbound else "message_out"]
        return said.format(who=who, thing=MESSAGE_THINGS[kind])
    if kind == "STAGE_CHANGE":
        before = wording.say("pipeline_stage", activity.get("previous_stage"), names)
        after = wording.say("pipeline_stage", activity.get("new_stage"), names)
        return TIMELINE["stage"].format(who=who, before=before, after=after)
    if kind == "ASSIGNMENT_CHANGE":
        owner = (activity.get("details") or {}).get("to_user_id")
        return TIMELINE["assigned"].format(owner=names.users.get(owner, TIMELINE["nobody"]))
    if kind == "TASK_COMPLETED":
        key = "task_done_said" if outcome else "task_done"
        return TIMELINE[key].format(who=who, outcome=outcome)
    simple = {
        "NOTE": "note",
        "IN_PERSON": "in_person",
        "DOCUMENT_SENT": "document",
        "CONSULTATION_SCHEDULED": "consultation_scheduled",
        "CONSULTATION_COMPLETED": "consultation_completed",
        "CONSULTATION_NO_SHOW": "consultation_no_show",
        "PRIORITY_CHANGE": "priority",
    }
    if kind in simple:
        return TIMELINE[simple[kind]].format(who=who)
    return TIMELINE["other"].format(who=who, thing=wording.code(kind or "").lower())


def _is_conversation_message(activity: dict) -> bool:
    details = activity.get("details") or {}
    return activity.get("type") in MESSAGE_TYPES and any(key in details for key in CONVERSATION_KEYS)


def entries(
    *, story: dict, thread: dict, consultations: list[dict], first_page: bool, last_page: bool
) -> list[dict]:
    """The page's entries, oldest first: {"at", "kind" ("message" or "event"), "sentence", "body"
    (a text the reader may see, else None), "held" (a held message's hold), "message" (a thread
    message as the API's answer gives it), "id"}."""
    names, phi = story["names"], story["phi"]
    activities = story["timeline"]
    since = None if last_page or not activities else _at(activities[-1]["occurred_at"])
    messages = list(thread.get("items") or []) if first_page else []
    messages = [m for m in messages if since is None or _at(m["occurred_at"]) >= since]
    thread_from = min((_at(m["occurred_at"]) for m in thread.get("items") or []), default=None)
    found = [
        {"at": _at(m["occurred_at"]), "kind": "message", "message": m, "id": f"message-{m['id']}"}
        for m in messages
    ]
    for a in activities:
        at = _at(a["occurred_at"])
        if first_page and thread_from is not None and at >= thread_from and _is_conversation_message(a):
            continue  # the thread's own message, said above with its delivery
        held = a.get("held") or {}
        found.append({
            "at": at, "kind": "event", "sentence": sentence(a, names), "id": f"activity-{a['id']}",
            "body": a.get("notes") if phi and a.get("type") not in SYSTEM_NOTES else None,
            "held": wording.held(held.get("held_until"), held.get("held_by"), names) if held else "",
        })  # fmt: skip
    if first_page:
        found.extend(_made(story, consultations, names, since))
    return sorted(found, key=lambda entry: entry["at"])


def _made(story: dict, consultations: list[dict], names: Names, since: datetime | None) -> list[dict]:
    """The tasks made and the consultations booked since `since` (None: ever), as events."""
    made = []
    for task in story["tasks"]:
        at = _at(task.get("created_at"))
        if at is None or (since is not None and at < since):
            continue
        owner = names.users.get(task.get("assigned_to_id"), TIMELINE["nobody"])
        said = TIMELINE["task_created"].format(
            title=task["title"], owner=owner, due=wording.when(task.get("due_at"), names)
        )
        made.append({"at": at, "kind": "event", "sentence": said, "id": f"task-{task['id']}"})
    for visit in consultations:
        at = _at(visit.get("created_at"))
        if at is None or (since is not None and at < since):
            continue
        said = TIMELINE["consultation_booked"].format(
            when=wording.when(visit["starts_at"], names),
            status=wording.consultation_status(visit.get("status")).lower(),
        )
        made.append({"at": at, "kind": "event", "sentence": said, "id": f"consultation-{visit['id']}"})
    return made
