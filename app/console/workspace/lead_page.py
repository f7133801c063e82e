"""The lead page (issue 64 item 3): the details as the reader's role may see them and a form to edit
them, the timeline, tasks, consultations, the conversation with a reply box, recalls and timers,
possible duplicates, and what happens next (the automation's trail in sentences: what_next.py).
Each form posts (CSRF-checked by the console) to a route here that changes through lead_actions (the
API's schemas and use cases) in a unit of its own, then redirects back; a refusal draws the page
again with the errors next to the fields and what was typed still in them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from app.console.auth import page
from app.console.wording import LEAD_ACTIONS, PATIENT_WORDS, TASK_EDIT
from app.console.workspace import form_input, lead_actions, lead_reads
from app.domains.auth import service as auth
from app.domains.merging import service as merging
from app.platform import clock
from app.platform.access import current_actor
from app.platform.api.injection import inject
from app.platform.app_db import unit_of_work
from app.platform.errors import DomainError
from app.platform.roles import Permission

blp = Blueprint("lead_page", __name__)
TEMPLATE = "console/workspace/lead.html"


def _ask() -> lead_reads.Ask:
    return lead_reads.Ask(
        timeline_page=max(request.args.get("page", 1, type=int), 1),
        type_id=request.args.get("type", type=int),
    )


@blp.route("/leads/<int:lead_id>")
@page(Permission.READ)
@inject
def show(lead_id: int, *, uow, actor, now):
    data = lead_reads.lead_page(session=uow, actor=actor, lead_id=lead_id, ask=_ask(), now=now)
    return render_template(TEMPLATE, **data, problem=None)


def _act(lead_id: int, section: str, change, done: str, anchor: str | None = None):
    """Run `change(session, change)` in a unit of its own; on success say `done` and go back to the
    section (or `anchor`), on a refusal (rolled back) draw the page again with the problem in that
    section."""
    actor, now = current_actor(), clock.now()
    # A field posted more than once (a box after its hidden "false", a group of boxes) as its list.
    typed = {
        key: values if len(values) > 1 else values[0]
        for key, values in request.form.lists()
        if key != "csrf_token"
    }
    with unit_of_work() as uow:
        zone = ZoneInfo(auth.get_clinic(session=uow, clinic_id=actor.clinic_id).timezone)
    try:
        with unit_of_work() as uow:
            change(uow, lead_actions.Change(actor=actor, posted=typed, now=now, zone=zone))
    except (ValidationError, DomainError) as error:
        problem = form_input.refusal(section, error, typed)
        with unit_of_work() as uow:
            data = lead_reads.lead_page(session=uow, actor=actor, lead_id=lead_id, ask=_ask(), now=now)
        return render_template(TEMPLATE, **data, problem=problem), problem.status
    flash(done)
    return redirect(url_for(".show", lead_id=lead_id, _anchor=anchor or section), code=303)


@blp.route("/leads/<int:lead_id>/edit", methods=["POST"])
@page(Permission.UPDATE)
def edit(lead_id: int):
    return _act(
        lead_id,
        "details",
        lambda s, c: lead_actions.edit_lead(session=s, lead_id=lead_id, change=c),
        "Saved.",
    )


@blp.route("/leads/<int:lead_id>/owner", methods=["POST"])
@page(Permission.ASSIGN)
def assign(lead_id: int):
    return _act(
        lead_id,
        "owner",
        lambda s, c: lead_actions.assign(session=s, lead_id=lead_id, change=c),
        "Lead assigned.",
    )


@blp.route("/leads/<int:lead_id>/patients", methods=["POST"])
@page(Permission.UPDATE)
def add_patient(lead_id: int):
    return _act(
        lead_id,
        "patients",
        lambda s, c: lead_actions.add_patient(session=s, lead_id=lead_id, change=c),
        PATIENT_WORDS["added"],
    )


@blp.route("/leads/<int:lead_id>/patients/<int:index>/remove", methods=["POST"])
@page(Permission.UPDATE)
def remove_patient(lead_id: int, index: int):
    return _act(
        lead_id,
        "patients",
        lambda s, c: lead_actions.remove_patient(session=s, lead_id=lead_id, index=index, change=c),
        PATIENT_WORDS["removed"],
    )


@blp.route("/leads/<int:lead_id>/tasks", methods=["POST"])
@page(Permission.UPDATE)
def create_task(lead_id: int):
    return _act(
        lead_id, "tasks", lambda s, c: lead_actions.create_task(session=s, lead_id=lead_id, change=c),
        "Task created.",
    )  # fmt: skip


TASK_ACTIONS = {
    "complete": (lead_actions.complete_task, "Task completed."),
    "snooze": (lead_actions.snooze_task, "Task snoozed."),
    "reassign": (lead_actions.reassign_task, "Task reassigned."),
    "edit": (lead_actions.edit_task, TASK_EDIT["saved"]),
}


@blp.route(
    "/leads/<int:lead_id>/tasks/<int:task_id>/<any(complete, snooze, reassign, edit):action>",
    methods=["POST"],
)
@page(Permission.UPDATE)
def task_action(lead_id: int, task_id: int, action: str):
    run, done = TASK_ACTIONS[action]
    return _act(
        lead_id, "tasks", lambda s, c: run(session=s, lead_id=lead_id, task_id=task_id, change=c), done
    )


# The action bar near the top of the page: each change made as the API's endpoint for it makes it,
# with that endpoint's permission (POST /api/leads/<id>/activities, /stage and /lost: UPDATE;
# /convert: CONVERT). Done, the page opens at the bar again.
def _lead_action(lead_id: int, section: str, run, done: str):
    return _act(lead_id, section, lambda s, c: run(session=s, lead_id=lead_id, change=c), done, "actions")


@blp.route("/leads/<int:lead_id>/call", methods=["POST"])
@page(Permission.UPDATE)
def log_call(lead_id: int):
    return _lead_action(lead_id, "call", lead_actions.log_call, LEAD_ACTIONS["call_logged"])


@blp.route("/leads/<int:lead_id>/stage", methods=["POST"])
@page(Permission.UPDATE)
def move_stage(lead_id: int):
    return _lead_action(lead_id, "move", lead_actions.move_stage, LEAD_ACTIONS["moved"])


@blp.route("/leads/<int:lead_id>/lost", methods=["POST"])
@page(Permission.UPDATE)
def mark_lost(lead_id: int):
    return _lead_action(lead_id, "lost", lead_actions.mark_lost, LEAD_ACTIONS["marked_lost"])


@blp.route("/leads/<int:lead_id>/convert", methods=["POST"])
@page(Permission.CONVERT)
def convert(lead_id: int):
    return _lead_action(lead_id, "convert", lead_actions.convert, LEAD_ACTIONS["converted"])


@blp.route("/leads/<int:lead_id>/consultations", methods=["POST"])
@page(Permission.CREATE)
def book(lead_id: int):
    return _act(
        lead_id, "consultations", lambda s, c: lead_actions.book(session=s, lead_id=lead_id, change=c),
        "Consultation booked.",
    )  # fmt: skip


CONSULTATION_ACTIONS = {
    "reschedule": (lead_actions.reschedule, "Consultation rescheduled."),
    "check-in": (lead_actions.check_in, "Checked in."),
    "no-show": (lead_actions.no_show, "Marked a no-show."),
}


CONSULTATION_ACTION = (
    "/leads/<int:lead_id>/consultations/<int:consultation_id>/<any(reschedule, 'check-in', 'no-show'):action>"
)


@blp.route(CONSULTATION_ACTION, methods=["POST"])
@page(Permission.CREATE)
def consultation_action(lead_id: int, consultation_id: int, action: str):
    run, done = CONSULTATION_ACTIONS[action]
    return _act(
        lead_id,
        "consultations",
        lambda s, c: run(session=s, lead_id=lead_id, consultation_id=consultation_id, change=c),
        done,
    )


@blp.route("/leads/<int:lead_id>/reply", methods=["POST"])
@page(Permission.UPDATE)
def reply(lead_id: int):
    return _act(
        lead_id,
        "conversation",
        lambda s, c: lead_actions.reply(session=s, lead_id=lead_id, change=c),
        "Sent.",
    )


@blp.route("/leads/<int:lead_id>/merge/<int:other_id>")
@page(Permission.UPDATE)
@inject
def confirm_merge(lead_id: int, other_id: int, *, uow, actor, now):
    """The merge's confirmation step: which fields this lead would take from the other."""
    preview = merging.merge_preview(session=uow, actor=actor, lead_id=lead_id, from_lead_id=other_id)
    return render_template("console/workspace/lead_merge.html", preview=preview)


@blp.route("/leads/<int:lead_id>/merge/<int:other_id>", methods=["POST"])
@page(Permission.UPDATE)
def merge(lead_id: int, other_id: int):
    return _act(
        lead_id,
        "duplicates",
        lambda s, c: merging.merge(
            session=s, actor=c.actor, lead_id=lead_id, from_lead_id=other_id, now=c.now
        ),
        f"Lead {other_id} merged into this lead.",
    )


@blp.route("/leads/<int:lead_id>/duplicates/<int:other_id>/dismiss", methods=["POST"])
@page(Permission.UPDATE)
def dismiss(lead_id: int, other_id: int):
    return _act(
        lead_id,
        "duplicates",
        lambda s, c: merging.dismiss(session=s, actor=c.actor, lead_id=lead_id, other_id=other_id, now=c.now),
        f"Lead {other_id} marked not the same family.",
    )
