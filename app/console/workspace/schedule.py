"""The schedule (/console/schedule, issue 76 item 6): the clinic's consultations by day or by week, for
every provider or one, in the clinic's timezone (schedule_reads.py); from it a scheduled consultation
is moved or cancelled (each on a small page of its own: a form, a confirmation), and one is booked
for a family on a day (find the family, choose a free time) through the lead page's own changes
(schedule_changes.py). Plain links and forms: it works without a script.

Reading it takes lead:read; changing takes lead:create, what the API's book, reschedule and cancel
ask (the front desk books, moves and cancels)."""

from __future__ import annotations

from flask import Blueprint, flash, render_template, request, url_for
from flask import redirect as go_to
from marshmallow import ValidationError

from app.console.auth import page
from app.console.workspace import form_input
from app.console.workspace import schedule_changes as changes
from app.console.workspace import schedule_reads as reads
from app.platform import clock
from app.platform.access import current_actor
from app.platform.api.injection import inject
from app.platform.app_db import unit_of_work
from app.platform.errors import DomainError
from app.platform.roles import Permission

blp = Blueprint("schedule", __name__, url_prefix="/schedule")
KEPT = ("view", "provider", "cancelled")  # the schedule's view, kept through a move or cancel


def _kept() -> dict:
    return {key: request.args[key] for key in KEPT if request.args.get(key)}


def _back_to(visit, session, actor):
    """The schedule of the day the consultation is (now) on, in the view it was changed from."""
    day = changes.day_after(visit, reads.clinic_zone(session, actor))
    return url_for(".show", day=day.isoformat(), **_kept())


@blp.route("")
@page(Permission.READ)
@inject
def show(*, uow, actor, now):
    shown = reads.schedule(session=uow, actor=actor, args=request.args, now=now)
    return render_template("console/workspace/schedule.html", s=shown), 422 if shown["errors"] else 200


def _change(consultation_id: int, template: str, run, done: str):
    """Run `run(session, edit)` in a unit of its own; on success say `done` (a sentence made from the
    consultation) and go back to its day, on a refusal (rolled back) draw the form again with the
    problem beside its field and what was typed still in it."""
    actor, now = current_actor(), clock.now()
    typed = {key: value for key, value in request.form.items() if key != "csrf_token"}
    try:
        with unit_of_work() as uow:
            visit = run(uow, changes.Edit(actor=actor, posted=typed, now=now))
            said, back = changes.done_sentence(done, uow, actor, visit), _back_to(visit, uow, actor)
    except (ValidationError, DomainError) as error:
        problem = form_input.refusal("change", error, typed)
        with unit_of_work() as uow:
            shown = changes.card(session=uow, actor=actor, consultation_id=consultation_id)
        return render_template(template, c=shown, problem=problem, kept=_kept()), problem.status
    flash(said)
    return go_to(back, code=303)


MOVE = "console/workspace/schedule_move.html"
CANCEL = "console/workspace/schedule_cancel.html"


@blp.route("/consultations/<int:consultation_id>/move")
@page(Permission.CREATE)
@inject
def move_form(consultation_id: int, *, uow, actor, now):
    shown = changes.card(session=uow, actor=actor, consultation_id=consultation_id)
    return render_template(MOVE, c=shown, problem=None, kept=_kept())


@blp.route("/consultations/<int:consultation_id>/move", methods=["POST"])
@page(Permission.CREATE)
def move(consultation_id: int):
    return _change(
        consultation_id, MOVE,
        lambda s, edit: changes.move(session=s, consultation_id=consultation_id, edit=edit), "moved",
    )  # fmt: skip


@blp.route("/consultations/<int:consultation_id>/cancel")
@page(Permission.CREATE)
@inject
def cancel_form(consultation_id: int, *, uow, actor, now):
    """The cancel's confirmation step: whose consultation, when, and what cancelling it stops."""
    shown = changes.card(session=uow, actor=actor, consultation_id=consultation_id)
    return render_template(CANCEL, c=shown, problem=None, kept=_kept())


@blp.route("/consultations/<int:consultation_id>/cancel", methods=["POST"])
@page(Permission.CREATE)
def cancel(consultation_id: int):
    return _change(
        consultation_id, CANCEL,
        lambda s, edit: changes.cancel(session=s, consultation_id=consultation_id, edit=edit), "cancelled",
    )  # fmt: skip


@blp.route("/consultations/<int:consultation_id>/<any('check-in', 'no-show'):action>", methods=["POST"])
@page(Permission.CREATE)
def attendance(consultation_id: int, action: str):
    """Checked in or a no-show, from the consultation's row; back to the same view with a flash, or
    the schedule again with the refusal said above it (checked in before it starts, say)."""
    actor, now = current_actor(), clock.now()
    done = "checked_in" if action == changes.CHECK_IN else "no_show"
    try:
        with unit_of_work() as uow:
            visit = changes.attendance(
                session=uow, consultation_id=consultation_id, action=action,
                edit=changes.Edit(actor=actor, posted={}, now=now),
            )  # fmt: skip
            said, back = changes.done_sentence(done, uow, actor, visit), _back_to(visit, uow, actor)
    except (ValidationError, DomainError) as error:
        problem = form_input.refusal("change", error, {})
        with unit_of_work() as uow:
            visit = changes.card(session=uow, actor=actor, consultation_id=consultation_id)
            shown = reads.schedule(session=uow, actor=actor, args={**_kept(), "day": visit["date"]}, now=now)
        shown["errors"] = {**shown["errors"], **problem.errors}
        return render_template("console/workspace/schedule.html", s=shown), problem.status
    flash(said)
    return go_to(back, code=303)


BOOK = "console/workspace/schedule_book.html"


@blp.route("/book")
@page(Permission.CREATE)
@inject
def book_form(*, uow, actor, now):
    shown = changes.booking_page(session=uow, actor=actor, args=request.args, now=now)
    return render_template(BOOK, b=shown, problem=None), 422 if shown["errors"] else 200


@blp.route("/book", methods=["POST"])
@page(Permission.CREATE)
def book():
    actor, now = current_actor(), clock.now()
    typed = {key: value for key, value in request.form.items() if key != "csrf_token"}
    try:
        with unit_of_work() as uow:
            visit = changes.book(session=uow, edit=changes.Edit(actor=actor, posted=typed, now=now))
            said, back = changes.done_sentence("booked", uow, actor, visit), _back_to(visit, uow, actor)
    except (ValidationError, DomainError) as error:
        problem = form_input.refusal("change", error, typed)
        asked = {"day": typed.get("date"), "lead": typed.get("lead"), "type": typed.get("type_id")}
        with unit_of_work() as uow:
            shown = changes.booking_page(session=uow, actor=actor, args=asked, now=now)
        return render_template(BOOK, b=shown, problem=problem), problem.status
    flash(said)
    return go_to(back, code=303)
