"""A rule's conditions and actions checked when it is saved, so a worker never meets a rule it cannot
run. Pure logic: no I/O, no clock. Errors come by path (`{"0": {"any": {"1": {"operator": [...]}}}}`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.domains.automation.language.triggers import TRIGGERS
from app.domains.automation.rules import (
    ACTION_TYPES,
    ANCHORED_UNITS,
    ASSIGNEES,
    DELAY_ANCHORS,
    DELAY_UNITS,
    FIELDS,
    GROUPS,
    LIST_OPERATORS,
    LOST_REASONS,
    MAX_CONDITIONS,
    MAX_DELAY_AMOUNT,
    MAX_GROUP_DEPTH,
    MAX_ONCE_PER_HOURS,
    MAX_RECIPIENTS,
    OPERATORS,
    PRIORITIES,
    RECHECKS,
    ROLES,
    SUGGESTIONS,
    TASK_TYPES,
    group_of,
)
from app.domains.conversations import whatsapp
from app.domains.lead_messages.merge_fields import merge_field_error
from app.domains.leads.models import LeadPriority
from app.domains.pipeline import rules as pipeline_rules
from app.platform.db import MAX_ID


def validate_conditions(conditions: Any) -> dict:
    """Errors by path (`{"0": {"any": {"1": {"value": [...]}}}}`, read conditions.0.any.1.value),
    empty when the conditions are valid."""
    if not isinstance(conditions, list):
        return {"_schema": ["must be a list of conditions"]}
    errors = _items_errors(conditions, depth=0)
    if not errors and _count(conditions) > MAX_CONDITIONS:
        errors["_schema"] = [f"at most {MAX_CONDITIONS} conditions in all, groups' included"]
    return errors


def _count(items: list) -> int:
    """How many conditions (leaves) the items hold, in their groups too."""
    total = 0
    for item in items:
        kind = group_of(item)
        total += 1 if kind is None else _count([item[kind]] if kind == "not" else item[kind])
    return total


def _items_errors(items: list, depth: int) -> dict:
    errors: dict = {}
    for index, item in enumerate(items):
        problems = _item_errors(item, depth)
        if problems:
            errors[str(index)] = problems
    return errors


def _item_errors(item: Any, depth: int) -> dict:
    """A condition, or a group of them: {"all": [...]}, {"any": [...]}, {"not": item}."""
    kind = group_of(item) if isinstance(item, dict) else None
    if kind is None:
        return _condition_errors(item)
    if set(item) != {kind}:
        extra = ", ".join(sorted(set(item) - {kind}))
        return {"_schema": [f"a group has one key ({', '.join(GROUPS)}); also found: {extra}"]}
    if depth >= MAX_GROUP_DEPTH:
        return {kind: [f"groups nest at most {MAX_GROUP_DEPTH} levels deep"]}
    inner = item[kind]
    if kind == "not":
        problems = (
            _item_errors(inner, depth + 1)
            if isinstance(inner, dict)
            else {"_schema": ["not takes one condition or group"]}
        )
    elif not isinstance(inner, list) or not inner:
        problems = {"_schema": [f"{kind} takes a non-empty list of conditions or groups"]}
    else:
        problems = _items_errors(inner, depth + 1)
    return {kind: problems} if problems else {}


def _condition_errors(condition: Any) -> dict:
    if not isinstance(condition, dict):
        return {"_schema": ["must be an object with field, operator and value, or a group"]}
    problems: dict = {}
    name, operator = condition.get("field"), condition.get("operator")
    if name not in FIELDS:
        problems["field"] = [f"unknown field {name!r}; known: {', '.join(FIELDS)}"]
    if operator not in OPERATORS:
        problems["operator"] = [f"unknown operator {operator!r}; known: {', '.join(OPERATORS)}"]
    elif operator in LIST_OPERATORS and not isinstance(condition.get("value"), list):
        problems["value"] = [f"{operator} takes a list of values"]
    elif operator != "exists" and "value" not in condition:
        problems["value"] = ["required"]
    unknown = set(condition) - {"field", "operator", "value"}
    if unknown:
        problems["_schema"] = [f"unknown keys: {', '.join(sorted(unknown))}"]
    return problems


def validate_actions(actions: Any) -> dict:
    """Errors by position, empty when every action can be run."""
    if not isinstance(actions, list) or not actions:
        return {"_schema": ["must be a non-empty list of actions"]}
    errors: dict = {}
    for index, action in enumerate(actions):
        problems = _action_errors(action)
        if problems:
            errors[str(index)] = problems
    return errors


def _action_errors(action: Any) -> dict:
    if not isinstance(action, dict):
        return {"_schema": ["must be an object with a type"]}
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        return {"type": [f"unknown action type {kind!r}; known: {', '.join(ACTION_TYPES)}"]}
    problems = _delay_errors(action.get("delay"))
    problems.update(_ACTION_CHECKS[kind](action))
    return problems


def _delay_errors(delay: Any) -> dict:
    if delay is None:
        return {}
    if not isinstance(delay, dict):
        return {"delay": ["must be {amount, unit}"]}
    amount, unit = delay.get("amount"), delay.get("unit")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 <= amount <= MAX_DELAY_AMOUNT:
        return {"delay": [f"amount must be a number from 0 to {MAX_DELAY_AMOUNT}"]}
    if unit not in DELAY_UNITS:
        return {"delay": [f"unknown unit {unit!r}; known: {', '.join(DELAY_UNITS)}"]}
    unknown = set(delay) - {"amount", "unit", "before"}
    if unknown:
        return {"delay": [f"unknown keys: {', '.join(sorted(unknown))}"]}
    anchor = delay.get("before")
    if anchor is not None and anchor not in DELAY_ANCHORS:
        return {"delay": [f"before must be one of {', '.join(DELAY_ANCHORS)}"]}
    if anchor is not None and unit not in ANCHORED_UNITS:
        return {"delay": [f"a delay before {anchor} counts in {', '.join(ANCHORED_UNITS)}"]}
    return {}


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    """A row id the database can hold (its `integer` columns): a bigger number would fail there."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def _text_errors(action: dict, *parts: str) -> dict:
    """Merge-field texts of an action that are not text, too long, or cannot be rendered."""
    problems: dict = {}
    for part in parts:
        text = action.get(part)
        if text is None:
            continue
        error = merge_field_error(text) if isinstance(text, str) else "must be text"
        if error:
            problems[part] = [error]
    return problems


def _task_errors(action: dict) -> dict:
    problems: dict = _text_errors(action, "title", "description")
    template_id = action.get("template_id")
    if template_id is not None and not _is_id(template_id):
        problems["template_id"] = [f"an id from 1 to {MAX_ID}"]
    has_template = template_id is not None or action.get("template") == "stage"
    if not has_template and not action.get("title"):
        problems["title"] = ["a task needs a title, a template_id, or template 'stage'"]
    if action.get("task_type", "CALL") not in TASK_TYPES:
        problems["task_type"] = [f"one of {', '.join(TASK_TYPES)}"]
    if action.get("priority", "NORMAL") not in PRIORITIES:
        problems["priority"] = [f"one of {', '.join(PRIORITIES)}"]
    problems.update(_assignee_errors(action.get("assignee", {"kind": "lead_owner"})))
    minutes = action.get("escalate_after_minutes")
    if minutes is not None and not (_is_whole(minutes) and 1 <= minutes <= MAX_DELAY_AMOUNT):
        problems["escalate_after_minutes"] = [f"whole minutes after the due time, 1 to {MAX_DELAY_AMOUNT}"]
    for flag in ("deferred", "notify_owner", "follow_lead_priority"):
        if not isinstance(action.get(flag, False), bool):
            problems[flag] = ["must be true or false"]
    problems.update(_recheck_errors(action.get("recheck")))
    return problems


def _recheck_errors(recheck: Any) -> dict:
    """A deferred task's re-check when it fires: stages it must still be in, same stay, no contact."""
    if recheck is None:
        return {}
    if not isinstance(recheck, dict) or set(recheck) - set(RECHECKS):
        return {"recheck": [f"an object of {', '.join(RECHECKS)}"]}
    stages = recheck.get("stages", [])
    if not isinstance(stages, list) or not all(isinstance(slug, str) for slug in stages):
        return {"recheck": ["stages must be a list of stage slugs"]}
    if not all(isinstance(recheck.get(flag, False), bool) for flag in RECHECKS[1:]):
        return {"recheck": ["same_stay and no_contact_since_event are true or false"]}
    return {}


def _assignee_errors(assignee: Any) -> dict:
    if not isinstance(assignee, dict) or assignee.get("kind") not in ASSIGNEES:
        return {"assignee": [f"kind must be one of {', '.join(ASSIGNEES)}"]}
    if assignee["kind"] == "role" and assignee.get("role") not in ROLES:
        return {"assignee": [f"role must be one of {', '.join(ROLES)}"]}
    if assignee["kind"] == "user" and not _is_id(assignee.get("user_id")):
        return {"assignee": ["user_id (an id) is required for kind 'user'"]}
    return {}


# A message's other channel, tried when its own fails for good (app/domains/automation/executors/fallback.py).
FALLBACKS = {"email": ("sms",), "sms": ("email",), "whatsapp": ("sms",)}
MESSAGE_CHANNELS = {"send_email": "email", "send_sms": "sms", "send_whatsapp": "whatsapp"}


def _message_errors(action: dict) -> dict:
    problems: dict = {}
    if not isinstance(action.get("break_up", False), bool):
        problems["break_up"] = ["true or false: a break-up message is not counted as an attempt"]
    hours = action.get("once_per_hours")
    if hours is not None and not (_is_whole(hours) and 1 <= hours <= MAX_ONCE_PER_HOURS):
        problems["once_per_hours"] = [f"whole hours from 1 to {MAX_ONCE_PER_HOURS}"]
    channel = MESSAGE_CHANNELS.get(action["type"], "sms")
    if channel == "whatsapp":
        problems.update(whatsapp.template_errors(action))
    elif "content_sid" in action or "content_variables" in action:
        problems["content_sid"] = ["a WhatsApp template: only on send_whatsapp"]
    if "fallback_channel" in action and action["fallback_channel"] not in FALLBACKS.get(channel, ()):
        problems["fallback_channel"] = [
            f"the other channel ({FALLBACKS[channel][0]}), used if {channel} fails for good"
        ]
    parts = ("subject", "body") if action["type"] == "send_email" else ("body",)
    if channel == "whatsapp" and action.get("content_sid"):
        parts = ()  # the approved template is the message; a body is sent inside the window
    if "template_id" in action:  # the texts are a message template's (checked to exist when saved)
        if not _is_id(action["template_id"]):
            problems["template_id"] = [f"an id from 1 to {MAX_ID}"]
        for part in ("subject", "body"):
            if part in action:
                problems[part] = ["give either a template_id or the texts, not both"]
        return problems
    for part in parts:
        text = action.get(part)
        if not isinstance(text, str) or not text.strip():
            problems[part] = ["required"]
            continue
        error = merge_field_error(text)
        if error:
            problems[part] = [error]
    return problems


def _notify_errors(action: dict) -> dict:
    problems: dict = _text_errors(action, "title", "body")
    if not (action.get("users") or action.get("roles") or action.get("lead_owner")):
        problems["users"] = ["name users, roles, or lead_owner: true"]
    users = action.get("users") or []
    if not isinstance(users, list) or len(users) > MAX_RECIPIENTS or not all(_is_id(u) for u in users):
        problems["users"] = [f"a list of at most {MAX_RECIPIENTS} user ids"]
    if not isinstance(action.get("roles") or [], list):
        problems["roles"] = [f"roles are {', '.join(ROLES)}"]
        return problems
    if any(role not in ROLES for role in action.get("roles") or []):
        problems["roles"] = [f"roles are {', '.join(ROLES)}"]
    if not action.get("title"):
        problems["title"] = ["required"]
    return problems


def _assign_errors(action: dict) -> dict:
    if action.get("policy") == "clinic" or _is_id(action.get("user_id")):
        return {}
    return {"policy": ["'clinic' (the clinic's assignment policy) or a user_id"]}


def _enroll_errors(action: dict) -> dict:
    return (
        {} if _is_id(action.get("sequence_id")) else {"sequence_id": [f"required: an id from 1 to {MAX_ID}"]}
    )


def _suggest_errors(action: dict) -> dict:
    if action.get("suggestion") in SUGGESTIONS:
        return {}
    return {"suggestion": [f"one of {', '.join(SUGGESTIONS)}"]}


def _stage_errors(action: dict) -> dict:
    """A stage slug; lost needs a LostReason; conversion (treatment_started) is a person's decision."""
    stage, reason = action.get("stage"), action.get("reason")
    if not isinstance(stage, str) or not stage.strip() or len(stage) > 64:
        return {"stage": ["a stage slug of the clinic's pipeline, e.g. contacted"]}
    if stage == pipeline_rules.TREATMENT_STARTED:
        return {"stage": ["treatment_started converts the lead: a person converts, not a rule"]}
    if stage == pipeline_rules.LOST and reason not in LOST_REASONS:
        return {"reason": [f"moving to lost needs a reason: {', '.join(LOST_REASONS)}"]}
    if stage != pipeline_rules.LOST and reason is not None:
        return {"reason": ["a reason is only for moving to lost"]}
    if action.get("notes") is not None and not isinstance(action["notes"], str):
        return {"notes": ["text"]}
    return {}


LEAD_PRIORITIES = tuple(p.value for p in LeadPriority)
MAX_RECURRING_TIMES = 52  # a year of weekly follow-ups


def _set_priority_errors(action: dict) -> dict:
    if action.get("priority") in LEAD_PRIORITIES:
        return {}
    return {"priority": [f"one of {', '.join(LEAD_PRIORITIES)}"]}


def _recurring_errors(action: dict) -> dict:
    """A follow-up task every `every_days` while the lead stays in `while_stage`, up to `times`."""
    problems = _task_errors(action)
    every, times, stage = action.get("every_days"), action.get("times"), action.get("while_stage")
    if not (_is_whole(every) and 1 <= every <= 365):
        problems["every_days"] = ["whole days from 1 to 365"]
    if not (_is_whole(times) and 1 <= times <= MAX_RECURRING_TIMES):
        problems["times"] = [f"how many occurrences, 1 to {MAX_RECURRING_TIMES}"]
    if not isinstance(stage, str) or not stage.strip() or len(stage) > 64:
        problems["while_stage"] = ["the stage slug the lead must stay in, e.g. pending_decision"]
    for key in ("deferred", "recheck"):
        if key in action:
            problems[key] = ["a recurring follow-up checks the stage itself: leave this out"]
    return problems


_ACTION_CHECKS: dict[str, Callable[[dict], dict]] = {
    "create_task": _task_errors,
    "send_email": _message_errors,
    "send_sms": _message_errors,
    "send_instagram": _message_errors,
    "send_whatsapp": _message_errors,
    "notify": _notify_errors,
    "assign": _assign_errors,
    "enroll_sequence": _enroll_errors,
    "suggest": _suggest_errors,
    "update_stage": _stage_errors,
    "set_priority": _set_priority_errors,
    "recurring_follow_up": _recurring_errors,
}


def vocabulary() -> dict:
    """The words a rule is made of, the very lists the checks above accept: what a rule builder
    offers (triggers, fields, operators, groups, action types, delay units) and the nesting limit."""
    return {
        "triggers": list(TRIGGERS),
        "fields": list(FIELDS),
        "operators": list(OPERATORS),
        "list_operators": list(LIST_OPERATORS),
        "groups": list(GROUPS),
        "max_group_depth": MAX_GROUP_DEPTH,
        "max_conditions": MAX_CONDITIONS,
        "action_types": list(ACTION_TYPES),
        "delay_units": list(DELAY_UNITS),
        "task_types": list(TASK_TYPES),
        "assignees": list(ASSIGNEES),
    }
