"""The follow-up cadence page (/console/settings/cadence), for whoever configures the clinic: what
follows each failed attempt to reach a lead, said as sentences ("After the 1st failed attempt, wait 1
business day(s), then: Call, Text"), and how long a text or email waits for an answer. It reads the
clinic's cadence as the engine does (automation/attempts.cadence_of) and saves through the API's
own request schema and use case (PUT /api/clinic's settings.cadence: ClinicUpdateIn, update_clinic),
so a value the API refuses is refused here with its words, beside its field, nothing saved.

Without script: "Add a touch" draws the form again with one more (kept by "Save cadence"); a touch
ticked "Remove" is left out when it is saved; "Reset to the default" saves the default at once
(settings.cadence null). Enter in a field saves (the form's first button)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from app.console.auth import page
from app.console.workspace.form_input import FORM_WIDE
from app.domains.auth import clinic_schemas
from app.domains.auth import service as auth
from app.domains.automation.attempts import cadence_of
from app.platform.api.injection import inject
from app.platform.app_db import unit_of_work
from app.platform.errors import DomainError
from app.platform.roles import Permission

blp = Blueprint("cadence", __name__, url_prefix="/settings/cadence")
TEMPLATE = "console/workspace/cadence.html"
MAX_TOUCHES = 10  # as the API's CadenceIn takes them
# The channels a touch may use, as the form says them (the API's words are its keys).
CHANNELS = (("call", "Call"), ("sms", "Text"), ("email", "Email"))
# The default break-up rule's condition (automation/defaults.py, "three_failed_attempts").
BREAK_UP_AFTER = 3
REPLY_WINDOW = "reply_window"  # the form's name of reply_window_business_days


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _typed(form) -> dict:
    """The form as typed: its touches (the wait as text, the channels ticked; those ticked "Remove"
    left out) and the reply window."""
    touches = []
    for n in range(1, MAX_TOUCHES + 2):  # one more than the API takes: its refusal says so
        if f"touch-{n}-wait" not in form:
            break
        if form.get(f"touch-{n}-remove"):
            continue
        touches.append(
            {"wait": form.get(f"touch-{n}-wait", "").strip(), "channels": form.getlist(f"touch-{n}-channels")}
        )
    return {"touches": touches, "reply_window": form.get(REPLY_WINDOW, "").strip()}


def _shown(cadence: dict) -> dict:
    """A saved cadence as the form shows it."""
    return {
        "touches": [
            {"wait": str(touch["after_business_days"]), "channels": list(touch["channels"])}
            for touch in cadence["touches"]
        ],
        "reply_window": str(cadence["reply_window_business_days"]),
    }


def _number(text: str):
    """Digits as the integer the API's strict schema takes; anything else for it to refuse in its words."""
    return int(text) if text.isdigit() and len(text) < 10 else text


def _request_body(typed: dict) -> dict:
    """The form as PUT /api/clinic's body."""
    touches = [
        {"after_business_days": _number(t["wait"]), "channels": t["channels"]} for t in typed["touches"]
    ]
    return {
        "settings": {
            "cadence": {"touches": touches, "reply_window_business_days": _number(typed["reply_window"])}
        }
    }


def _errors(messages) -> dict[str, list[str]]:
    """The API's refusal of settings.cadence as errors by the form's field names."""
    cadence = (messages.get("settings") or {}).get("cadence") if isinstance(messages, dict) else None
    if not isinstance(cadence, dict):
        return {FORM_WIDE: [str(messages)]}
    errors: dict[str, list[str]] = {}
    for key, value in cadence.items():
        if key == "reply_window_business_days":
            errors[REPLY_WINDOW] = list(value)
        elif key == "touches" and isinstance(value, dict):
            for index, fields in value.items():
                for field, texts in fields.items():
                    name = "wait" if field == "after_business_days" else "channels"
                    errors[f"touch-{int(index) + 1}-{name}"] = _texts(texts)
        else:
            errors.setdefault(FORM_WIDE, []).extend(_texts(value))
    return errors


def _texts(value) -> list[str]:
    if isinstance(value, dict):  # a channel's own refusal, by its position
        return [text for texts in value.values() for text in _texts(texts)]
    return [str(text) for text in value] if isinstance(value, list | tuple) else [str(value)]


def _draw(typed: dict, *, errors: dict | None = None, unsaved: bool = False, status: int = 200):
    return (
        render_template(
            TEMPLATE,
            typed=typed,
            errors=errors or {},
            unsaved=unsaved,
            channels=CHANNELS,
            ordinal=ordinal,
            max_touches=MAX_TOUCHES,
            break_up_after=BREAK_UP_AFTER,
        ),
        status,
    )


@blp.route("")
@page(Permission.CONFIGURE)
@inject
def show(*, uow, actor):
    clinic = auth.get_clinic(session=uow, clinic_id=actor.clinic_id)
    return _draw(_shown(cadence_of(clinic)))


@blp.route("", methods=["POST"])
@page(Permission.CONFIGURE)
@inject
def save(*, actor, now, settings):
    """Save the cadence as PUT /api/clinic does (in a unit of its own: a refusal rolls it all back),
    or draw the form again with a touch added."""
    typed = _typed(request.form)
    asked = request.form.get("do", "save")
    if asked == "add":
        added = {"wait": "1", "channels": ["call"]}
        return _draw({**typed, "touches": [*typed["touches"], added]}, unsaved=True)
    body = {"settings": {"cadence": None}} if asked == "reset" else _request_body(typed)
    try:
        changes = clinic_schemas.ClinicUpdateIn().load(body)
        with unit_of_work() as uow:
            auth.update_clinic(session=uow, actor=actor, changes=changes, now=now, config=settings)
    except ValidationError as error:
        return _draw(typed, errors=_errors(error.messages), status=422)
    except DomainError as error:
        return _draw(typed, errors={FORM_WIDE: [error.message]}, status=error.status)
    flash("The default cadence is back." if asked == "reset" else "Cadence saved.")
    return redirect(url_for(".show"), code=303)
