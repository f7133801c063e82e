"""The import's pages: upload, columns, preview, progress, and the refused rows as a CSV."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, render_template, request, url_for
from flask import redirect as go_to

from app.console import wording
from app.console.auth import page
from app.console.imports import drafts
from app.domains.bulk import admin as bulk_admin
from app.domains.bulk import service as bulk_service
from app.domains.bulk.models import CREATED, LEADS_IMPORT
from app.domains.intake import columns, imports, spreadsheets
from app.domains.intake.views import IMPORT_MAX_BYTES
from app.platform.api import accepts_body_up_to
from app.platform.api.injection import inject
from app.platform.db import PageRequest
from app.platform.errors import NotFound, ValidationFailed
from app.platform.roles import Permission

blp = Blueprint("imports", __name__, template_folder="templates")
# The sealed table rides in each step's form: a little more than the file it came from.
FORM_LIMIT = 2 * IMPORT_MAX_BYTES
LEAVE_OUT = ""
SAMPLES = 3  # the first cells of each column shown beside its choice
SHOWN_PROBLEMS = 500
CHOICES = [(field, wording.field_name(field)) for field in columns.FIELDS]


def _said(error: ValidationFailed) -> dict[str, list[str]]:
    return {name: list(texts) for name, texts in error.errors.get("json", {}).items()}


def _chosen(form, header: list[str]) -> list[str | None]:
    """The field picked for each column (`column-3`); a value that is not a lead field is a 422 naming it."""
    chosen = []
    for index in range(len(header)):
        value = form.get(f"column-{index}", LEAVE_OUT)
        if value not in (LEAVE_OUT, *columns.FIELDS):
            raise ValidationFailed(f"column-{index}", "choose a lead field or leave the column out")
        chosen.append(value or None)
    return chosen


def _columns_page(*, sealed: str, draft: drafts.Draft, chosen: list, errors: dict, status: int = 200):
    samples = [
        [row[i] if i < len(row) else "" for row in draft.table.rows[:SAMPLES]] for i in range(len(chosen))
    ]
    return render_template(
        "console/imports/columns.html", sealed=sealed, file_name=draft.file_name, header=draft.table.header,
        samples=samples, chosen=chosen, choices=CHOICES, errors=errors, rows=len(draft.table.rows),
    ), status  # fmt: skip


@blp.route("/import")
@page(Permission.CREATE)
def upload_form():
    return render_template("console/imports/upload.html", errors={})


@blp.route("/import", methods=["POST"])
@accepts_body_up_to(IMPORT_MAX_BYTES)
@page(Permission.CREATE)
@inject
def upload(*, uow, actor):
    """Read the file and offer its columns, each with the field guessed (or the clinic's last choice)."""
    sent = request.files.get("file")
    try:
        if sent is None or not sent.filename:
            raise ValidationFailed("file", "choose a CSV or Excel file to upload")
        table = spreadsheets.read_table(sent.read())
        remembered = imports.remembered_mapping(session=uow, clinic_id=actor.clinic_id)
        chosen = columns.resolve(table.header, {h: f for h, f in remembered.items() if h in table.header})
        columns.check_header(table.header, chosen)
    except ValidationFailed as error:
        return render_template("console/imports/upload.html", errors=_said(error)), 422
    draft = drafts.Draft(file_name=sent.filename[:200], table=table)
    sealed = drafts.seal(session=uow, actor=actor, draft=draft)
    known = [field if field in columns.FIELDS else None for field in chosen]
    return _columns_page(sealed=sealed, draft=draft, chosen=known, errors={})


@blp.route("/import/preview", methods=["POST"])
@accepts_body_up_to(FORM_LIMIT)
@page(Permission.CREATE)
@inject
def preview(*, uow, actor, now):
    """What the import would do with each row, nothing stored: refused rows and duplicates, with why."""
    sealed = request.form.get("draft", "")
    draft = drafts.unseal(session=uow, actor=actor, sealed=sealed)
    chosen = _chosen(request.form, draft.table.header)
    try:
        columns.check_header(draft.table.header, chosen)
        columns.check_once(chosen)
    except ValidationFailed as error:
        return _columns_page(sealed=sealed, draft=draft, chosen=chosen, errors=_said(error), status=422)
    rows = columns.lead_rows(draft.table, chosen)
    checks = imports.preview_import(session=uow, actor=actor, rows=rows, now=now)
    problems = [
        {
            "check": check,
            "name": " ".join(filter(None, (rows[check.row - 1].get(n) for n in ("first_name", "last_name")))),
        }
        for check in checks
        if check.outcome != imports.READY
    ]
    counts = {outcome: sum(c.outcome == outcome for c in checks) for outcome in wording.IMPORT_OUTCOMES}
    return render_template(
        "console/imports/preview.html", sealed=sealed, file_name=draft.file_name, chosen=chosen,
        counts=counts, problems=problems[:SHOWN_PROBLEMS], more=len(problems) - SHOWN_PROBLEMS,
        total=len(rows), field_name=wording.field_name,
    )  # fmt: skip


@blp.route("/import/start", methods=["POST"])
@accepts_body_up_to(FORM_LIMIT)
@page(Permission.CREATE)
@inject
def start(*, uow, actor, now, settings):
    """Run the import as a bulk job (the API's), and remember the columns for the clinic's next file."""
    draft = drafts.unseal(session=uow, actor=actor, sealed=request.form.get("draft"))
    chosen = _chosen(request.form, draft.table.header)
    columns.check_header(draft.table.header, chosen)
    columns.check_once(chosen)
    job = imports.import_table(
        session=uow,
        actor=actor,
        table=imports.MappedTable(
            rows=columns.lead_rows(draft.table, chosen),
            mapping=dict(zip(draft.table.header, chosen, strict=True)),
        ),
        options=imports.ImportOptions(
            automation=request.form.get("historical") != "yes",
            reject_duplicates=request.form.get("skip_duplicates") == "yes",
        ),
        chunk_size=settings.import_chunk_size,
        now=now,
    )
    return go_to(url_for("console.imports.progress", bulk_job_id=job.id), code=303)


def _import_job(uow, actor, bulk_job_id: int):
    job = bulk_service.get_bulk_job(session=uow, clinic_id=actor.clinic_id, bulk_job_id=bulk_job_id)
    if job.kind != LEADS_IMPORT:
        raise NotFound("no such import")
    return job


def _refused(uow, actor, bulk_job_id: int) -> list:
    rows, _ = bulk_service.list_rows(
        session=uow, clinic_id=actor.clinic_id, bulk_job_id=bulk_job_id, outcome=None,
        paging=PageRequest(1, columns.MAX_IMPORT_ROWS),
    )  # fmt: skip
    return [row for row in rows if row.outcome != CREATED]


@blp.route("/import/<int:bulk_job_id>")
@page(Permission.CREATE)
@inject
def progress(bulk_job_id: int, *, uow, actor, now):
    job = _import_job(uow, actor, bulk_job_id)
    return render_template(
        "console/imports/progress.html", job=bulk_admin.progress(job, now),
        refused=_refused(uow, actor, job.id), outcomes=wording.IMPORT_OUTCOMES, field_name=wording.field_name,
    )  # fmt: skip


@blp.route("/import/<int:bulk_job_id>/refused.csv")
@page(Permission.CREATE)
@inject
def refused_report(bulk_job_id: int, *, uow, actor):
    """The rows the import did not make a lead of, with why: the file's row, the column, the reason."""
    job = _import_job(uow, actor, bulk_job_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Row", "Outcome", "Column", "Reason"])
    for row in _refused(uow, actor, job.id):
        field = wording.field_name(row.field) if row.field else ""
        writer.writerow(
            [row.row, wording.IMPORT_OUTCOMES.get(row.outcome, row.outcome), field, row.message or ""]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{job.id}-refused.csv"'},
    )
