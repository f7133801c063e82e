"""The lead page's "What happens next": the lead's why-trail (the API's /api/leads/<id>/automation
answer, read by story.py) said as sentences for the people who call the family. What is planned next,
what was done lately, what was cancelled or held back and why, the failed attempts counted, and the
sequences the lead is in; for a clinic admin, every step. Pure: the sentences are the wording table's
(app/console/wording.py), the clinic's names come in as `Known`; no id, code or JSON is ever said."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.console import wording
from app.console.wording import Names, code, when
from app.console.wording_rules import VALUES, WAIT_EVENTS, trail_sentence, trigger_label

RECENT = 8  # done, and stopped, steps the panel shows (the admins' list has every one)
QUOTED = 40  # characters of a sent message quoted
# What a done step's result holds, the first key found choosing its sentence (wording.DONE); the keys
# said beside them (SAID_WITH) have no sentence of their own.
DONE_BY_RESULT = (
    ("task_id", "task"),
    ("notification_ids", "notified"),
    ("to_user_id", "assigned"),
    ("suggested_action", "suggested"),
    ("to_priority", "priority"),
    ("to_stage", "stage"),
    ("notification_id", "sent"),
    ("enrollment_id", "enrolled"),
    ("outcome", "branched"),
)
SAID_WITH = frozenset(
    (
        "due_at", "user_ids", "from_user_id", "withdrawn", "from_priority", "from_stage", "channel",
        "fallback", "fallback_channel", "fallback_notification_id", "event_id", "occurrence", "of",
        "next_at", "next_step_id", "previous_step_id", "moved", "reason", "held_back_by",
    )
)  # fmt: skip
SAID = frozenset(key for key, _ in DONE_BY_RESULT) | SAID_WITH  # every result key the panel can say
_OTHER = wording.NEXT_OTHER
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?")
_CODE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")  # a snake_case code: a stage's slug, a reason's key
_CHANNEL = re.compile(r"\b(sms|whatsapp|instagram)\b")
# A domain error's record by its id ("lead 12 is already enrolled in sequence 3"): said as "the lead".
_NUMBERED = re.compile(r"\b(?:the |a )?(lead|sequence|rule|template|task|step|enrollment) \d+\b")
_TYPE_NAME = re.compile(r" \([A-Z][a-z]+[A-Z]\w*\)")  # a code's type named in brackets: "(LostReason)"


@dataclass(frozen=True)
class Known:
    """What the sentences name beyond the clinic's users, sources and stages (`names`): the lead's
    owner, the clinic's sequences (id -> name), the lead's enrolments (id -> sequence id), its tasks
    (id -> the task's answer) and the messages its steps sent (notification id -> subject or text,
    only for a reader the PHI policy shows them to)."""

    names: Names
    owner_id: int | None = None
    sequences: dict[int, str] = field(default_factory=dict)
    enrollments: dict[int, int] = field(default_factory=dict)
    tasks: dict[int, dict] = field(default_factory=dict)
    messages: dict[int, str] = field(default_factory=dict)


def panel(trail: dict, known: Known, *, every_step: bool) -> dict:
    """The panel's sentences from the why-trail's answer: planned (soonest first), done and stopped
    (newest first, RECENT of each), each step with what its rule checked (`step_line`); the attempts;
    the sequences and the paths they took; `every_step` (a clinic admin): each step of the trail,
    newest first."""
    pending = sorted(trail.get("pending") or [], key=_in_time)
    past = trail.get("past") or []
    done = [s for s in past if s.get("status") == "done"]
    stopped = [s for s in past if s.get("status") != "done"]
    newest_first = sorted([*pending, *past], key=_in_time, reverse=True)
    return {
        "planned": [step_line(s, known) for s in pending],
        "done": [step_line(s, known) for s in done[:RECENT]],
        "stopped": [step_line(s, known) for s in stopped[:RECENT]],
        "attempts": attempts_sentences(trail, known.names),
        "sequences": [
            line for e in trail.get("enrollments") or [] for line in enrollment_sentences(e, known)
        ],
        "every_step": [step_line(s, known) for s in newest_first] if every_step else None,
        "words": {**wording.NEXT_PANEL, "checked": wording.CHECKED["title"]},
    }


def _in_time(step: dict) -> tuple:
    """Steps by their time, those of one time in the order they were planned."""
    return (str(step.get("run_at")), step.get("id") or 0)


# --- one step -------------------------------------------------------------------------------------


def step_line(step: dict, known: Known) -> dict:
    """A step's sentence and what its rule checked (nested: a group holds its conditions)."""
    return {"text": step_sentence(step, known), "checked": checked(step.get("conditions") or [], known.names)}


def checked(conditions: list, names: Names) -> list[dict]:
    """A rule's conditions as its step saw them, each {text, within}: a group (all, any, not) says
    whether it held and holds its own; a condition says what it compared, saw and whether it held
    (a PHI field's, nothing, to a reader who may not see it: wording_rules.trail_sentence)."""
    said = []
    for condition in conditions:
        group = next((g for g in ("all", "any", "not") if g in condition), None)
        if group is None:
            said.append({"text": trail_sentence(condition, names), "within": []})
            continue
        text = wording.CHECKED[group]
        if "result" in condition:
            text = wording.CHECKED["held" if condition["result"] else "failed"].format(group=text)
        items = condition[group] if group != "not" else [condition[group]]
        said.append({"text": text, "within": checked(items, names)})
    return said


def step_sentence(step: dict, known: Known) -> str:
    """A step as one sentence, whatever its status: planned, done, or stopped with why."""
    status = step.get("status")
    if status == "scheduled":
        text = _planned(step, known)
    elif status == "done":
        text = _done(step, known)
    else:
        text = _stopped(step, known)
    whys = "; ".join(_whys(step, known))
    if not whys:
        return f"{text}."
    # A stopped step's sentence has its own dash (the reason — the step): its why goes in brackets.
    return f"{text} ({whys})." if status not in ("scheduled", "done") else f"{text} — {whys}."


def _kind(step: dict) -> str:
    """The step's kind as said: a sequence's step is the message or call task it makes."""
    kind = step.get("action_type") or ""
    if kind == "sequence_step":
        return wording.SEQUENCE_STEP_KINDS.get((step.get("action") or {}).get("channel"), kind)
    return kind


def _fill(step: dict, known: Known) -> dict:
    """Every placeholder a step's sentences may name, in words."""
    action, names = step.get("action") or {}, known.names
    return {
        "task": VALUES["task_type"].get(action.get("task_type", "CALL"), _OTHER["task"]).lower(),
        "whom": _whom(action, known),
        "owner": _new_owner(action, names),
        "suggestion": VALUES["suggestion"].get(action.get("suggestion"), _OTHER["suggestion"]).lower(),
        "stage": _stage(action.get("stage"), names),
        "priority": VALUES["priority"].get(action.get("priority"), _OTHER["priority"]).lower(),
        "sequence": _sequence(step, known),
        "events": _events(action.get("for") or []),
        "at": wording.AT.format(when=when(step.get("run_at"), names)),
        "when": when(step.get("run_at"), names),
    }


def _events(waited: list[str]) -> str:
    said = [WAIT_EVENTS[e].label if e in WAIT_EVENTS else _OTHER["event"] for e in waited]
    return " or ".join(said) or _OTHER["events"]


def thing(step: dict, known: Known) -> str:
    """What the step is, as a thing: "a call task", "a text", "a move to Contacted"."""
    kind = _kind(step)
    return wording.STEP_THINGS.get(kind, _OTHER["thing"]).format(**_fill(step, known))


def _planned(step: dict, known: Known) -> str:
    kind = _kind(step)
    return wording.PLANNED.get(kind, _OTHER["planned"]).format(**_fill(step, known))


def _done(step: dict, known: Known) -> str:
    result, names = step.get("result") or {}, known.names
    said = next((sentence for key, sentence in DONE_BY_RESULT if key in result), "done")
    text = _DONE_SAYERS[said](step, result, known)
    if said != "task":  # a task's sentence says when it was made before when it is due
        text = wording.DONE_AT.format(sentence=text, when=_finished(step, names))
    return text + _done_more(step, result, known)


def _finished(step: dict, names: Names) -> str:
    return when(step.get("finished_at") or step.get("run_at"), names)


def _done_task(step: dict, result: dict, known: Known) -> str:
    task = known.tasks.get(result.get("task_id")) or {}
    whom = (
        _person(task["assigned_to_id"], known.names)
        if task.get("assigned_to_id")
        else _whom(step.get("action") or {}, known)
    )
    parts = {
        "thing": thing(step, known),
        "whom": whom,
        "due": when(result.get("due_at"), known.names),
        "when": _finished(step, known.names),
    }
    if task.get("title"):
        return wording.DONE["task_titled"].format(**parts, title=_short(task["title"], 60))
    return wording.DONE["task"].format(**parts)


def _done_notified(step: dict, result: dict, known: Known) -> str:
    return wording.DONE["notified"].format(whom=_people(result.get("user_ids") or [], known.names))


def _done_assigned(step: dict, result: dict, known: Known) -> str:
    to = _person(result.get("to_user_id"), known.names)
    if result.get("from_user_id") and result["from_user_id"] != result.get("to_user_id"):
        return wording.DONE["reassigned"].format(to=to, was=_person(result["from_user_id"], known.names))
    return wording.DONE["assigned"].format(to=to)


def _done_suggested(step: dict, result: dict, known: Known) -> str:
    suggestion = VALUES["suggestion"].get(result.get("suggested_action"), _OTHER["suggestion"]).lower()
    return wording.DONE["suggested"].format(suggestion=suggestion)


def _done_priority(step: dict, result: dict, known: Known) -> str:
    said = VALUES["priority"]
    was, to = result.get("from_priority"), result.get("to_priority")
    was, to = said.get(was, _OTHER["no_priority"]).lower(), said.get(to, _OTHER["priority"]).lower()
    return wording.DONE["priority"].format(was=was, to=to)


def _done_stage(step: dict, result: dict, known: Known) -> str:
    return wording.DONE["stage"].format(stage=_stage(result.get("to_stage"), known.names))


def _done_sent(step: dict, result: dict, known: Known) -> str:
    text = known.messages.get(result.get("notification_id"))
    noun = wording.CHANNEL_NOUNS.get(result.get("channel"), _OTHER["message"])
    if text:
        return wording.DONE["sent_quoted"].format(noun=noun, text=_short(text, QUOTED))
    return wording.DONE["sent"].format(thing=_a(noun))


def _done_enrolled(step: dict, result: dict, known: Known) -> str:
    sequence_id = known.enrollments.get(result.get("enrollment_id"))
    name = known.sequences.get(sequence_id) if sequence_id else None
    return wording.DONE["enrolled"].format(sequence=name or _sequence(step, known))


def _done_branched(step: dict, result: dict, known: Known) -> str:
    outcome = wording.OUTCOMES.get(result.get("outcome"), _OTHER["outcome"])
    return wording.DONE["branched"].format(sequence=_sequence(step, known), outcome=outcome)


def _done_other(step: dict, result: dict, known: Known) -> str:
    return wording.DONE["done"].format(thing=thing(step, known))


_DONE_SAYERS = {
    "task": _done_task,
    "notified": _done_notified,
    "assigned": _done_assigned,
    "suggested": _done_suggested,
    "priority": _done_priority,
    "stage": _done_stage,
    "sent": _done_sent,
    "enrolled": _done_enrolled,
    "branched": _done_branched,
    "done": _done_other,
}


def _done_more(step: dict, result: dict, known: Known) -> str:
    """What a done step's result adds: a series' count, a message's other channel, a withdrawal."""
    names, more = known.names, []
    if result.get("occurrence") and result.get("of"):
        more.append(wording.DONE_MORE["series"].format(occurrence=result["occurrence"], times=result["of"]))
    if result.get("next_at"):
        more.append(wording.DONE_MORE["next"].format(when=when(result["next_at"], names)))
    fallback = result.get("fallback")
    if fallback and result.get("fallback_notification_id"):  # a bounce, then the other channel
        why = wording.BOUNCES.get(result.get("channel"), _OTHER["bounce"])
        noun = wording.CHANNEL_NOUNS.get(result.get("fallback_channel"), _OTHER["message"])
        more.append(wording.DONE_MORE["fell_back"].format(why=why, noun=noun))
    elif fallback:  # opted out of the step's channel: it went by the other one at once
        noun = wording.CHANNEL_NOUNS.get(result.get("channel"), _OTHER["message"])
        why = reason_words(fallback.partition(": ")[2], names)  # "sent by sms: <why not the first>"
        more.append(wording.DONE_MORE["instead"].format(noun=noun, why=why))
    withdrawn = result.get("withdrawn")
    if isinstance(withdrawn, dict):
        why = reason_words(withdrawn.get("why"), names)
        more.append(wording.DONE_MORE["withdrawn"].format(when=when(withdrawn.get("at"), names), why=why))
    moves = result.get("moved") or []
    if moves:
        more.append(wording.DONE_MORE["held"].format(why=reason_words(moves[-1].get("why"), names)))
    return "".join(f"; {part}" for part in more)


def _stopped(step: dict, known: Known) -> str:
    status = step.get("status")
    result = step.get("result") or {}
    key = "held_back" if status == "skipped" and result.get("held_back_by") else status
    template = wording.STOPPED.get(key, wording.STOPPED["skipped"])
    why = reason_words(step.get("reason") or result.get("reason"), known.names) or wording.NO_REASON
    return template.format(why=why, thing=thing(step, known), when=when(step.get("run_at"), known.names))


def _whys(step: dict, known: Known) -> list[str]:
    """Why the step exists (the cadence, a sequence, a rule, the orphan sweep) and, planned, what
    held it: each said once, after the sentence."""
    action, names, whys = step.get("action") or {}, known.names, []
    if action.get("cadence"):
        whys.append(wording.WHY["cadence"].format(attempt=action["cadence"]))
    if action.get("break_up"):
        whys.append(wording.WHY["break_up"])
    if action.get("not_after"):
        whys.append(wording.WHY["reminder"])
    if step.get("sequence") and step.get("action_type") != "sequence_wait":
        number = (step["sequence"].get("step") or 0) + 1
        whys.append(wording.WHY["sequence"].format(step=number, sequence=_sequence(step, known)))
    if step.get("sweep"):
        whys.append(wording.WHY["sweep"])
    if step.get("rule"):
        rule = step["rule"].get("name") or _OTHER["rule"]
        event = (step.get("event") or {}).get("type")
        if event:  # the rule ran when this happened: "when a new lead comes in"
            whys.append(wording.WHY["rule_when"].format(rule=rule, event=trigger_label(event).lower()))
        else:
            whys.append(wording.WHY["rule"].format(rule=rule))
    if step.get("status") == "scheduled":
        result = step.get("result") or {}
        # A planned step's reason is why it was planned; the cadence's and the sweep's are said above.
        if result.get("reason") and not (action.get("cadence") or step.get("sweep")):
            whys.append(wording.WHY["because"].format(why=reason_words(result["reason"], names)))
        for move in result.get("moved") or []:
            moved = {"when": when(move.get("from"), names), "why": reason_words(move.get("why"), names)}
            whys.append(wording.WHY["held"].format(**moved))
    return whys


# --- the engine's reasons, in words ---------------------------------------------------------------


def reason_words(reason: str | None, names: Names) -> str:
    """An engine's reason as the clinic says it: a known one by its pattern (wording.REASONS), any
    other with its times in the clinic's zone and its codes (a stage's slug, a channel) as words."""
    reason = (reason or "").strip()
    for pattern, said in wording.REASONS:
        found = re.fullmatch(pattern, reason)
        if found:
            parts = {key: _part(key, value, names) for key, value in found.groupdict().items()}
            return said.format(**parts)
    return _plain(reason, names).rstrip(".")  # said inside a sentence of the panel's


def _part(key: str, value: str, names: Names) -> str:
    if key == "when":
        return when(value, names) if _ISO.fullmatch(value) else value
    if key == "ended":
        return wording.ENDED.get(value, code(value).lower())
    if key == "channel":
        return wording.CHANNEL_PLURALS.get(value, value)
    if key.startswith("stage"):
        return _stage(value, names)
    if key == "by":
        return wording.CHANNEL_WORDS.get(value, value)
    if key == "priority":
        return VALUES["priority"].get(value, code(value)).lower()
    return reason_words(value, names) if not value.isdigit() else value


def _plain(text: str, names: Names) -> str:
    text = _NUMBERED.sub(lambda m: f"the {m.group(1)}", text)
    text = _TYPE_NAME.sub("", text)
    text = _ISO.sub(lambda m: when(m.group(0), names), text)
    text = _CODE.sub(lambda m: names.stages.get(m.group(0)) or code(m.group(0)).lower(), text)
    return _CHANNEL.sub(lambda m: wording.CHANNEL_WORDS[m.group(0)], text)


# --- attempts and sequences -----------------------------------------------------------------------


def attempts_sentences(trail: dict, names: Names) -> list[str]:
    """The failed attempts counted in a row, and each attempt whose reply window is still open."""
    count = trail.get("failed_attempts") or 0
    said = [wording.ATTEMPTS.get(count) or wording.ATTEMPTS["many"].format(count=count)]
    for attempt in trail.get("attempts") or []:
        if attempt.get("counted") or not attempt.get("failed_at"):
            continue
        noun = wording.ATTEMPT_NOUNS.get(attempt.get("type"), _OTHER["message"])
        made = wording.AT.format(when=when(attempt.get("made_at"), names))
        by = when(attempt["failed_at"], names)
        said.append(wording.ATTEMPTS["open"].format(noun=noun, at=made, when=by))
    return said


def enrollment_sentences(enrollment: dict, known: Known) -> list[str]:
    """Where a sequence has the lead (or why it ended), then the path a branching one took: which
    way each wait went, and what it waits for now."""
    names = known.names
    sequence = known.sequences.get(enrollment.get("sequence_id")) or _OTHER["sequence"]
    status = enrollment.get("status")
    parts = {
        "sequence": sequence,
        "since": when(enrollment.get("enrolled_at"), names),
        "next": when(enrollment.get("next_step_at"), names),
        "ended": when(enrollment.get("ended_at"), names),
        "why": wording.ENDED.get(enrollment.get("end_reason"), wording.NO_REASON),
    }
    if status == "active":
        key = "active_next" if enrollment.get("next_step_at") else "active"
    elif status == "completed":
        key = "completed"
    else:
        key = "unenrolled"
    return [wording.ENROLLMENTS[key].format(**parts) + ".", *_path(enrollment.get("path") or [], names)]


def _path(path: list[dict], names: Names) -> list[str]:
    said = []
    for taken in path:
        via = taken.get("via")
        if via:
            parts = {
                "after": _step_named(via.get("after")),
                "outcome": wording.OUTCOMES.get(via.get("outcome"), _OTHER["outcome"]),
                "at": when(via.get("at"), names),
                "step": _step_named(taken.get("key")),
            }
            said.append(wording.PATH["end" if taken.get("key") == "end" else "via"].format(**parts) + ".")
        waiting = taken.get("waiting")
        if waiting:
            parts = {
                "step": _step_named(taken.get("key")),
                "events": _events(waiting.get("for") or []),
                "until": when(waiting.get("until"), names),
            }
            said.append(wording.PATH["waiting"].format(**parts) + ".")
    return said


def _step_named(key) -> str:
    """A sequence's step by the key its author gave it ("intro"), or by its number."""
    key = str(key or "")
    if not key:
        return _OTHER["step"]
    return wording.STEP_NAMED["numbered" if key.isdigit() else "named"].format(key=key)


# --- names ----------------------------------------------------------------------------------------


def _person(user_id, names: Names) -> str:
    if user_id is None:
        return _OTHER["nobody"]
    return names.users.get(user_id) or _OTHER["person"]


def _people(user_ids: list, names: Names) -> str:
    return _listed([_person(user_id, names) for user_id in user_ids])


def _role(role: str | None) -> str:
    return VALUES["role"].get(role, _OTHER["role"]).replace("The ", "the ", 1)


def _whom(action: dict, known: Known) -> str:
    """Who a task is for, or whom a note goes to, as the action names them (the owner by name)."""
    names = known.names
    if action.get("type") == "notify":
        whom = [_person(known.owner_id, names)] if action.get("lead_owner") else []
        whom += [_role(role) for role in action.get("roles") or []]
        whom += [_person(user_id, names) for user_id in action.get("users") or []]
        return _listed(whom)
    assignee = action.get("assignee") or {"kind": "lead_owner"}
    kind = assignee.get("kind")
    if kind == "user":
        return _person(assignee.get("user_id"), names)
    if kind == "role":
        return _role(assignee.get("role"))
    if kind == "round_robin":
        return _OTHER["in_turn"]
    return _person(known.owner_id, names) if known.owner_id else _OTHER["owner"]


def _listed(said: list[str]) -> str:
    """ "Maria", "Maria and Ana", "Maria, Ana and the front desk"; "nobody" for none."""
    if not said:
        return _OTHER["nobody"]
    return said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]


def _new_owner(action: dict, names: Names) -> str:
    if action.get("user_id"):
        return wording.NEW_OWNER["named"].format(user=_person(action["user_id"], names))
    return wording.NEW_OWNER["in_turn"]


def _stage(slug: str | None, names: Names) -> str:
    if not slug:
        return _OTHER["stage"]
    return names.stages.get(slug) or code(slug)


def _sequence(step: dict, known: Known) -> str:
    action, origin = step.get("action") or {}, step.get("sequence") or {}
    sequence_id = action.get("sequence_id") or known.enrollments.get(origin.get("enrollment_id"))
    return known.sequences.get(sequence_id) or _OTHER["sequence"]


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
