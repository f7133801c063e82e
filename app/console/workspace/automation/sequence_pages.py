"""The sequences pages (/console/sequences): the clinic's sequences, and one sequence's steps in order
with their delays, channels, templates or texts and branches; an admin may change a step's delay or
move it up or down, saved through the API's update (its request schema checks the steps and the
branches' graph, its service the rest)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from app.console import forms
from app.console.auth import page
from app.console.workspace.automation.blueprint import blp
from app.console.workspace.automation.drafts import flatten
from app.domains.automation import rules
from app.domains.sequences import schemas
from app.domains.sequences import service as sequences
from app.platform.api.injection import inject
from app.platform.roles import Permission


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
    return _render(sequence, {})


@blp.route("/sequences/<int:sequence_id>/steps", methods=["POST"])
@page(Permission.CONFIGURE)
@inject
def sequence_steps(sequence_id, *, uow, actor, now, settings):
    """The steps with the delays typed, and the one step moved if a move button was pressed."""
    sequence = sequences.get_sequence(session=uow, clinic_id=actor.clinic_id, sequence_id=sequence_id)
    steps = schemas.SequenceStepOut(many=True).dump(sequence.steps)
    for index, step in enumerate(steps):
        amount = (request.form.get(f"amount-{index}") or "").strip()
        step["delay"] = {
            "amount": int(amount) if amount.isdigit() else amount,
            "unit": request.form.get(f"unit-{index}") or step["delay"]["unit"],
        }
    _move(steps, request.form.get("move") or "")
    try:
        loaded = schemas.SequenceUpdateIn().load({"steps": steps})
    except ValidationError as wrong:
        return _render(sequence, flatten(wrong.messages)), 422
    sequences.update_sequence(
        session=uow, actor=actor, sequence_id=sequence.id, data=loaded, now=now, settings=settings
    )
    flash("Steps saved")
    return redirect(url_for("console.automation.sequence_show", sequence_id=sequence.id), 303)


def _move(steps: list, move: str) -> None:
    """`3:up` swaps step 3 with step 2; `3:down` with step 4; anything else moves nothing."""
    index, _, way = move.partition(":")
    if not index.isdigit() or way not in ("up", "down"):
        return
    here = int(index)
    there = here - 1 if way == "up" else here + 1
    if 0 <= here < len(steps) and 0 <= there < len(steps):
        steps[here], steps[there] = steps[there], steps[here]


def _render(sequence, errors: dict):
    return render_template(
        "console/workspace/sequence.html",
        sequence=sequence,
        errors=errors,
        units=rules.DELAY_UNITS,
        action=forms.ActionForm(),
    )
