"""The team inbox (/console/inbox, issue 59 item 2): tabs Mine / Unassigned / All and the unread and
channel filters in the URL, each thread's lead (or "Unknown sender"), last message (PHI policy),
unread count, waiting since and the "In sequence" label; its list re-read when the user's event
stream tells of a message (static/workspace/inbox.js). A lead's thread opens marked read, with its
photos and videos inline and a reply box (a saved reply, one of the clinic's templates, put in it on
request), between the inbox's rows and the family's card (issue 76 item 5), resolved and reopened
there; an unknown sender's is linked to a lead or captured as a new one. Every change goes through
the API's own services (threads, replies, resolution, linking, capture)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from app.console import wording
from app.console.auth import page
from app.console.workspace import form_input, lead_actions
from app.console.workspace.inbox import reads, snoozing
from app.domains.auth import service as auth
from app.domains.conversations import inbox, linking, resolution, threads
from app.domains.conversations import views as conversation_api
from app.domains.conversations.models import OPEN, RESOLVED
from app.domains.intake.inbound import unknown_senders
from app.domains.leads.schemas import LeadIn
from app.platform import clock
from app.platform.access import current_actor
from app.platform.api.injection import inject
from app.platform.app_db import unit_of_work
from app.platform.errors import DomainError, ValidationFailed
from app.platform.roles import Permission

blp = Blueprint("inbox", __name__)
CAPTURED_FIELDS = ("first_name", "last_name", "email", "phone")
CAPTURE_IN = LeadIn(partial=("phone", "email"))


def _filters():
    """The URL's filters as the API reads them, or the page with the field's error (422)."""
    try:
        return reads.inbox_filters(request.args), None
    except ValidationError as error:
        return {"view": "all"}, {name: list(texts) for name, texts in error.messages.items()}


@blp.route("/inbox")
@page(Permission.READ)
@inject
def show(*, uow, actor, now):
    filters, errors = _filters()
    data = reads.inbox_rows(session=uow, actor=actor, filters=filters, now=now)
    return render_template("console/workspace/inbox.html", **data, filters=filters, errors=errors), (
        422 if errors else 200
    )


@blp.route("/inbox/live")
@page(Permission.READ)
@inject
def live(*, uow, actor, now):
    """The list alone, re-read when the event stream tells of a message or a read mark."""
    filters, _ = _filters()
    data = reads.inbox_rows(session=uow, actor=actor, filters=filters, now=now)
    return render_template("console/workspace/_inbox_rows.html", **data, filters=filters)


@blp.app_template_global()
def mask(address: str | None) -> str:
    """An unknown sender's number or address as the list shows it: enough to tell two apart."""
    address = address or ""
    name, at, domain = address.partition("@")
    if at:
        return f"{name[:1]}•••@{domain}"
    return f"••• {address[-4:]}" if len(address) > 4 else "•••"


@blp.route("/inbox/count")
@page(Permission.READ)
@inject
def count(*, uow, actor, now):
    """The user's threads with unread messages from their own leads' families: the count beside
    the nav's Inbox link, read after the page is drawn (inbox_count.js) so no page waits for it."""
    return {"unread": inbox.unread_threads(session=uow, actor=actor, now=now)}


@blp.route("/inbox/leads/<int:lead_id>")
@page(Permission.READ)
def lead_thread(lead_id: int):
    """A lead's thread, marked read up to its last message (the API's read mark) as it opens."""
    actor, now = current_actor(), clock.now()
    with unit_of_work() as uow:
        conversation = threads.lead_conversation(session=uow, clinic_id=actor.clinic_id, lead_id=lead_id)
        if conversation is not None and conversation.last_message_id is not None and actor.user_id:
            threads.mark_read(session=uow, actor=actor, lead_id=lead_id, up_to=None, now=now)
    return _thread_page(lead_id, problem=None)


def _thread_page(lead_id: int, *, problem, filled: dict | None = None):
    """The desk's three panes: the inbox's rows (the URL's filters, the open ones by default), the
    lead's thread with its reply box (`filled`: what the box shows again) and the lead's card."""
    actor, now = current_actor(), clock.now()
    filters, _ = _filters()
    with unit_of_work() as uow:
        data = reads.lead_thread(session=uow, actor=actor, lead_id=lead_id, now=now)
        listed = reads.inbox_rows(session=uow, actor=actor, filters=filters, now=now)
        page = render_template(
            "console/workspace/inbox_thread.html",
            **data,
            listed=listed,
            filters=filters,
            problem=problem,
            filled=filled,
        )
    return page, (problem.status if problem else 200)


@blp.route("/inbox/leads/<int:lead_id>/messages/<int:message_id>/media/<int:n>")
@page(Permission.READ)
@inject
def media(*, uow, actor, now, settings, **path):
    """A family's image or video, through the API's own media read (PHI: 403 without lead:phi,
    another clinic's a 404) and served with the API's headers."""
    ref = (path["lead_id"], path["message_id"], path["n"])  # the lead, the message, its n-th media
    fetched = threads.open_media(session=uow, actor=actor, ref=ref, settings=settings, now=now)
    return conversation_api.media_response(fetched)


@blp.route("/inbox/leads/<int:lead_id>/reply", methods=["POST"])
@page(Permission.UPDATE)
def reply(lead_id: int):
    """A reply through the API's reply (consent, contact policy, the form's idempotency key); its
    "Use this reply" draws the box again with the chosen saved reply in it, sending nothing."""
    typed = {key: value for key, value in request.form.items() if key != "csrf_token"}
    if "use_template" in typed:
        return _use_template(lead_id, typed)
    return _change_from_thread(lead_id, "conversation", lead_actions.reply, "Sent.", typed)


def _use_template(lead_id: int, typed: dict):
    """The reply box again with the saved reply's texts (the same idempotency key: still one send)."""
    typed.pop("use_template")
    actor = current_actor()
    with unit_of_work() as uow:  # another clinic's lead: a 404 before anything
        threads.lead_conversation(session=uow, clinic_id=actor.clinic_id, lead_id=lead_id)
    try:
        with unit_of_work() as uow:
            filled = reads.with_template(session=uow, actor=actor, posted=typed)
    except ValidationFailed as error:
        return _thread_page(lead_id, problem=form_input.refusal("conversation", error, typed))
    return _thread_page(lead_id, problem=None, filled=filled)


@blp.route("/inbox/leads/<int:lead_id>/owner", methods=["POST"])
@page(Permission.ASSIGN)
def assign(lead_id: int):
    """The family's card's "Assign to": the lead page's own assignment (POST /api/leads/{id}/assign);
    a refusal draws the thread again with the problem beside the card's field."""
    typed = {key: value for key, value in request.form.items() if key != "csrf_token"}
    return _change_from_thread(lead_id, "owner", lead_actions.assign, wording.LEAD_ASSIGNED, typed)


def _change_from_thread(lead_id: int, section: str, change, done: str, typed: dict):
    """`change` (a lead_actions use case) from the thread's form, in a unit of its own: on success
    say `done` and show the thread again; a refusal draws the thread with it beside `section`."""
    actor, now = current_actor(), clock.now()
    with unit_of_work() as uow:
        zone = ZoneInfo(auth.get_clinic(session=uow, clinic_id=actor.clinic_id).timezone)
    try:
        with unit_of_work() as uow:
            posted = lead_actions.Change(actor=actor, posted=typed, now=now, zone=zone)
            change(session=uow, lead_id=lead_id, change=posted)
    except (ValidationError, DomainError) as error:
        return _thread_page(lead_id, problem=form_input.refusal(section, error, typed))
    flash(done)
    return redirect(url_for(".lead_thread", lead_id=lead_id), code=303)


@blp.route("/inbox/leads/<int:lead_id>/<any(resolve, reopen):action>", methods=["POST"])
@page(Permission.UPDATE)
@inject
def change_status(lead_id: int, action: str, *, uow, actor, now):
    """Resolve or reopen the lead's conversation (POST /api/leads/{id}/conversation/resolve, /reopen)."""
    status = RESOLVED if action == "resolve" else OPEN
    resolution.set_status(session=uow, actor=actor, lead_id=lead_id, status=status, now=now)
    flash(wording.RESOLVED_DONE if status == RESOLVED else wording.REOPENED_DONE)
    return redirect(url_for(".lead_thread", lead_id=lead_id), code=303)


@blp.route("/inbox/leads/<int:lead_id>/snooze", methods=["POST"])
@page(Permission.UPDATE)
def snooze(lead_id: int):
    """Snooze the lead's conversation until the time chosen in words (worked out in the clinic's
    zone and hours: POST /api/leads/{id}/conversation/snooze); Reopen ends it."""
    actor, now = current_actor(), clock.now()
    chosen = request.form.get(resolution.UNTIL, "")
    with unit_of_work() as uow:
        clinic = auth.get_clinic(session=uow, clinic_id=actor.clinic_id)
        names = wording.Names(zone=ZoneInfo(clinic.timezone))
        choices = snoozing.snooze_until(clinic, now)
    try:
        if chosen not in choices:
            raise ValidationFailed(resolution.UNTIL, wording.CHOOSE_SNOOZE)
        with unit_of_work() as uow:
            resolution.snooze(session=uow, actor=actor, lead_id=lead_id, until=choices[chosen], now=now)
    except DomainError as error:
        return _thread_page(lead_id, problem=form_input.refusal("snooze", error, {resolution.UNTIL: chosen}))
    flash(wording.SNOOZED_DONE.format(when=wording.when(choices[chosen], names)))
    return redirect(url_for(".lead_thread", lead_id=lead_id), code=303)


@blp.route("/inbox/unknown/<int:conversation_id>")
@page(Permission.READ)
@inject
def unknown(conversation_id: int, *, uow, actor, now):
    """An unknown sender's thread, with a search for the lead it belongs to and a form for a new one."""
    search = request.args.get("q", "")[:100]
    data = reads.unknown_thread(
        session=uow, actor=actor, conversation_id=conversation_id, search=search, now=now
    )
    return render_template("console/workspace/inbox_unknown.html", **data, errors={}, typed={})


@blp.route("/inbox/unknown/<int:conversation_id>/link", methods=["POST"])
@page(Permission.UPDATE)
@inject
def link(conversation_id: int, *, uow, actor, now):
    """Link the thread to the lead chosen (POST /api/conversations/{id}/link)."""
    lead_id = request.form.get("lead_id", type=int)
    if lead_id is None:
        flash("Choose the lead this sender is.")
        return redirect(url_for(".unknown", conversation_id=conversation_id), code=303)
    linked = linking.link(session=uow, actor=actor, conversation_id=conversation_id, lead_id=lead_id, now=now)
    flash("Linked: the sender's messages are now the lead's.")
    return redirect(url_for(".lead_thread", lead_id=linked["lead_id"]), code=303)


@blp.route("/inbox/unknown/<int:conversation_id>/capture", methods=["POST"])
@page(Permission.CREATE)
def capture(conversation_id: int):
    """A new lead of the sender (POST /api/conversations/{id}/capture): the API's lead schema checks
    what was typed; a refusal draws the page again with the errors beside the fields."""
    actor, now = current_actor(), clock.now()
    typed = {name: request.form.get(name, "").strip() for name in CAPTURED_FIELDS}
    try:
        body = CAPTURE_IN.load({name: value for name, value in typed.items() if value})
        with unit_of_work() as uow:
            made = unknown_senders.capture(
                session=uow, actor=actor, conversation_id=conversation_id, data=body, now=now
            )
            lead_id = made.lead.id
    except ValidationError as error:
        errors = {name: list(texts) for name, texts in error.normalized_messages().items()}
        with unit_of_work() as uow:
            data = reads.unknown_thread(
                session=uow, actor=actor, conversation_id=conversation_id, search="", now=now
            )
            return render_template(
                "console/workspace/inbox_unknown.html", **data, errors=errors, typed=typed
            ), 422
    flash("Captured as a new lead.")
    return redirect(url_for(".lead_thread", lead_id=lead_id), code=303)
