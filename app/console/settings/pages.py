"""The Settings section (/console/settings, lead:configure as the API's settings endpoints): the
setup checklist a new clinic's admin lands on until it is done or dismissed, and a page per step
(clinic profile and hours, team, booking). Each form posts (CSRF-checked by the console) to a route
here that changes through changes.py (the API's schemas and use cases) in a unit of its own and
redirects back; a refusal draws the page again with each error beside its field and what was typed
still in it, and nothing of it stored."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from app.console.auth import page
from app.console.settings import changes, checklist, hours, reads
from app.console.workspace import form_input
from app.console.workspace.lead_actions import Change
from app.domains.auth import service as auth
from app.platform import clock
from app.platform.access import current_actor
from app.platform.api.injection import inject
from app.platform.app_db import get_db, get_wiring, unit_of_work
from app.platform.errors import DomainError
from app.platform.roles import Permission

blp = Blueprint("settings", __name__, url_prefix="/settings", template_folder="templates")

CADENCE_PATH = "/console/settings/cadence"  # another page's, linked when it exists


def _has_cadence_page() -> bool:
    return any(rule.rule == CADENCE_PATH for rule in current_app.url_map.iter_rules())


@blp.route("")
@page(Permission.CONFIGURE)
@inject
def index(*, uow, actor):
    steps = checklist.steps(session=uow, actor=actor)
    clinic = auth.get_clinic(session=uow, clinic_id=actor.clinic_id)
    return render_template(
        "console/settings/index.html", steps=steps, dismissed=clinic.setup_dismissed_at is not None,
        cadence=_has_cadence_page(),
    )  # fmt: skip


@blp.route("/dismiss", methods=["POST"])
@page(Permission.CONFIGURE)
@inject
def dismiss(*, uow, actor, now):
    auth.dismiss_setup(session=uow, actor=actor, now=now)
    flash("The checklist will no longer open first; it stays here under Settings.")
    return redirect(url_for(".index"), code=303)


# --- the step pages -------------------------------------------------------------------------------

PAGES = {
    "profile": ("console/settings/profile.html", lambda s, a, now: reads.profile(session=s, actor=a)),
    "team": ("console/settings/team.html", lambda s, a, now: reads.team(session=s, actor=a)),
    "booking": (
        "console/settings/booking.html",
        lambda s, a, now: reads.booking(session=s, actor=a, now=now),
    ),
    "sources": ("console/settings/sources.html", lambda s, a, now: reads.sources(session=s, actor=a)),
    "templates": (
        "console/settings/templates.html",
        lambda s, a, now: reads.templates(session=s, actor=a, now=now),
    ),
    "template": (
        "console/settings/template.html",
        lambda s, a, now, template_id: reads.template(session=s, actor=a, template_id=template_id, now=now),
    ),
    "template_delete": (  # "Delete it?" before a template goes: one click on a list must not lose it
        "console/settings/template_delete.html",
        lambda s, a, now, template_id: reads.template(session=s, actor=a, template_id=template_id, now=now),
    ),
    "channels": (
        "console/settings/channels.html",
        lambda s, a, now: reads.channels(session=s, actor=a, config=get_db().settings),
    ),
    "forms": (
        "console/settings/forms.html",
        lambda s, a, now: reads.forms(session=s, actor=a, config=get_db().settings, now=now),
    ),
    "webhooks": ("console/settings/webhooks.html", lambda s, a, now: reads.webhooks(session=s, actor=a)),
}
MANY_VALUED = ("provider_ids", "event_types")  # the forms' fields of several boxes ticked
NO_STORE = {"Cache-Control": "no-store"}  # a page showing a secret once, or what was typed
# A refusal of a week's hours is shown beside the day it names (hours.by_day), by the form's field.
HOURS_FIELDS = {"profile": "business_hours", "provider": "hours"}


def draw(name: str, problem: form_input.Problem | None = None, extra: dict | None = None, ids=None):
    """The page `name` (its ids, e.g. a template's, in `ids`), with a refusal's `problem` or what the
    route hands it (`extra`: a secret made just now, a preview)."""
    template, read = PAGES[name]
    with unit_of_work() as uow:
        data = read(uow, current_actor(), clock.now(), **(ids or {}))
    html = render_template(template, **data, **(extra or {}), problem=problem)
    status = problem.status if problem else 200
    return (html, status, NO_STORE) if extra else (html, status)


def _posted():
    posted = request.form.copy()
    posted.pop("csrf_token", None)
    return posted


def _change(posted) -> Change:
    actor = current_actor()
    with unit_of_work() as uow:
        zone = ZoneInfo(auth.get_clinic(session=uow, clinic_id=actor.clinic_id).timezone)
    return Change(actor=actor, posted=posted, now=clock.now(), zone=zone)


def _refused(name: str, section: str, error, posted, ids=None):
    typed = posted.to_dict() | {name: posted.getlist(name) for name in MANY_VALUED}
    problem = form_input.refusal(section, error, typed)
    if section in HOURS_FIELDS:
        problem = form_input.Problem(
            section, hours.by_day(problem.errors, HOURS_FIELDS[section]), typed, problem.status
        )
    return draw(name, problem, ids=ids)


def act(name: str, section: str, change, done: str, *, show=None, ids=None):
    """Run `change(session, change)` in a unit of its own; on success say `done` and go back to the
    section, on a refusal (rolled back: nothing stored) draw the page again with the problem. With
    `show`, what it makes the change's result into (a secret to be shown once) is drawn on the page
    at once instead, never to be read again."""
    posted = _posted()
    request_change = _change(posted)
    try:
        with unit_of_work() as uow:
            result = change(uow, request_change)
            shown = show(result) if show else None  # read before the commit expires the row
    except (ValidationError, DomainError) as error:
        return _refused(name, section, error, posted, ids)
    flash(done)
    if show:
        return draw(name, extra=shown, ids=ids)
    return redirect(url_for(f".{name}", _anchor=section, **(ids or {})), code=303)


def _preview(name: str, section: str, preview, ids=None):
    """Draw the page with the texts typed, as the family would read them (nothing is stored)."""
    posted = _posted()
    request_change = _change(posted)
    try:
        with unit_of_work() as uow:
            draft = preview(uow, request_change)
    except (ValidationError, DomainError) as error:
        return _refused(name, section, error, posted, ids)
    return draw(name, extra={"draft": draft, "typed_draft": posted.to_dict()}, ids=ids)


@blp.route("/profile")
@page(Permission.CONFIGURE)
def profile():
    return draw("profile")


@blp.route("/profile", methods=["POST"])
@page(Permission.CONFIGURE)
def save_profile():
    config = get_db().settings
    return act(
        "profile", "profile", lambda s, c: changes.save_profile(session=s, change=c, config=config), "Saved."
    )


@blp.route("/profile/special-days", methods=["POST"])
@page(Permission.CONFIGURE)
def add_special_day():
    config = get_db().settings
    return act(
        "profile", "special-days", lambda s, c: changes.add_special_day(session=s, change=c, config=config),
        "Special day saved.",
    )  # fmt: skip


@blp.route("/profile/special-days/remove", methods=["POST"])
@page(Permission.CONFIGURE)
def remove_special_day():
    config = get_db().settings
    remove = changes.remove_special_day
    return act(
        "profile",
        "special-days",
        lambda s, c: remove(session=s, change=c, config=config),
        "Special day removed.",
    )


@blp.route("/team")
@page(Permission.CONFIGURE)
def team():
    return draw("team")


@blp.route("/team/invite", methods=["POST"])
@page(Permission.CONFIGURE)
def invite():
    config, hooks = get_db().settings, get_wiring().auth
    return act(
        "team", "invite", lambda s, c: changes.invite(session=s, change=c, config=config, hooks=hooks),
        "Invitation sent: they set their password from the link in the email.",
    )  # fmt: skip


@blp.route("/team/users/<int:user_id>", methods=["POST"])
@page(Permission.CONFIGURE)
def change_user(user_id: int):
    hooks = get_wiring().auth
    return act(
        "team", "people", lambda s, c: changes.change_user(session=s, user_id=user_id, change=c, hooks=hooks),
        "Saved.",
    )  # fmt: skip


@blp.route("/team/users/<int:user_id>/invitation", methods=["POST"])
@page(Permission.CONFIGURE)
def reinvite(user_id: int):
    config, hooks = get_db().settings, get_wiring().auth
    return act(
        "team", "people",
        lambda s, c: changes.reinvite(session=s, user_id=user_id, change=c, config=config, hooks=hooks),
        "A fresh invitation was sent; the earlier link no longer works.",
    )  # fmt: skip


@blp.route("/team/assignment", methods=["POST"])
@page(Permission.CONFIGURE)
def assignment():
    config = get_db().settings
    return act(
        "team", "assignment", lambda s, c: changes.set_assignment_policy(session=s, change=c, config=config),
        "Saved.",
    )  # fmt: skip


@blp.route("/booking")
@page(Permission.CONFIGURE)
def booking():
    return draw("booking")


@blp.route("/booking/providers", methods=["POST"])
@page(Permission.CONFIGURE)
def add_provider():
    return act(
        "booking", "provider", lambda s, c: changes.add_provider(session=s, change=c), "Provider added."
    )


@blp.route("/booking/providers/<int:provider_id>", methods=["POST"])
@page(Permission.CONFIGURE)
def provider_active(provider_id: int):
    return act(
        "booking", "providers",
        lambda s, c: changes.set_provider_active(session=s, provider_id=provider_id, change=c), "Saved.",
    )  # fmt: skip


@blp.route("/booking/types", methods=["POST"])
@page(Permission.CONFIGURE)
def add_type():
    return act(
        "booking", "type", lambda s, c: changes.add_type(session=s, change=c), "Consultation type added."
    )


@blp.route("/booking/types/<int:type_id>", methods=["POST"])
@page(Permission.CONFIGURE)
def type_active(type_id: int):
    return act(
        "booking",
        "types",
        lambda s, c: changes.set_type_active(session=s, type_id=type_id, change=c),
        "Saved.",
    )


@blp.route("/sources")
@page(Permission.CONFIGURE)
def sources():
    return draw("sources")


@blp.route("/sources", methods=["POST"])
@page(Permission.CONFIGURE)
def add_source():
    return act("sources", "source", lambda s, c: changes.add_source(session=s, change=c), "Source added.")


@blp.route("/sources/<int:source_id>", methods=["POST"])
@page(Permission.CONFIGURE)
def change_source(source_id: int):
    return act(
        "sources", "source-list",
        lambda s, c: changes.change_source(session=s, source_id=source_id, change=c), "Saved.",
    )  # fmt: skip


@blp.route("/templates")
@page(Permission.CONFIGURE)
def templates():
    return draw("templates")


@blp.route("/templates", methods=["POST"])
@page(Permission.CONFIGURE)
def add_template():
    return act(
        "templates", "template", lambda s, c: changes.add_template(session=s, change=c), "Template saved."
    )


@blp.route("/templates/preview", methods=["POST"])
@page(Permission.CONFIGURE)
def preview_new_template():
    return _preview("templates", "template", lambda s, c: changes.preview_template(session=s, change=c))


@blp.route("/templates/<int:template_id>")
@page(Permission.CONFIGURE)
def template(template_id: int):
    return draw("template", ids={"template_id": template_id})


@blp.route("/templates/<int:template_id>", methods=["POST"])
@page(Permission.CONFIGURE)
def change_template(template_id: int):
    return act(
        "template", "template",
        lambda s, c: changes.change_template(session=s, template_id=template_id, change=c),
        "Template saved.", ids={"template_id": template_id},
    )  # fmt: skip


@blp.route("/templates/<int:template_id>/preview", methods=["POST"])
@page(Permission.CONFIGURE)
def preview_template(template_id: int):
    return _preview(
        "template", "template",
        lambda s, c: changes.preview_template(session=s, change=c, template_id=template_id),
        ids={"template_id": template_id},
    )  # fmt: skip


@blp.route("/templates/<int:template_id>/delete")
@page(Permission.CONFIGURE)
def confirm_template_deletion(template_id: int):
    return draw("template_delete", ids={"template_id": template_id})


@blp.route("/templates/<int:template_id>/delete", methods=["POST"])
@page(Permission.CONFIGURE)
def delete_template(template_id: int):
    return act(
        "templates", "template-list",
        lambda s, c: changes.delete_template(session=s, template_id=template_id, change=c),
        "Template deleted: rules and sequences that sent it skip that message from now on.",
    )  # fmt: skip
