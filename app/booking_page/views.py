"""The booking page's views: parse, call app/domains/booking_page/service.py, render. Every refusal
is a page saying why (never the API's JSON, never a 500)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, g, redirect, render_template, request, send_from_directory, url_for
from werkzeug.exceptions import TooManyRequests

from app.booking_page import page
from app.domains.booking_page import links
from app.domains.booking_page import service as booking
from app.domains.consultations.booking.placement import SlotTaken
from app.domains.lead_messages import booking_link
from app.platform import page_policy
from app.platform.access import public
from app.platform.api.injection import inject
from app.platform.app_db import get_db
from app.platform.errors import DomainError, ValidationFailed

blp = Blueprint("booking_page", __name__, template_folder="templates", static_folder=None)
LINK_REASON = "a family's own page: the signed link names the lead, the clinic's key the clinic"
TAKEN = "Sorry, that time was just taken. The nearest free times:"  # a real race, not a time never offered


def _secret() -> str:
    return get_db().settings.secret_key


@blp.errorhandler(DomainError)
def _refused(error: DomainError):
    return render_template("booking/refused.html", message=page.refusal(error)), error.status


@blp.errorhandler(TooManyRequests)
def _too_many(error):
    message = "Too many tries from this address: wait a minute and try again."
    return render_template("booking/refused.html", message=message), 429


@blp.after_request
def _framing(response):
    """Framed by the clinic's listed website origins only; no inline script or style. (Its pages
    are kept by no cache: app/__init__.py's security headers, for every HTML page.)"""
    origins = g.get("embed_origins") or []
    response.headers["Content-Security-Policy"] = page_policy.content_security_policy(frame_ancestors=origins)
    return response


@blp.route("/static/<path:name>")
@public("the page's stylesheet and script")
def static(name):
    return send_from_directory(blp.root_path + "/static", name, max_age=3600)


@blp.route("/<key>", methods=["GET", "POST"])
@public(LINK_REASON)
@inject
def clinic_page(key, *, uow, now):
    visitor = booking.by_key(uow, key)
    return _page(uow, visitor, now, url_for("booking_page.clinic_page", key=key))


@blp.route("/l/<token>", methods=["GET", "POST"])
@public(LINK_REASON)
@inject
def lead_page(token, *, uow, now):
    visitor = booking.by_link(uow, _secret(), token, now)
    return _page(uow, visitor, now, url_for("booking_page.lead_page", token=token))


def _page(uow, visitor: booking.Visitor, now: datetime, action: str):
    """The page, and a post's booking: a link's lead with a visit ahead moves it (one a link)."""
    clinic = visitor.clinic
    g.embed_origins = booking.frame_ancestors(uow, clinic.id)
    zone = booking.family_zone(clinic, request.values.get("tz"))
    types = booking.bookable_types(uow, clinic.id)
    view = page.PageView(clinic=clinic, zone=zone, action=action, ask_name=visitor.lead_id is None)
    view.types = types
    view.type_id = page.chosen_type(request.values.get("type"), types)
    view.day = page.day_of(request.values.get("day"), now, zone)
    status = 200
    if request.method == "POST":
        try:
            choice = page.choice_of(request.form, _secret(), clinic.id, zone, now)
            per_hour = get_db().settings.booking_page_bookings_per_hour
            consultation = booking.book(uow, visitor, choice, now, per_hour=per_hour)
        except SlotTaken as taken:
            view.taken = page.alternatives(taken, zone)
            view.message, status = TAKEN, 409
        except booking.TimeNotOffered as error:
            view.message, status = error.message, error.status
        except ValidationFailed as error:
            view.message, status = page.refusal(error), error.status
        else:
            token = booking_link.change_token(_secret(), clinic.id, consultation.id, now)
            return redirect(url_for("booking_page.booked", token=token, tz=zone.key, new=1), code=303)
        view.typed = {k: request.form.get(k, "") for k in ("first_name", "last_name", "phone", "email")}
        view.form_token = request.form.get("form_token") or ""
    page.fill_slots(view, uow, now, look_ahead=not request.values.get("day"))
    if not view.form_token:
        view.form_token = links.form_token(_secret(), clinic.id, now)
    return render_template("booking/page.html", v=view), status


@blp.route("/c/<token>", methods=["GET", "POST"])
@public("the confirmation's own signed link to one consultation")
@inject
def booked(token, *, uow, now):
    clinic_id, consultation_id = booking_link.consultation_of(_secret(), token, now)
    found = booking.booked(uow, clinic_id, consultation_id, now)
    g.embed_origins = booking.frame_ancestors(uow, clinic_id)
    zone = booking.family_zone(found.clinic, request.values.get("tz"))
    view = page.PageView(clinic=found.clinic, zone=zone, action=request.path, ask_name=False)
    view.day = page.day_of(request.values.get("day"), found.consultation.starts_at, zone)
    status = 200
    if request.method == "POST":
        try:
            choice = page.choice_of(request.form, _secret(), clinic_id, zone, now, for_change=True)
            if request.form.get("do") == "cancel":
                booking.cancel(uow, clinic_id, consultation_id, now)
                view.message = "Your consultation is cancelled."
            else:
                booking.reschedule(uow, clinic_id, consultation_id, choice, now)
                view.message = "Your consultation is moved."
        except SlotTaken as taken:
            view.taken = page.alternatives(taken, zone)
            view.message, status = TAKEN, 409
        except booking.TimeNotOffered as error:
            view.message, status = error.message, error.status
        except ValidationFailed as error:
            view.message, status = page.refusal(error), error.status
        found = booking.booked(uow, clinic_id, consultation_id, now)
    elif request.args.get("new"):
        view.message = "You are booked. A confirmation is on its way to you."
    if found.changeable and found.kind is not None:
        view.type_id = found.kind.id
        page.fill_slots(view, uow, now, provider_id=found.consultation.provider_id)
    view.form_token = links.form_token(_secret(), clinic_id, now)
    return render_template(
        "booking/booked.html", v=view, found=found, when=page.when(found.consultation.starts_at, zone)
    ), status
