"""The console's pages: parse, authorize (declared, checked in auth.check_access), call a service,
render. No queries here."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from app import clock
from app.app_db import get_db, unit_of_work
from app.auth.phi_policy import may_read_phi
from app.auth.roles import ANY, Permission
from app.auth.service import Credentials
from app.bulk import admin as bulk_admin
from app.bulk import service as bulk_service
from app.console import auth, charts, failures, forms, pictures, story
from app.console import health as health_service
from app.console.auth import current_actor, open_page, page
from app.db import page_offset
from app.errors import DomainError, Forbidden, ValidationFailed

PAGE_SIZE = 50

blp = Blueprint("console", __name__, template_folder="templates", static_folder="static")
blp.before_request(auth.check_access)


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
            auth.log_in(Credentials(form.email.data, form.password.data, form.clinic.data))
        except DomainError as error:
            form.form_errors.append(error.message)
            status = error.status
        else:
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("console/login.html", form=form), status


@blp.route("/logout", methods=["POST"])
@open_page("ends whatever session the cookie holds (CSRF-checked)")
def logout():
    auth.log_out()
    return redirect(url_for("console.login"))


# Where the console opens: the first of these pages the user's role may see.
HOME_PAGES = (
    (Permission.CONFIGURE, "console.failures_page"),
    (Permission.READ, "console.bulk_jobs"),
    (Permission.ANALYTICS, "console.analytics"),
)


@blp.route("/")
@page(ANY)
def index():
    actor = current_actor()
    for permission, endpoint in HOME_PAGES:
        if actor.can(permission):
            return redirect(url_for(endpoint))
    raise Forbidden("no console page is open to this role")


# --- failures ---------------------------------------------------------------------------------


@blp.route("/failures")
@page(Permission.CONFIGURE)
def failures_page():
    form, filters = forms.filters_from(request.args)
    page_number = max(request.args.get("page", 1, type=int), 1)
    with unit_of_work() as session:
        rows, total = failures.find(
            session=session,
            clinic_id=current_actor().clinic_id,
            filters=filters,
            limit=PAGE_SIZE,
            offset=page_offset(page_number, PAGE_SIZE),
        )
    return render_template(
        "console/failures.html",
        form=form,
        filters=filters,
        rows=rows,
        total=total,
        page=page_number,
        page_size=PAGE_SIZE,
        action=forms.ActionForm(),
        show_recipient=may_read_phi(current_actor()),
        statuses=failures.NOTIFICATION_STATUSES,
        query=_filter_args(),
        back=_filter_args("source"),
    )


@blp.route("/failures/<source>/<int:item_id>/retry", methods=["POST"])
@page(Permission.CONFIGURE)
def retry_one(source: str, item_id: int):
    if source not in failures.SOURCES:
        raise DomainError(f"source must be one of {', '.join(failures.SOURCES)}")
    actor = current_actor()
    confirmed = request.form.get(forms.CONFIRM_MAY_DUPLICATE) == "yes"
    with unit_of_work() as session:
        failures.retry_one(
            session=session, clinic_id=actor.clinic_id, source=source, item_id=item_id, actor=actor.ref,
            now=clock.now(), confirmed=confirmed,
        )  # fmt: skip
    flash(f"{source[:-1]} {item_id} queued again")
    return redirect(url_for("console.failures_page", source=source, **_filter_args("source")))


@blp.route("/failures/retry", methods=["GET"])
@page(Permission.CONFIGURE)
def retry_preview():
    form, filters = forms.filters_from(request.args)
    with unit_of_work() as session:
        preview = failures.preview(session=session, clinic_id=current_actor().clinic_id, filters=filters)
    return render_template(
        "console/retry_preview.html", form=form, filters=filters, preview=preview, action=forms.ActionForm(),
        show_recipient=may_read_phi(current_actor()), query=_filter_args(),
    )  # fmt: skip


@blp.route("/failures/retry", methods=["POST"])
@page(Permission.CONFIGURE)
def retry_matching():
    _, filters = forms.filters_from(request.args)
    actor = current_actor()
    with unit_of_work() as session:
        count = failures.retry_matching(
            session=session, clinic_id=actor.clinic_id, filters=filters, actor=actor.ref, now=clock.now()
        )
    flash(f"{count} queued again")
    return redirect(url_for("console.failures_page", **_filter_args()))


# --- bulk jobs --------------------------------------------------------------------------------


@blp.route("/bulk-jobs")
@page(Permission.READ)
def bulk_jobs():
    now = clock.now()
    with unit_of_work() as session:
        jobs, total = bulk_admin.list_bulk_jobs(
            session=session, clinic_id=current_actor().clinic_id, status=None, page=1, page_size=100
        )
        shown = [
            bulk_admin.progress(job, now) | {"kind": job.kind, "created_at": job.created_at} for job in jobs
        ]
    return render_template(
        "console/bulk_jobs.html", jobs=shown, total=total, action=forms.ActionForm(),
        may_cancel=current_actor().can(Permission.UPDATE),
    )  # fmt: skip


@blp.route("/bulk-jobs/<int:bulk_job_id>")
@page(Permission.READ)
def bulk_job(bulk_job_id: int):
    clinic_id = current_actor().clinic_id
    with unit_of_work() as session:
        job = bulk_service.get_bulk_job(session=session, clinic_id=clinic_id, bulk_job_id=bulk_job_id)
        shown = bulk_admin.progress(job, clock.now()) | {"kind": job.kind, "errors": job.errors}
        rows, _ = bulk_service.list_rows(
            session=session, clinic_id=clinic_id, bulk_job_id=bulk_job_id, outcome=None, page=1, page_size=500
        )
    return render_template(
        "console/bulk_job.html", job=shown, rows=rows, action=forms.ActionForm(),
        may_cancel=current_actor().can(Permission.UPDATE),
    )  # fmt: skip


@blp.route("/bulk-jobs/progress")
@page(Permission.READ)
def bulk_progress():
    """The progress of the open bulk jobs on a page, in one request (`?ids=3,4`): the page polls it."""
    ids = forms.ids_from(request.args.get("ids", ""))
    clinic_id = current_actor().clinic_id
    now = clock.now()
    with unit_of_work() as session:
        jobs = [bulk_service.get_bulk_job(session=session, clinic_id=clinic_id, bulk_job_id=i) for i in ids]
        return jsonify({"jobs": [bulk_admin.progress(job, now) for job in jobs]})


@blp.route("/bulk-jobs/<int:bulk_job_id>/cancel", methods=["POST"])
@page(Permission.UPDATE)
def cancel_bulk_job(bulk_job_id: int):
    with unit_of_work() as session:
        bulk_admin.cancel_bulk_job(
            session=session, actor=current_actor(), bulk_job_id=bulk_job_id, now=clock.now()
        )
    flash(f"bulk job {bulk_job_id} cancelled")
    return redirect(url_for("console.bulk_job", bulk_job_id=bulk_job_id))


# --- automation health ------------------------------------------------------------------------


@blp.route("/health")
@page(Permission.CONFIGURE)
def health():
    db = get_db()
    now = clock.now()
    with unit_of_work() as session:
        clinic = health_service.clinic_health(session=session, clinic_id=current_actor().clinic_id, now=now)
        running = health_service.processes(
            session=session, now=now, heartbeat_interval=db.settings.heartbeat_interval
        )
    queues = health_service.queue_depths(settings=db.settings, redis=db.redis)
    return render_template("console/health.html", clinic=clinic, running=running, queues=queues, now=now)


# --- a lead's story and the pictures ----------------------------------------------------------


@blp.route("/leads/<int:lead_id>")
@page(Permission.READ)
def lead_story(lead_id: int):
    with unit_of_work() as session:
        story_ = story.lead_story(session=session, actor=current_actor(), lead_id=lead_id, now=clock.now())
        return render_template("console/lead.html", story=story_)


@blp.route("/analytics")
@page(Permission.ANALYTICS)
def analytics():
    days = request.args.get("days", 30, type=int)
    if not 1 <= days <= 366:
        raise ValidationFailed("days", "must be between 1 and 366")
    with unit_of_work() as session:
        data = pictures.pictures(
            session=session, clinic_id=current_actor().clinic_id, now=clock.now(), days=days
        )
    return render_template(
        "console/analytics.html", data=data, bar_chart=charts.bar_chart, line_chart=charts.line_chart
    )
