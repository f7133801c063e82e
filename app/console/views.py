"""The console's pages: parse, authorize (declared, checked in auth.check_access), call a service,
render. No queries here."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from app.console import auth, charts, failures, forms, menu, pictures, story, wording
from app.console import health as health_service
from app.console.auth import open_page, page
from app.console.settings import checklist
from app.domains.auth import onboarding, stream_access
from app.domains.auth.login.credentials import Credentials
from app.domains.bulk import admin as bulk_admin
from app.domains.bulk import service as bulk_service
from app.platform.api.injection import inject
from app.platform.db import PageRequest, page_offset
from app.platform.errors import DomainError, Forbidden, ValidationFailed
from app.platform.phi_policy import may_read_phi
from app.platform.roles import ANY, Permission

PAGE_SIZE = 50

blp = Blueprint("console", __name__, template_folder="templates", static_folder="static")
blp.before_request(auth.check_access)
# How a page says a value to a person (app/console/wording.py).
SAID = (
    "say", "when", "label", "code", "held", "dead_booking_link", "channel", "job_status", "job_kind",
    "failure_status", "heartbeat", "kind_words", "filter_words",
)  # fmt: skip
for _name in SAID:
    blp.add_app_template_global(getattr(wording, _name), _name)
blp.add_app_template_filter(wording.channel, "channel")  # a list of channels: `| map('channel')`
blp.add_app_template_global(wording.live_words, "live_words")
blp.add_app_template_global(wording, "wording")  # the header's own words (USER_MENU, SIGNED_IN_AS)
blp.add_app_template_global(menu.menu, "menu")


@blp.errorhandler(DomainError)
def _refused(error: DomainError):
    return render_template("console/error.html", error=error), error.status, error.headers


@blp.errorhandler(CSRFError)
def _forged(error: CSRFError):
    refused = DomainError(f"refused: {error.description} Reload the page and try again.")
    return render_template("console/error.html", error=refused), 400


def _filter_args(*leave_out: str) -> dict:
    """The request's failure filters (only the form's own fields), to carry into the next URL."""
    return {k: v for k, v in request.args.items() if k in forms.FILTER_FIELDS and k not in leave_out}


def _safe_next(target: str | None) -> str:
    """Only a console path: never a redirect off the site."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return url_for("console.index")


@blp.route("/login", methods=["GET", "POST"])
@open_page("the login form itself")
def login():
    form = forms.LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            signed_in = auth.log_in(Credentials(form.email.data, form.password.data, form.clinic.data))
        except DomainError as error:
            form.form_errors.append(error.message)
            status = error.status
        else:
            if not signed_in:  # the password passed; the second factor's code is next
                return redirect(url_for("console.login_code", next=request.args.get("next")))
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("console/login.html", form=form), status


@blp.route("/login/code", methods=["GET", "POST"])
@open_page("the login's second step: the signed cookie names who passed the password, for minutes")
def login_code():
    if not auth.awaiting_code():
        return redirect(url_for("console.login", next=request.args.get("next")))
    form = forms.CodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            auth.log_in_with_code(form.code.data)
        except DomainError as error:
            form.form_errors.append(error.message)
            status = error.status
        else:
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("console/login_code.html", form=form), status


@blp.route("/set-password", methods=["GET", "POST"])
@open_page("a setup link's page: its one-time token is the credential")
def set_password():
    form = forms.SetPasswordForm()
    status = 200
    if form.validate_on_submit():
        if form.password.data != form.again.data:
            form.again.errors.append("The two passwords differ: type the same one twice.")
            return render_template("console/set_password.html", form=form), 422
        try:
            signed_in = auth.set_password(token=form.token.data.strip(), password=form.password.data)
        except DomainError as error:
            said = ((error.errors or {}).get("json") or {}).get("password")
            if said:  # the policy's words, beside the field; a link's fault above the form
                form.password.errors = [*form.password.errors, *said]
            else:
                form.form_errors.append(error.message)
            status = error.status
        else:
            flash("Your password is set.")
            if not signed_in:  # the second factor's code is next
                return redirect(url_for("console.login_code"))
            return redirect(url_for("console.index"))  # the person's day
    elif request.method == "POST":
        status = 400
    return render_template("console/set_password.html", form=form), status


@blp.route("/forgot-password", methods=["GET", "POST"])
@open_page("asks for a link to set a new password; says nothing of whether the email has an account")
@inject
def forgot_password(*, uow, now, settings, wiring):
    form = forms.ForgotPasswordForm()
    if form.validate_on_submit():
        onboarding.request_password_reset(
            session=uow, email=form.email.data, settings=settings, now=now, hooks=wiring.auth
        )
        flash("If that email has an account, a link to set a new password is on its way. It works once.")
        return redirect(url_for("console.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("console/forgot_password.html", form=form), status


@blp.route("/logout", methods=["POST"])
@open_page("ends whatever session the cookie holds (CSRF-checked)")
def logout():
    auth.log_out()
    return redirect(url_for("console.login"))


@blp.route("/")
@page(ANY)
@inject
def index(*, uow, actor):
    # A new clinic's admin lands on the setup checklist until it is done or dismissed.
    if actor.can(Permission.CONFIGURE) and checklist.lands_on_checklist(session=uow, actor=actor):
        return redirect(url_for("console.settings.index"))
    endpoint = menu.home(actor)  # the person's day: app/console/menu.py
    if endpoint is None:
        raise Forbidden("no console page is open to this role")
    return redirect(url_for(endpoint))


# --- failures ---------------------------------------------------------------------------------


@blp.route("/failures")
@page(Permission.CONFIGURE)
@inject
def failures_page(*, uow, actor):
    form, filters = forms.filters_from(request.args)
    page_number = max(request.args.get("page", 1, type=int), 1)
    rows, total = failures.find(
        session=uow,
        clinic_id=actor.clinic_id,
        filters=filters,
        limit=PAGE_SIZE,
        offset=page_offset(page_number, PAGE_SIZE),
    )
    return render_template(
        "console/failures.html",
        names=story.names_of_clinic(session=uow, actor=actor),
        form=form,
        filters=filters,
        rows=rows,
        total=total,
        page=page_number,
        page_size=PAGE_SIZE,
        action=forms.ActionForm(),
        show_recipient=may_read_phi(actor),
        query=_filter_args(),
        back=_filter_args("source"),
    )


@blp.route("/failures/<source>/<int:item_id>/retry", methods=["POST"])
@page(Permission.CONFIGURE)
@inject
def retry_one(source: str, item_id: int, *, uow, actor, now):
    if source not in failures.SOURCES:
        raise DomainError(f"source must be one of {', '.join(failures.SOURCES)}")
    confirmed = request.form.get(forms.CONFIRM_MAY_DUPLICATE) == "yes"
    failures.retry_one(
        session=uow, clinic_id=actor.clinic_id, item=failures.Item(source, item_id), actor=actor.ref,
        now=now, confirmed=confirmed,
    )  # fmt: skip
    flash(f"{source[:-1]} {item_id} queued again")
    return redirect(url_for("console.failures_page", source=source, **_filter_args("source")))


@blp.route("/failures/retry", methods=["GET"])
@page(Permission.CONFIGURE)
@inject
def retry_preview(*, uow, actor):
    form, filters = forms.filters_from(request.args)
    preview = failures.preview(session=uow, clinic_id=actor.clinic_id, filters=filters)
    return render_template(
        "console/retry_preview.html", form=form, filters=filters, preview=preview, action=forms.ActionForm(),
        show_recipient=may_read_phi(actor), query=_filter_args(),
    )  # fmt: skip


@blp.route("/failures/retry", methods=["POST"])
@page(Permission.CONFIGURE)
@inject
def retry_matching(*, uow, actor, now):
    _, filters = forms.filters_from(request.args)
    count = failures.retry_matching(
        session=uow, clinic_id=actor.clinic_id, filters=filters, actor=actor.ref, now=now
    )
    flash(f"{count} queued again")
    return redirect(url_for("console.failures_page", **_filter_args()))


# --- bulk jobs --------------------------------------------------------------------------------


@blp.route("/bulk-jobs")
@page(Permission.READ)
@inject
def bulk_jobs(*, uow, actor, now):
    jobs, total = bulk_admin.list_bulk_jobs(
        session=uow, clinic_id=actor.clinic_id, status=None, paging=PageRequest(1, 100)
    )
    shown = [bulk_admin.progress(job, now) | {"kind": job.kind, "created_at": job.created_at} for job in jobs]
    return render_template(
        "console/bulk_jobs.html", jobs=shown, total=total, action=forms.ActionForm(),
        may_cancel=actor.can(Permission.UPDATE), names=story.names_of_clinic(session=uow, actor=actor),
    )  # fmt: skip


@blp.route("/bulk-jobs/<int:bulk_job_id>")
@page(Permission.READ)
@inject
def bulk_job(bulk_job_id: int, *, uow, actor, now):
    clinic_id = actor.clinic_id
    job = bulk_service.get_bulk_job(session=uow, clinic_id=clinic_id, bulk_job_id=bulk_job_id)
    shown = bulk_admin.progress(job, now) | {"kind": job.kind, "errors": job.errors}
    rows, _ = bulk_service.list_rows(
        session=uow, clinic_id=clinic_id, bulk_job_id=bulk_job_id, outcome=None, paging=PageRequest(1, 500)
    )
    return render_template(
        "console/bulk_job.html", job=shown, rows=rows, action=forms.ActionForm(),
        may_cancel=actor.can(Permission.UPDATE),
    )  # fmt: skip


@blp.route("/stream-token", methods=["POST"])
@page(ANY)
@inject
def stream_token(*, uow, actor, now, settings):
    """A stream token for the page's live notifications (static/live.js opens the stream with it)."""
    answer = stream_access.issue_stream_token(session=uow, actor=actor, settings=settings, now=now)
    return jsonify({**answer, "expires_at": answer["expires_at"].isoformat()})


@blp.route("/bulk-jobs/progress")
@page(Permission.READ)
@inject
def bulk_progress(*, uow, actor, now):
    """The progress of the open bulk jobs on a page, in one request (`?ids=3,4`): the page polls it."""
    ids = forms.ids_from(request.args.get("ids", ""))
    clinic_id = actor.clinic_id
    jobs = [bulk_service.get_bulk_job(session=uow, clinic_id=clinic_id, bulk_job_id=i) for i in ids]
    # Each job's status in words too ("said"): the page's script shows it, never the code.
    shown = [bulk_admin.progress(job, now) | {"said": wording.job_status(job.status)} for job in jobs]
    return jsonify({"jobs": shown})


@blp.route("/bulk-jobs/<int:bulk_job_id>/cancel", methods=["POST"])
@page(Permission.UPDATE)
@inject
def cancel_bulk_job(bulk_job_id: int, *, uow, actor, now):
    bulk_admin.cancel_bulk_job(session=uow, actor=actor, bulk_job_id=bulk_job_id, now=now)
    flash(f"bulk job {bulk_job_id} cancelled")
    return redirect(url_for("console.bulk_job", bulk_job_id=bulk_job_id))


# --- automation health ------------------------------------------------------------------------


@blp.route("/health")
@page(Permission.CONFIGURE)
@inject
def health(*, uow, actor, now, settings):
    clinic = health_service.clinic_health(session=uow, clinic_id=actor.clinic_id, now=now)
    running = health_service.processes(session=uow, now=now, heartbeat_interval=settings.heartbeat_interval)
    queues = health_service.queue_depths(settings=settings, redis=current_app.extensions["followup.redis"])
    return render_template("console/health.html", clinic=clinic, running=running, queues=queues, now=now)


# --- the pictures (a lead's page: app/console/workspace/lead_page.py) -----------------------


@blp.route("/analytics")
@page(Permission.ANALYTICS)
@inject
def analytics(*, uow, actor, now):
    days = request.args.get("days", 30, type=int)
    if not 1 <= days <= 366:
        raise ValidationFailed("days", "must be between 1 and 366")
    data = pictures.pictures(session=uow, clinic_id=actor.clinic_id, now=now, days=days)
    return render_template(
        "console/analytics.html", data=data, bar_chart=charts.bar_chart, line_chart=charts.line_chart
    )
