"""The sequences pages (/console/sequences): the clinic's sequences, and one sequence in the clinic's
words: who may start it and who stops early (its entry and exit conditions, edited with the rule
builder's rows), and its steps in order, each with the wait before it, what it sends or asks, and,
for a step that waits for what the family does, its paths: each outcome and where it leads.

An admin changes a step's wait before it and how long a waiting step waits (amounts in days, hours,
business days, ...), moves a step up or down, and edits the entry and exit conditions; all saved
through the API's update (its request schema checks the steps, the branches' graph and the
conditions; its service the rest). Adding or removing a condition row draws the page again, unsaved
(the page's script swaps the form in place)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from app.console import forms, wording_rules
from app.console.auth import page
from app.console.workspace.automation import drafts
from app.console.workspace.automation.blueprint import blp
from app.console.workspace.automation.choices import choices_of
from app.domains.sequences import schemas
from app.domains.sequences import service as sequences
from app.platform.api.injection import inject
from app.platform.roles import Permission

CRITERIA = ("entry_conditions", "exit_conditions")
REDRAWS = ("add", "add-group", "remove", "redraw")


@blp.route("/sequences")
@page(Permission.CONFIGURE)
@inject
def sequences_list(*, uow, actor):
    found = sequences.list_sequences(session=uow, clinic_id=actor.clinic_id)
    return render_template("console/workspace/sequences.html", sequences=found)


@blp.route("/sequences/<int:sequence_id>")
@page(Permission.CONFIGURE)
@inject
def sequence_show(sequence_id, *, uow, actor):
    sequence = sequences.get_sequence(session=uow, clinic_id=actor.clinic_id, sequence_id=sequence_id)
    draft = {
        "steps": schemas.SequenceStepOut(many=True).dump(sequence.steps),
        **{name: getattr(sequence, name) or [] for name in CRITERIA},
    }
    return _render(sequence, draft, {}, choices_of(session=uow, actor=actor))


@blp.route("/sequences/<int:sequence_id>/steps", methods=["POST"])
@page(Permission.CONFIGURE)
@inject
def sequence_steps(sequence_id, *, uow, actor, now, settings):
    """The waits and conditions as typed, and the one step moved if a move button was pressed."""
    sequence = sequences.get_sequence(session=uow, clinic_id=actor.clinic_id, sequence_id=sequence_id)
    choices = choices_of(session=uow, actor=actor)
    draft, problems = _draft_from(request.form, schemas.SequenceStepOut(many=True).dump(sequence.steps))
    doing = request.form.get("do") or "save"
    if doing.partition(":")[0] in REDRAWS:
        focus = drafts.change(draft, doing)
        return _render(sequence, draft, {}, choices, focus=focus)
    _move(draft["steps"], request.form.get("move") or "")
    errors = dict(problems)
    try:
        loaded = schemas.SequenceUpdateIn().load(
            {"steps": draft["steps"], **{name: draft[name] or None for name in CRITERIA}}
        )
    except ValidationError as wrong:
        errors.update(drafts.in_words(drafts.flatten(wrong.messages)))
    if errors:
        return _render(sequence, draft, errors, choices), 422
    sequences.update_sequence(
        session=uow, actor=actor, sequence_id=sequence.id, data=loaded, now=now, settings=settings
    )
    flash("Sequence saved")
    return redirect(url_for("console.automation.sequence_show", sequence_id=sequence.id), 303)


def _draft_from(form, steps: list[dict]) -> tuple[dict, dict]:
    """The steps with the waits typed (before each step, and how long a waiting step waits), and the
    entry and exit conditions as their rows describe them."""
    for index, step in enumerate(steps):
        step["delay"] = _delay(form, f"steps.{index}.delay", step["delay"])
        if step.get("wait"):
            step["wait"]["timeout"] = _delay(form, f"steps.{index}.wait.timeout", step["wait"]["timeout"])
    problems: dict = {}
    draft = {"steps": steps, **{name: drafts.conditions_from(form, name, problems) for name in CRITERIA}}
    return draft, problems


def _delay(form, path: str, was: dict) -> dict:
    amount = (form.get(f"{path}.amount") or "").strip()
    if f"{path}.amount" not in form:
        return was
    return {
        "amount": int(amount) if amount.isdigit() and len(amount) < 10 else amount,
        "unit": form.get(f"{path}.unit") or was["unit"],
    }


def _move(steps: list, move: str) -> None:
    """`3:up` swaps step 3 with step 2; `3:down` with step 4; anything else moves nothing."""
    index, _, way = move.partition(":")
    if not index.isdigit() or way not in ("up", "down"):
        return
    here = int(index)
    there = here - 1 if way == "up" else here + 1
    if 0 <= here < len(steps) and 0 <= there < len(steps):
        steps[here], steps[there] = steps[there], steps[here]


def _holders(draft: dict) -> set[str]:
    found = drafts.holders(draft)
    for index, step in enumerate(draft["steps"]):
        found |= {f"steps.{index}", f"steps.{index}.delay"}
        if step.get("wait"):
            found.add(f"steps.{index}.wait.timeout")
    return found


def _render(sequence, draft: dict, errors: dict, choices, focus: str | None = None):
    return render_template(
        "console/workspace/sequence.html",
        sequence=sequence,
        draft=draft,
        errors=drafts.placed(draft, errors, _holders(draft)),
        choices=choices,
        focus=focus,
        w=wording_rules,
        d=drafts,
        action=forms.ActionForm(),
    )
