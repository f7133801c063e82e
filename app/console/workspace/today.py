"""Today (/console/today): a coordinator's home. My next call (the next-call claim, kept on the
task: shown on every visit until logged, released or its lease ends) with one key or click per
outcome (logged by the API's activity logging), the next step the engine made after it, my tasks due
today and overdue with their SLA clocks, my tasks coming up later, the clinic's consultations of the
day, reminders and replies waiting. Its live part is re-read when the user's event stream says
something changed (static/workspace/today.js)."""

from __future__ import annotations

from flask import Blueprint, flash, render_template, request, url_for
from flask import redirect as go_to

from app.console import wording
from app.console.auth import page
from app.console.workspace import agenda, lead_actions
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = Blueprint("today", __name__)
WHY = "why"  # the flash category that carries why the call handed out is this one


def _asked() -> agenda.Asked:
    return agenda.Asked(logged_activity_id=request.args.get("logged", type=int))


@blp.route("/today")
@page(Permission.READ)
@inject
def today(*, uow, actor, now):
    day = agenda.my_day(session=uow, actor=actor, now=now, asked=_asked())
    return render_template("console/workspace/today.html", day=day, names=day["names"])


@blp.route("/today/live")
@page(Permission.READ)
@inject
def today_live(*, uow, actor, now):
    """The page's changing part alone, re-read when the event stream tells of something new."""
    day = agenda.my_day(session=uow, actor=actor, now=now, asked=_asked())
    return render_template("console/workspace/_today_live.html", day=day, names=day["names"])


@blp.route("/today/next-call", methods=["POST"])
@page(Permission.UPDATE)
@inject
def take_next_call(*, uow, actor, now):
    claim = agenda.take_next_call(session=uow, actor=actor, now=now)
    if claim is None:
        flash("Nothing left to call: every task you may work is done or held by someone else.")
        return go_to(url_for("console.today.today"), code=303)
    flash(claim["why"]["summary"], WHY)
    return go_to(url_for("console.today.today"), code=303)  # the claim is the task's: no address needed


@blp.route("/today/calls/<int:task_id>/release", methods=["POST"])
@page(Permission.UPDATE)
@inject
def release_call(task_id: int, *, uow, actor, now):
    released = agenda.release_call(session=uow, actor=actor, task_id=task_id, now=now)
    flash(wording.TODAY["released"] if released else wording.TODAY["not_held"])
    return go_to(url_for("console.today.today"), code=303)


@blp.route("/today/calls/<int:task_id>/keep", methods=["POST"])
@page(Permission.UPDATE)
@inject
def keep_call(task_id: int, *, uow, actor, now):
    until = agenda.keep_call(session=uow, actor=actor, task_id=task_id, now=now)
    flash(wording.TODAY["not_held"] if until is None else wording.TODAY["kept"].format(time=until))
    return go_to(url_for("console.today.today"), code=303)


@blp.route("/today/calls/<int:task_id>", methods=["POST"])
@page(Permission.UPDATE)
@inject
def log_call(task_id: int, *, uow, actor, now):
    change = lead_actions.Change(
        actor=actor, posted=request.form, now=now, zone=agenda.clinic_zone(uow, actor)
    )
    completion = lead_actions.completion_of(change)
    activity = agenda.log_call(session=uow, actor=actor, task_id=task_id, completion=completion, now=now)
    return go_to(url_for("console.today.today", logged=activity.id), code=303)
