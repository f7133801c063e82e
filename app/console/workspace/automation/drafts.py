"""A rule as the builder posts it, read into the rule the API takes, and checked by the API's own
validation (its request schema, then service.validate_rule).

The builder is a plain form, nothing typed as JSON: each condition is a row of fields named by its
path (`conditions.0.any.1.field`, `.operator`, `.value`; a group's `.kind`), each action a form of
its type's fields (`actions.0.title`, `actions.0.delay.amount`, ...). What an action holds that its
form does not show (set through the API: `deferred`, `recheck`, ...) rides along in a hidden
`actions.N.kept`, so an edit keeps it. Errors come back in words (wording_rules.problem), each
placed beside the field it is about (`placed`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from marshmallow import ValidationError

from app.console import wording_rules as words
from app.domains.automation import rules, schemas, service
from app.domains.pipeline import rules as pipeline_rules
from app.platform.db import MAX_ID
from app.platform.errors import ValidationFailed

CONDITION_LISTS = ("conditions", "entry_conditions", "exit_conditions")
MAX_KEPT_CHARS = 20_000  # what one action carries beside its form: far above any real rule's
TASK_KEYS = ("title", "task_type", "priority", "assignee", "description", "notify_owner", "delay")
# Each action type's form: the keys of the action it writes (the rest is kept as it was).
FORM_KEYS = {
    "create_task": TASK_KEYS,
    "recurring_follow_up": (*TASK_KEYS, "every_days", "times", "while_stage"),
    "send_email": ("template_id", "subject", "body", "delay"),
    "send_sms": ("template_id", "body", "delay"),
    "send_whatsapp": ("body", "delay"),
    "send_instagram": ("body", "delay"),
    "notify": ("lead_owner", "roles", "users", "title", "body", "delay"),
    "assign": ("policy", "user_id", "delay"),
    "enroll_sequence": ("sequence_id", "delay"),
    "suggest": ("suggestion", "delay"),
    "update_stage": ("stage", "reason", "notes", "delay"),
    "set_priority": ("priority", "delay"),
}
# A value a form shows when the action has none, written only if the admin changes it (or the
# action had it): an edit leaves an action's JSON as it was.
DEFAULTS = {
    "task_type": "CALL",
    "priority": "NORMAL",
    "assignee": {"kind": "lead_owner"},
    "notify_owner": False,
    "lead_owner": False,
    "delay": {"amount": 0, "unit": "minutes"},
}
# Errors of keys a form shows under another key's field: whom to tell, who gets the lead.
SHOWN_AT = {"roles": "users", "lead_owner": "users", "user_id": "policy"}
NEW_CONDITION: dict = {"field": "", "operator": "equals"}
NEW_ACTION = {"type": "create_task"}
_INDEX = re.compile(r"\.(\d+)\.")


# --- reading the form -------------------------------------------------------------------------------


def _get_all(form: Mapping, key: str) -> list[str]:
    getlist = getattr(form, "getlist", None)
    if getlist is not None:
        return getlist(key)
    value = form.get(key)
    return [] if value is None else value if isinstance(value, list) else [value]


def _text(form: Mapping, key: str) -> str:
    return (form.get(key) or "").strip()


def draft_from(form: Mapping) -> tuple[dict, dict[str, list[str]]]:
    """The rule the form describes, and what the form itself could not read (a number that is not
    one), by path, in words."""
    problems: dict[str, list[str]] = {}
    draft: dict = {
        "name": _text(form, "name"),
        "trigger": form.get("trigger") or "",
        "active": form.get("active") in ("on", "true", True),
        "stop_processing": form.get("stop_processing") in ("on", "true", True),
    }
    if _text(form, "description"):
        draft["description"] = _text(form, "description")
    draft["conditions"] = conditions_from(form, "conditions", problems)
    draft["actions"] = [action_from(form, index, problems) for index in _indexes(form, "actions")]
    return draft, problems


def _indexes(form: Mapping, prefix: str) -> list[int]:
    """The numbers of a list's items in the form (`prefix.N.…`), in order."""
    start = prefix + "."
    found = set()
    for key in form:
        if key.startswith(start):
            head = key[len(start) :].split(".", 1)[0]
            if head.isdigit() and len(head) < 4:
                found.add(int(head))
    return sorted(found)


def conditions_from(form: Mapping, prefix: str, problems: dict, depth: int = 0) -> list:
    """The conditions (and groups of them) the rows under `prefix` describe."""
    return [_item_from(form, f"{prefix}.{index}", problems, depth) for index in _indexes(form, prefix)]


def _item_from(form: Mapping, path: str, problems: dict, depth: int) -> dict:
    kind = form.get(f"{path}.kind")
    if kind is None or depth > rules.MAX_GROUP_DEPTH:  # deeper than the language goes: read no further
        return _condition_from(form, path, problems)
    children = [
        *conditions_from(form, f"{path}.all", problems, depth + 1),
        *conditions_from(form, f"{path}.any", problems, depth + 1),
    ]
    if any(key.startswith(f"{path}.not.") for key in form):
        children.append(_item_from(form, f"{path}.not", problems, depth + 1))
    if kind == "not":
        return {"not": children[0] if len(children) == 1 else {"all": children}}
    return {kind if kind in ("all", "any") else "all": children}


def _condition_from(form: Mapping, path: str, problems: dict) -> dict:
    name = form.get(f"{path}.field") or ""
    operator = form.get(f"{path}.operator") or "equals"
    condition: dict = {"field": name, "operator": operator}
    word = words.FIELDS.get(name) or words.FieldWord("")
    key = f"{path}.value"
    if operator == "exists":
        condition["value"] = form.get(key, "yes") != "no"
    elif word.kind == "yes_no":
        if form.get(key) in ("yes", "no"):
            condition["value"] = form.get(key) == "yes"
    elif operator in rules.LIST_OPERATORS:
        if word.kind == "choice":
            values = [_id_or_text(word, v) for v in _get_all(form, key) if v != ""]
        else:
            values = [part.strip() for part in (form.get(key) or "").split(",") if part.strip()]
        condition["value"] = values
        if not values:
            problems[key] = ["Choose or type at least one value."]
    elif (text := _text(form, key)) != "":
        condition["value"] = _typed_value(word, text, key, problems)
    return condition


def _id_or_text(word: words.FieldWord, text: str):
    if word.values in ("users", "sources") and text.isdigit() and len(text) < 11:
        return int(text)
    return text


def _typed_value(word: words.FieldWord, text: str, key: str, problems: dict):
    if word.kind == "number":
        number = _number(text)
        if number is None:
            problems[key] = ["Type a number."]
            return text
        return number
    return _id_or_text(word, text)


def _number(text: str) -> int | float | None:
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _whole(text: str):
    """A whole number typed, else the text itself (the API's check names it)."""
    return int(text) if text.isdigit() and len(text) < 10 else text


def _kept_of(form: Mapping, path: str, kind: str) -> tuple[dict, set[str]]:
    """What the action had beside its form (only if its type is unchanged), and the form's keys it had."""
    text = form.get(f"{path}.kept") or ""
    try:
        kept = json.loads(text) if 0 < len(text) <= MAX_KEPT_CHARS else {}
    except ValueError:
        kept = {}
    if not isinstance(kept, dict) or kept.get("type") != kind:
        return {}, set()
    rest = kept.get("rest") if isinstance(kept.get("rest"), dict) else {}
    had = {key for key in kept.get("had") or [] if isinstance(key, str)}
    return rest, had


def action_from(form: Mapping, index: int, problems: dict) -> dict:
    """The action the form of `actions.<index>` describes."""
    path = f"actions.{index}"
    kind = form.get(f"{path}.type") or ""
    rest, had = _kept_of(form, path, kind)
    action: dict = {"type": kind, **rest}
    for key in FORM_KEYS.get(kind, ()):
        value = _action_value(form, path, key, kind)
        if value is None or value in ("", []) or (value == DEFAULTS.get(key) and key not in had):
            continue
        action[key] = value
    if kind in ("send_email", "send_sms") and "template_id" in action:
        action.pop("subject", None)
        action.pop("body", None)
    if kind == "update_stage" and action.get("stage") != pipeline_rules.LOST:
        action.pop("reason", None)
    return action


def _action_value(form: Mapping, path: str, key: str, kind: str):
    field = f"{path}.{key}"
    if key == "delay":
        return _delay_from(form, field)
    if key == "assignee":
        return _assignee_from(form.get(field) or "lead_owner")
    if key in ("notify_owner",):
        return form.get(field) in ("on", "true")
    if key in ("lead_owner", "roles", "users"):
        whom = _get_all(form, f"{path}.whom")
        if key == "lead_owner":
            return "owner" in whom
        prefix = "role:" if key == "roles" else "user:"
        picked = [w.removeprefix(prefix) for w in whom if w.startswith(prefix)]
        return [int(p) for p in picked if p.isdigit() and int(p) <= MAX_ID] if key == "users" else picked
    if key in ("policy", "user_id"):
        to = form.get(f"{path}.to") or ""
        if key == "policy":
            return "clinic" if to == "clinic" else None
        user = to.removeprefix("user:")
        return int(user) if to.startswith("user:") and user.isdigit() and int(user) <= MAX_ID else None
    text = _text(form, field)
    if key in ("template_id", "sequence_id", "every_days", "times"):
        return _whole(text) if text else None
    if key == "priority" and kind == "set_priority":
        return text or None
    return text or None


def _delay_from(form: Mapping, field: str) -> dict | None:
    amount = _text(form, f"{field}.amount")
    unit = form.get(f"{field}.unit") or "minutes"
    before = form.get(f"{field}.before") or ""
    if amount == "" and not before:
        return None
    delay: dict = {"amount": _whole(amount) if amount else 0, "unit": unit}
    if before:
        delay["before"] = before
    return delay


def _assignee_from(text: str) -> dict:
    kind, _, rest = text.partition(":")
    if kind == "role":
        return {"kind": "role", "role": rest}
    if kind == "user" and rest.isdigit() and int(rest) <= MAX_ID:
        return {"kind": "user", "user_id": int(rest)}
    return {"kind": kind if kind in ("lead_owner", "round_robin") else "lead_owner"}


def kept_of(action: dict) -> str:
    """The hidden `actions.N.kept` of an action: its type, what its form does not show, and which of
    the form's keys it had (so a default it did not have is not written)."""
    shown = FORM_KEYS.get(action.get("type"), ())
    return json.dumps(
        {
            "type": action.get("type"),
            "rest": {k: v for k, v in action.items() if k != "type" and k not in shown},
            "had": [k for k in shown if k in action],
        },
        sort_keys=True,
    )


def kept_keys(action: dict) -> list[str]:
    shown = FORM_KEYS.get(action.get("type"), ())
    return [k for k in action if k != "type" and k not in shown]


# --- changing the rows: add and remove (a button posts `do=add:conditions.0`) ----------------------


def _items_at(items: list, parts: list[str]) -> list | None:
    """The list of items a group path names (`[]` for the list itself, `["0"]` for group 0's items)."""
    if not parts:
        return items
    if not parts[0].isdigit() or int(parts[0]) >= len(items):
        return None
    item = items[int(parts[0])]
    kind = words.group_of(item)
    rest = parts[1:]
    if kind in ("all", "any"):
        if rest and rest[0] == kind:
            return _items_at(item[kind], rest[1:])
        return item[kind] if not rest else None
    return None  # a `not` holds one item: nothing is added to it


def change(draft: dict, doing: str) -> str | None:
    """Apply an add or remove button to the draft; the path of the row to focus next, if any."""
    verb, _, path = doing.partition(":")
    head, *parts = path.split(".") if path else [""]
    if verb == "add-action":
        draft["actions"].append(dict(NEW_ACTION))
        return f"actions.{len(draft['actions']) - 1}.type"
    if verb == "remove-action" and path.isdigit() and int(path) < len(draft["actions"]):
        draft["actions"].pop(int(path))
        return "add-action"
    if head not in CONDITION_LISTS or head not in draft:
        return None
    if verb in ("add", "add-group"):
        items = _items_at(draft[head], parts)
        if items is None:
            return None
        items.append(dict(NEW_CONDITION) if verb == "add" else {"any": [dict(NEW_CONDITION)]})
        return f"{_list_path(draft[head], head, parts)}.{len(items) - 1}"
    if verb == "remove" and parts and parts[-1].isdigit():
        items = _items_at(draft[head], _group_parts(parts[:-1]))
        if items is not None and int(parts[-1]) < len(items):
            items.pop(int(parts[-1]))
            return f"add:{'.'.join([head, *_group_parts(parts[:-1])])}"
    return None


def _group_parts(parts: list[str]) -> list[str]:
    """conditions.0.any.1 holds items at conditions.0.any: the group item's path is conditions.0."""
    return parts[:-1] if parts and not parts[-1].isdigit() else parts


def _list_path(items: list, head: str, parts: list[str]) -> str:
    """The path prefix of the items of the group at `parts` (conditions.0 -> conditions.0.any)."""
    path, current = head, items
    for part in parts:
        if not part.isdigit():
            continue
        item = current[int(part)]
        kind = words.group_of(item)
        path = f"{path}.{part}.{kind}"
        current = item[kind]
    return path


# --- checking ---------------------------------------------------------------------------------------


def check(draft: dict) -> dict[str, list[str]]:
    """The API's validation of a new rule: its request schema, then the rule language's checks (also
    when the schema refuses another part, e.g. a name not typed yet: every row's error shows at once).
    Errors by path, in the API's terms."""
    errors: dict[str, list[str]] = {}
    try:
        loaded = schemas.RuleCreateIn().load(draft)
    except ValidationError as wrong:
        errors = flatten(wrong.messages)
        loaded = {
            part: draft[part]
            for part in ("trigger", "conditions", "actions")
            if part in draft and not any(path.split(".")[0] == part for path in errors)
        }
    try:
        service.validate_rule(loaded)
    except ValidationFailed as wrong:
        errors.update(flatten(wrong.errors["json"]))
    return errors


def definition_from(form: Mapping) -> tuple[dict, dict[str, list[str]]]:
    """The rule the form describes and its errors, in words, each at the field it is about."""
    draft, problems = draft_from(form)
    return draft, placed(draft, {**in_words(check(draft)), **problems})


def in_words(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    said: dict[str, list[str]] = {}
    for path, messages in errors.items():
        head, _, last = path.rpartition(".")
        where = f"{head}.{SHOWN_AT[last]}" if head and last in SHOWN_AT else path
        for message in messages:
            text = words.problem(path, message)
            if text not in said.setdefault(where, []):
                said[where].append(text)
    return said


def holders(draft: dict) -> set[str]:
    """Every path the builder shows an error beside: each field, each row, each list."""
    found = {"name", "trigger", "lead_id", *CONDITION_LISTS, "actions"}
    for head in CONDITION_LISTS:
        _condition_holders(draft.get(head) or [], head, found)
    for index, action in enumerate(draft.get("actions") or []):
        path = f"actions.{index}"
        found |= {path, f"{path}.type"}
        found |= {f"{path}.{SHOWN_AT.get(key, key)}" for key in FORM_KEYS.get(action.get("type"), ())}
    return found


def _condition_holders(items: list, prefix: str, found: set) -> None:
    for index, item in enumerate(items if isinstance(items, list) else []):
        _item_holders(item, f"{prefix}.{index}", found)


def _item_holders(item, path: str, found: set) -> None:
    found.add(path)
    kind = words.group_of(item)
    if kind == "not":
        _item_holders(item["not"], f"{path}.not", found)
    elif kind:
        _condition_holders(item[kind], f"{path}.{kind}", found)
    else:
        found |= {f"{path}.field", f"{path}.operator", f"{path}.value"}


def placed(draft: dict, errors: dict[str, list[str]], known: set[str] | None = None) -> dict[str, list[str]]:
    """Each error at the nearest field or row the page shows (conditions.0.any.1.value stays; an error of
    a setting the form does not show goes to its action's row)."""
    known = holders(draft) if known is None else known
    out: dict[str, list[str]] = {}
    for path, messages in errors.items():
        parts = path.split(".")
        where = next(
            (".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in known), ""
        )
        for message in messages:
            if message not in out.setdefault(where or "_form", []):
                out[where or "_form"].append(message)
    return out


def flatten(errors, prefix: str = "") -> dict[str, list[str]]:
    """{"conditions": {"0": {"value": ["..."]}}} -> {"conditions.0.value": ["..."]}; a `_schema`
    message belongs to the item that holds it."""
    if isinstance(errors, list | tuple):
        if all(isinstance(message, str) for message in errors):
            return {prefix or "_schema": list(errors)}
        errors = dict(enumerate(errors))
    flat: dict[str, list[str]] = {}
    for key, inner in errors.items():
        path = prefix if key == "_schema" else f"{prefix}.{key}" if prefix else str(key)
        for where, messages in flatten(inner, path).items():
            flat.setdefault(where or "_schema", []).extend(messages)
    return flat


def field_id(path: str) -> str:
    """The id of the element a path names (_conditions.html's fid)."""
    return "f-" + path.replace(".", "-")


def focus_ids(focus: str | None) -> str:
    """Where the focus goes after a row is added or removed: the ids to try, first found first."""
    if not focus:
        return ""
    if focus.startswith("add:"):
        return "add-" + field_id(focus[4:])
    if focus in ("add-action", "lead_q"):
        return focus
    return f"{field_id(focus)}-field {field_id(focus)}-kind {field_id(focus)}"
