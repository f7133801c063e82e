"""The rule language: triggers, fields, operators, actions and delays. Pure logic: no I/O, no clock.

A rule is plain data (JSON in the database, in the API and in the defaults), checked here once
when it is saved, so a worker never meets a rule it cannot run. Evaluating a rule against an
event reads a context: a mapping of field names to values, where a computed field (e.g.
`failed_attempts_in_a_row`, a query) is only resolved if a condition asks for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from app.activities import rules as activity_rules
from app.business_hours.rules import BusinessCalendar, NeverOpen, add_business_days, add_business_minutes
from app.db import MAX_ID
from app.leads.models import LostReason
from app.pipeline import rules as pipeline_rules
from app.tasks.models import LeadTaskType

# --- triggers -------------------------------------------------------------------------------------

TRIGGERS = (
    "lead.created",
    "lead.updated",
    "lead.stage_changed",
    "lead.assigned",
    "lead.converted",
    "lead.lost",
    "lead.stale",
    "activity.logged",
    "task.overdue",
    "lead.score_changed",  # app/intelligence: the lead's conversion score moved (by 0.05 or more)
)

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
    "do_not_contact",
    "email_opt_out",
    "sms_opt_out",
    "score",  # P(conversion within 90 days), 0-1 (app/intelligence); null until scored
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
    "contact",  # activity.logged: a two-way exchange (app/activities/rules.py)
    "attempt",  # activity.logged: an outbound call, email or SMS with no answer
    "score",
    "previous_score",
)
COMPUTED_FIELDS = (
    "failed_attempts_in_a_row",  # attempts (calls, emails, texts) since the last contact
    "days_in_stage",  # whole days since the lead entered its current stage
    "hours_since_created",
    "stage_task_template_id",  # the task template of the lead's current stage, if any
    "reply_sentiment",  # an inbound email/SMS: positive, neutral, negative or unknown (app/intelligence)
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
    "create_task",
    "send_email",
    "send_sms",
    "notify",
    "assign",
    "enroll_sequence",
    "suggest",
    "update_stage",
)
DELAY_UNITS = ("minutes", "hours", "days", "business_minutes", "business_hours", "business_days")
ASSIGNEES = ("lead_owner", "round_robin", "role", "user")
# The spec's LeadTaskType, the one vocabulary of tasks: a rule cannot make a task the API would refuse.
TASK_TYPES = tuple(t.value for t in LeadTaskType)
PRIORITIES = ("LOW", "NORMAL", "HIGH", "URGENT")
SUGGESTIONS = ("mark_lost", "call", "schedule_consultation", "review")
LOST_REASONS = tuple(reason.value for reason in LostReason)
ROLES = ("front_desk", "treatment_coordinator", "clinic_admin", "doctor")
MESSAGE_ACTIONS = ("send_email", "send_sms")
# A year of minutes (or of days for a `days` unit: still far inside datetime's range); and the users
# one notify action may name. Bounds checked when a rule is saved, so a worker never meets a bigger one.
MAX_DELAY_AMOUNT = 525_600
MAX_RECIPIENTS = 100


# --- validation -----------------------------------------------------------------------------------


def validate_conditions(conditions: Any) -> dict:
    """Errors by position (`{"0": {"operator": [...]}}`), empty when the conditions are valid."""
    if not isinstance(conditions, list):
        return {"_schema": ["must be a list of conditions"]}
    errors: dict = {}
    for index, condition in enumerate(conditions):
        problems = _condition_errors(condition)
        if problems:
            errors[str(index)] = problems
    return errors


def _condition_errors(condition: Any) -> dict:
    if not isinstance(condition, dict):
        return {"_schema": ["must be an object with field, operator and value"]}
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
    return {}


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
    for flag in ("deferred", "notify_owner"):
        if not isinstance(action.get(flag, False), bool):
            problems[flag] = ["must be true or false"]
    problems.update(_recheck_errors(action.get("recheck")))
    return problems


RECHECKS = ("stages", "same_stay", "no_contact_since_event")


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


def _message_errors(action: dict) -> dict:
    problems: dict = {}
    if not isinstance(action.get("break_up", False), bool):
        problems["break_up"] = ["true or false: a break-up message is not counted as an attempt"]
    parts = ("subject", "body") if action["type"] == "send_email" else ("body",)
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


_ACTION_CHECKS: dict[str, Callable[[dict], dict]] = {
    "create_task": _task_errors,
    "send_email": _message_errors,
    "send_sms": _message_errors,
    "notify": _notify_errors,
    "assign": _assign_errors,
    "enroll_sequence": _enroll_errors,
    "suggest": _suggest_errors,
    "update_stage": _stage_errors,
}


# --- merge fields ---------------------------------------------------------------------------------

MERGE_FIELDS = (
    "first_name",
    "last_name",
    "patient_first_name",
    "clinic_name",
    "coordinator_name",
    "stage",
    "task_due_at",
)
# A merge-field text (subject, body, title) is at most this long, and so is what it renders to.
MAX_TEMPLATE_LENGTH = 5000
MAX_RENDERED_LENGTH = 10_000
_SAMPLE_VALUES = dict.fromkeys(MERGE_FIELDS, "x" * 100)  # as long as a real name or date may be
# What a merge text may use: substitution, filters that cannot grow text, and if/else. No loops,
# calls, macros, imports or assignments, so rendering does a bounded amount of work.
_ALLOWED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.If,
    nodes.CondExpr, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Test,
    nodes.Filter, nodes.Concat, nodes.Add, nodes.Getattr, nodes.Getitem, nodes.List, nodes.Tuple,
)  # fmt: skip
_SAFE_FILTERS = (
    "capitalize", "d", "default", "e", "escape", "first", "last", "length", "lower", "string",
    "title", "trim", "truncate", "upper",
)  # fmt: skip


class BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox (no reach into Python objects), and bounded: no loops, calls or globals
    (`range`, `lipsum`), only filters that cannot grow text, and `+` refused past
    MAX_RENDERED_LENGTH, so neither `{{ 'x' * 200000000 }}` nor a nested loop can make a web or
    worker process build hundreds of megabytes or spin."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self):
        super().__init__(undefined=StrictUndefined, autoescape=False)
        self.globals.clear()
        self.filters = {name: self.filters[name] for name in _SAFE_FILTERS}
        self.tests = {name: self.tests[name] for name in ("defined", "undefined", "none", "string")}

    def call_binop(self, context, operator, left, right):
        if operator != "+":
            raise SecurityError(f"the operator {operator} is not allowed in merge text")
        total = sum(len(side) for side in (left, right) if isinstance(side, str | list | tuple))
        if total > MAX_RENDERED_LENGTH:
            raise SecurityError(f"merge text renders to more than {MAX_RENDERED_LENGTH} characters")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):
        raise SecurityError("calls are not allowed in merge text")

    def bounded_template(self, text: str):
        """The compiled text, or a TemplateError when it is too long or uses what is not allowed."""
        if len(text) > MAX_TEMPLATE_LENGTH:
            raise TemplateError(f"merge text is longer than {MAX_TEMPLATE_LENGTH} characters")
        tree = self.parse(text)
        for node in tree.find_all(nodes.Node):
            if not isinstance(node, _ALLOWED_NODES):
                raise TemplateError(f"{type(node).__name__.lower()} is not allowed in merge text")
        return self.from_string(tree)


_MERGE = BoundedSandbox()


def _render_bounded(template, values: dict) -> str:
    """The rendered text, streamed and refused once it passes MAX_RENDERED_LENGTH."""
    parts, size = [], 0
    for part in template.generate(values):
        size += len(part)
        if size > MAX_RENDERED_LENGTH:
            raise SecurityError(f"merge text renders to more than {MAX_RENDERED_LENGTH} characters")
        parts.append(part)
    return "".join(parts)


def merge_field_error(text: str) -> str | None:
    """Why `text` cannot be rendered with the merge fields (an unknown field, bad syntax, too long,
    a loop or call, too much output), or None."""
    try:
        _render_bounded(_MERGE.bounded_template(text), _SAMPLE_VALUES)
    except TemplateError as error:
        return f"{error.message}; merge fields: {', '.join(MERGE_FIELDS)}"
    return None


@functools.lru_cache(maxsize=1024)
def _template(text: str):
    # Compiling a text costs about 1 ms (jinja generates and compiles Python source); a clinic has
    # few texts and each is merged for every lead, so each is compiled once per process.
    return _MERGE.bounded_template(text)


def merge(text: str, values: dict) -> str:
    """`text` with the merge fields filled in; a TemplateError when it breaks the bounds (a text
    saved before the bounds existed), never an unbounded render."""
    return _render_bounded(_template(text), {name: values.get(name) or "" for name in MERGE_FIELDS})


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
    conditions: list[dict] = field(default_factory=list)  # each with the value seen and its result


@dataclass(frozen=True)
class Compiled:
    """A condition ready to run: the operator resolved once, not per event."""

    field: str
    test: Callable[[Any, Any], bool]
    expected: Any
    needs_change: bool


def compile_conditions(conditions: list[dict]) -> tuple[Compiled, ...]:
    return tuple(
        Compiled(c["field"], OPERATORS[c["operator"]], c.get("value"), c["operator"] == "changed_to")
        for c in conditions
    )


def matches(compiled: tuple[Compiled, ...], context: Context) -> bool:
    """The hot path: do all conditions hold? (No trail; `evaluate` writes it for the rules that match.)"""
    for condition in compiled:
        if not condition.test(context[condition.field], condition.expected):
            return False
        if condition.needs_change and condition.field not in context.changed:
            return False
    return True


def evaluate(conditions: list[dict], context: Context, *, exhaustive: bool = False) -> Evaluation:
    """All conditions must hold. Stops at the first that fails unless `exhaustive` (the test endpoint)."""
    trail, matched = [], True
    for condition in conditions:
        holds, seen = check(condition, context)
        trail.append({**condition, "seen": _jsonable(seen), "result": holds})
        if not holds:
            matched = False
            if not exhaustive:
                break
    return Evaluation(matched=matched, conditions=trail)


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
    return action.get("delay") or {"amount": 0, "unit": "minutes"}


def after_delay(start: datetime, delay: dict, calendar: BusinessCalendar | None) -> datetime:
    """When a step falls: plain units add wall time; business units count the clinic's open time."""
    amount, unit = delay["amount"], delay["unit"]
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
