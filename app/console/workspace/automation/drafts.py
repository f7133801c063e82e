"""A rule as the builder posts it (the fields of a plain form, its conditions and actions as JSON),
checked by the same validation as the API's (its request schema, then service.validate_rule) and
its errors flattened to paths (`conditions.0.any.1.value`) the builder shows beside the row."""

from __future__ import annotations

import json
from collections.abc import Mapping

from marshmallow import ValidationError

from app.domains.automation import schemas, service
from app.platform.errors import ValidationFailed

JSON_FIELDS = ("conditions", "actions")
MAX_JSON_CHARS = 100_000  # a rule of 50 conditions and as many actions is far below this


def definition_from(form: Mapping) -> tuple[dict, dict[str, list[str]]]:
    """The rule the form describes, and its errors by path (empty when it can be saved)."""
    draft: dict = {
        "name": (form.get("name") or "").strip(),
        "trigger": form.get("trigger") or "",
        "active": form.get("active") in ("on", "true", True),
        "stop_processing": form.get("stop_processing") in ("on", "true", True),
    }
    if (form.get("description") or "").strip():
        draft["description"] = form["description"].strip()
    errors: dict[str, list[str]] = {}
    for name in JSON_FIELDS:
        text = form.get(name) or "[]"
        try:
            if len(text) > MAX_JSON_CHARS:
                raise ValueError(f"at most {MAX_JSON_CHARS} characters")
            draft[name] = json.loads(text)
        except ValueError as wrong:
            errors[name] = [f"not JSON: {wrong}"]
    if errors:
        return draft, errors
    return draft, check(draft)


def check(draft: dict) -> dict[str, list[str]]:
    """The API's validation of a new rule: its request schema, then the rule language's checks (also
    when the schema refuses another part, e.g. a name not typed yet: every row's error shows at once)."""
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
