"""The rule language: triggers, fields, operators, actions, evaluation and delays. Pure logic: no
I/O, no clock.

A rule is plain data (JSON in the database, in the API and in the defaults), checked once when it
is saved (`language/validation.py`), so a worker never meets a rule it cannot run. Evaluating a rule
against an event reads a context: a mapping of field names to values, where a computed field (e.g.
`failed_attempts_in_a_row`, a query) is only resolved if a condition asks for it. The texts an
action sends are merge-field templates (app/domains/lead_messages/merge_fields.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.domains.activities import rules as activity_rules
from app.domains.business_hours.rules import (
    BusinessCalendar,
    NeverOpen,
    add_business_days,
    add_business_minutes,
    local_steps_later,
)
from app.domains.leads.models import LostReason
from app.domains.tasks.models import LeadTaskType

# Triggers: the events a rule fires on, in language/triggers.py (named by the events' types).

# --- fields ---------------------------------------------------------------------------------------

LEAD_FIELDS = (
    "status",
    "pipeline_stage",
    "source_id",
    "source_category",
    "source_campaign",
    "assigned_to_id",
    "preferred_contact",
    "treatment_interest",
    "email",
    "phone",
    "city",
    "state",
    "postal_code",
    "insurance_carrier",
    "patient_relationship",
    "suggested_action",
    "hesitation_reason",  # cost, timing, second_opinion, approval, financing, other
    "do_not_contact",
    "email_opt_out",
    "sms_opt_out",
    "score",  # P(conversion within 90 days), 0-1 (app/domains/intelligence); null until scored
    "priority",  # normal, high, urgent (leads.models.LeadPriority)
    "referring_provider_id",  # the dentist who referred the family (an id; no table of providers yet)
)
EVENT_FIELDS = (
    "type",
    "previous_stage",
    "new_stage",
    "stage",
    "kind",
    "outcome",
    "direction",
    "activity_type",
    "source_category",
    "channel",
    "reason",
    "from_user_id",
    "to_user_id",
    "changed",
    "days_in_stage",
    "system",
    "contact",  # activity.logged: a two-way exchange (app/domains/activities/rules.py)
    "attempt",  # activity.logged: an outbound call, email or SMS with no answer
    "failed_attempts",  # lead.attempt_failed: the failed attempts in a row it makes
    "score",
    "previous_score",
    "rescheduled",  # consultation.scheduled: a new time for a booked consultation
)
COMPUTED_FIELDS = (
    "failed_attempts_in_a_row",  # attempts (calls, emails, texts) since the last contact
    "days_in_stage",  # whole days since the lead entered its current stage
    "hours_since_created",
    "stage_task_template_id",  # the task template of the lead's current stage, if any
    # an inbound email/SMS: positive, neutral, negative or unknown (app/domains/intelligence)
    "reply_sentiment",
)
FIELDS = (
    *(f"lead.{name}" for name in LEAD_FIELDS),
    *(f"event.{name}" for name in EVENT_FIELDS),
    *COMPUTED_FIELDS,
)
# The call outcomes of an attempt, as a rule's condition lists them (activities/rules.py decides).
FAILED_OUTCOMES = tuple(sorted(str(o) for o in activity_rules.FAILED_OUTCOMES))

# --- operators ------------------------------------------------------------------------------------


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _equals(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.casefold() == expected.casefold()
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected  # a flag is not the number 1
    number, wanted = _as_number(actual), _as_number(expected)
    if number is not None and wanted is not None:
        return number == wanted
    return actual == expected


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected.casefold() in actual.casefold()
    if isinstance(actual, list | tuple):
        return any(_equals(item, expected) for item in actual)
    return False


def _compare(actual: Any, expected: Any, sign: int) -> bool:
    number, wanted = _as_number(actual), _as_number(expected)
    if number is None or wanted is None:
        return False  # a missing or non-numeric value is neither greater nor less
    return (number - wanted) * sign > 0


def _in(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list | tuple):
        return any(_in(item, expected) for item in actual)  # a list field matches on any member
    return any(_equals(actual, option) for option in expected)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": _equals,
    "not_equals": lambda actual, expected: not _equals(actual, expected),
    "contains": _contains,
    "greater_than": lambda actual, expected: _compare(actual, expected, 1),
    "less_than": lambda actual, expected: _compare(actual, expected, -1),
    "in": _in,
    "not_in": lambda actual, expected: not _in(actual, expected),
    "exists": lambda actual, expected: _present(actual) == (expected is not False),
    # changed_to is `equals` on a field the event changed; see `check`.
    "changed_to": _equals,
}
LIST_OPERATORS = ("in", "not_in")

# --- actions --------------------------------------------------------------------------------------

ACTION_TYPES = (
    "create_task", "send_email", "send_sms", "send_instagram", "send_whatsapp", "notify", "assign",
    "enroll_sequence", "suggest", "update_stage", "set_priority", "recurring_follow_up",
)  # fmt: skip
DELAY_UNITS = ("minutes", "hours", "days", "business_minutes", "business_hours", "business_days")
ASSIGNEES = ("lead_owner", "round_robin", "role", "user")
# The spec's LeadTaskType, the one vocabulary of tasks: a rule cannot make a task the API would refuse.
TASK_TYPES = tuple(t.value for t in LeadTaskType)
PRIORITIES = ("LOW", "NORMAL", "HIGH", "URGENT")
SUGGESTIONS = ("mark_lost", "call", "schedule_consultation", "review")
LOST_REASONS = tuple(reason.value for reason in LostReason)
ROLES = ("front_desk", "treatment_coordinator", "clinic_admin", "doctor")
MESSAGE_ACTIONS = ("send_email", "send_sms", "send_instagram", "send_whatsapp")
# A year of minutes (or of days for a `days` unit: still far inside datetime's range); and the users
# one notify action may name. Bounds checked when a rule is saved, so a worker never meets a bigger one.
MAX_DELAY_AMOUNT = 525_600
MAX_RECIPIENTS = 100
# `once_per_hours` of a message action: at most one such message to a lead per window, up to a year.
MAX_ONCE_PER_HOURS = 8_760
# What a deferred task re-checks when it fires: stages it must still be in, same stay, no contact.
RECHECKS = ("stages", "same_stay", "no_contact_since_event")
# What a delay may count back from (`{"amount": 2, "unit": "hours", "before": "consultation_start"}`):
# the start of the consultation an event names. Plain units only: a reminder is wall-clock time.
DELAY_ANCHORS = ("consultation_start",)
ANCHORED_UNITS = ("minutes", "hours", "days")

# --- evaluation -----------------------------------------------------------------------------------


class Context(Mapping):
    """Field values for one event: plain values, and computed ones resolved once, on first use."""

    def __init__(self, values: dict, computed: dict[str, Callable[[], Any]] | None = None, changed=()):
        self._values = values
        self._computed = computed or {}
        self.changed = frozenset(changed)  # the fields this event changed (for changed_to)

    def __getitem__(self, name: str) -> Any:
        if name not in self._values and name in self._computed:
            self._values[name] = self._computed[name]()
        return self._values.get(name)

    def __iter__(self):
        return iter({*self._values, *self._computed})

    def __len__(self) -> int:
        return len({*self._values, *self._computed})


# Condition groups: a rule's `conditions` is a list that must all hold; an item is a condition
# ({field, operator, value}) or a group: {"all": [...]}, {"any": [...]} or {"not": item}.
GROUPS = ("all", "any", "not")
MAX_CONDITIONS = 50  # in a rule, groups' included
MAX_GROUP_DEPTH = 3  # groups inside groups inside groups, no deeper: a playbook people can read


def group_of(item: dict) -> str | None:
    """The group an item is ("all", "any", "not"), or None for a plain condition."""
    return next((kind for kind in GROUPS if kind in item), None)


def check(condition: dict, context: Context) -> tuple[bool, Any]:
    """One condition: whether it holds, and the value it saw."""
    name, operator = condition["field"], condition["operator"]
    seen = context[name]
    holds = OPERATORS[operator](seen, condition.get("value"))
    if operator == "changed_to":
        holds = holds and name in context.changed
    return holds, seen


@dataclass
class Evaluation:
    matched: bool
    # Each item as evaluated: a condition with the value seen and its result; a group with its
    # items' trails and its result (an `any` stops at the branch that matched).
    conditions: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Compiled:
    """A condition ready to run: the operator resolved once, not per event."""

    field: str
    test: Callable[[Any, Any], bool]
    expected: Any
    needs_change: bool


@dataclass(frozen=True)
class CompiledGroup:
    kind: str  # all, any, not (`not` holds one item)
    items: tuple


def _compiled(item: dict) -> Compiled | CompiledGroup:
    kind = group_of(item)
    if kind == "not":
        return CompiledGroup(kind, (_compiled(item[kind]),))
    if kind:
        return CompiledGroup(kind, compile_conditions(item[kind]))
    return Compiled(
        item["field"], OPERATORS[item["operator"]], item.get("value"), item["operator"] == "changed_to"
    )


def compile_conditions(conditions: list[dict]) -> tuple:
    return tuple(_compiled(item) for item in conditions)


def _holds(node: Compiled | CompiledGroup, context: Context) -> bool:
    if isinstance(node, CompiledGroup):
        if node.kind == "any":
            return any(_holds(item, context) for item in node.items)
        if node.kind == "not":
            return not _holds(node.items[0], context)
        return all(_holds(item, context) for item in node.items)
    if not node.test(context[node.field], node.expected):
        return False
    return not node.needs_change or node.field in context.changed


def matches(compiled: tuple, context: Context) -> bool:
    """The hot path: do all conditions hold? (No trail; `evaluate` writes it for the rules that match.)"""
    return all(_holds(node, context) for node in compiled)


def evaluate(conditions: list[dict], context: Context, *, exhaustive: bool = False) -> Evaluation:
    """All conditions must hold. Stops at the first that fails (an `any` at its first branch that
    holds) unless `exhaustive` (the test endpoint)."""
    matched, trail = _evaluate_all(conditions, context, exhaustive)
    return Evaluation(matched=matched, conditions=trail)


def _evaluate_all(items: list[dict], context: Context, exhaustive: bool) -> tuple[bool, list[dict]]:
    trail, matched = [], True
    for item in items:
        entry = _evaluate_item(item, context, exhaustive)
        trail.append(entry)
        if not entry["result"]:
            matched = False
            if not exhaustive:
                break
    return matched, trail


def _evaluate_item(item: dict, context: Context, exhaustive: bool) -> dict:
    kind = group_of(item)
    if kind == "all":
        holds, trail = _evaluate_all(item[kind], context, exhaustive)
        return {kind: trail, "result": holds}
    if kind == "any":
        trail, holds = [], False
        for branch in item[kind]:
            trail.append(_evaluate_item(branch, context, exhaustive))
            holds = holds or trail[-1]["result"]
            if holds and not exhaustive:
                break  # the branch that matched ends the trail
        return {kind: trail, "result": holds}
    if kind == "not":
        inner = _evaluate_item(item[kind], context, exhaustive)
        return {kind: inner, "result": not inner["result"]}
    holds, seen = check(item, context)
    return {**item, "seen": _jsonable(seen), "result": holds}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set | tuple):
        return sorted(value)
    return value


# --- time -----------------------------------------------------------------------------------------


DEFAULT_ORPHAN_AFTER_HOURS = 24.0


def orphan_after_hours(settings: dict | None) -> float:
    """Hours an open lead may have no next step before the orphan sweep gives it a follow-up task."""
    value = (settings or {}).get("orphan_after_hours")
    return float(DEFAULT_ORPHAN_AFTER_HOURS if value is None else value)


def delay_of(action: dict) -> dict:
    """An action's delay; a recurring follow-up's first occurrence comes `every_days` after its event."""
    if action.get("type") == "recurring_follow_up" and not action.get("delay"):
        return {"amount": action["every_days"], "unit": "days"}
    return action.get("delay") or {"amount": 0, "unit": "minutes"}


def before_anchor(anchor: datetime, delay: dict) -> datetime:
    """When a step counted back from `anchor` falls (a reminder `amount` hours before a consultation)."""
    plain = {"minutes": 1, "hours": 60, "days": 1440}
    return anchor - timedelta(minutes=delay["amount"] * plain[delay["unit"]])


def after_delay(start: datetime, delay: dict, calendar: BusinessCalendar | None) -> datetime:
    """When a step falls: plain units add wall time; business units count the clinic's open time."""
    amount, unit = delay["amount"], delay["unit"]
    if unit == "days" and calendar is not None:
        # Local calendar days: "7 days later" at 09:00 stays 09:00 across a clock change.
        return local_steps_later(calendar.timezone, start, "days", amount)
    plain = {"minutes": 1, "hours": 60, "days": 1440}
    if unit in plain:
        return start + timedelta(minutes=amount * plain[unit])
    if calendar is None:
        return after_delay(start, {"amount": amount, "unit": unit.removeprefix("business_")}, None)
    try:
        if unit == "business_days":
            return add_business_days(calendar, start, int(amount)) if amount else start
        return add_business_minutes(calendar, start, amount * (60 if unit == "business_hours" else 1))
    except NeverOpen:  # a clinic with no hours at all: plain time is the best reading
        return after_delay(start, {"amount": amount, "unit": unit.removeprefix("business_")}, None)
