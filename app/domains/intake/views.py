"""Intake endpoints: create a lead (staff, integrators) and the signed web-form capture."""

from __future__ import annotations

from flask import g, request
from flask.views import MethodView

from app.domains.auth import signing
from app.domains.auth.signing_secrets.guard import signed_for
from app.domains.bulk.schemas import BulkJobOut
from app.domains.intake import columns, imports, schemas, service
from app.domains.leads.schemas import CreateLeadArgs, LeadCreatedOut, LeadIn
from app.platform.access import public, requires
from app.platform.api import accepts_body_up_to, make_blueprint
from app.platform.api.injection import inject
from app.platform.idempotency.web import idempotent
from app.platform.roles import Permission
from app.platform.telemetry import logs

blp = make_blueprint("intake", "Lead intake: manual and API entry, signed web forms")

# Schema instances, not classes: webargs instantiates a class on every request (deep-copying each
# field), which is a measurable part of a capture's CPU; loading with one shared instance is safe.
CREATE_LEAD_ARGS, LEAD_IN = CreateLeadArgs(), LeadIn()


@blp.route("/leads")
class CreateLead(MethodView):
    @requires(Permission.CREATE)
    @idempotent
    @blp.arguments(CREATE_LEAD_ARGS, location="query")
    @blp.arguments(LEAD_IN)
    @blp.response(201, LeadCreatedOut)
    @blp.alt_response(409, description="reject_duplicates=true and open leads match (listed in errors)")
    @inject
    def post(self, args, body, *, uow, actor, now):
        """Create a lead: it starts in the default stage, gets an owner by the clinic's policy and
        lists the open leads it may duplicate (`possible_duplicates`)."""
        intake = service.capture_lead(
            session=uow,
            actor=actor,
            new=service.NewLead(data=body, reject_duplicates=args["reject_duplicates"]),
            now=now,
        )
        intake.lead.possible_duplicates = intake.possible_duplicates  # for this response only
        logs.bind(lead_id=intake.lead.id)  # the request's log line names the lead it made
        return intake.lead


# 10,000 rows of a few hundred bytes each: more than the API's 1 MiB MAX_CONTENT_LENGTH.
IMPORT_MAX_BYTES = 16 * 1024 * 1024
IMPORT_BODY = {
    "required": True,
    "description": "Up to 10,000 leads: a JSON array; or a spreadsheet as the clinic has it, a CSV "
    "(UTF-8, UTF-8 with BOM, UTF-16 or Windows-1252; cells separated by `,`, `;` or a tab) or an Excel "
    "workbook (.xlsx, its first sheet), as the body or a form upload as `file`. A spreadsheet's first "
    "line names its columns: lead field names or headers such as Vorname, First Name, Tel., E-Mail, "
    "guessed unless `mapping` names them (treatment_interest: values separated by ';').",
    "content": {
        # Rows are checked one by one as the import runs, never the request as a whole: any row is
        # taken, and one that is not a valid lead is reported invalid, with its field, at /rows.
        "application/json": {
            "schema": {
                "type": "array",
                "minItems": 1,
                "maxItems": schemas.MAX_IMPORT_ROWS,
                "items": {
                    "description": "A lead: the fields of POST /api/leads (LeadIn) and `external_id`. A "
                    "row that is not a valid lead is reported invalid at /rows; the others are imported."
                },
            }
        },
        "text/csv": {"schema": {"type": "string"}},
        columns.XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "mapping": {"type": "string", "description": "as the query's `mapping`"},
                },
                "required": ["file"],
            }
        },
    },
}


@blp.route("/leads/import")
class ImportLeads(MethodView):
    @requires(Permission.CREATE)
    @idempotent
    @blp.arguments(schemas.ImportArgs, location="query")
    @blp.doc(requestBody=IMPORT_BODY)
    @blp.response(202, BulkJobOut)
    @blp.alt_response(
        422, description="Not a JSON array, CSV or XLSX, no header line, no rows, or more than 10,000"
    )
    @accepts_body_up_to(IMPORT_MAX_BYTES)
    @inject
    def post(self, args, *, uow, actor, now, settings):
        """Import leads in the background; poll the bulk job, read each row's outcome at /rows.

        Each row is created once (a row whose `external_id` was imported before is a duplicate),
        through the same capture as POST /api/leads; `automation=false` for historical leads."""
        upload = request.files.get("file")
        rows = columns.import_rows(
            content_type=request.content_type,
            body=request.get_data(cache=True),
            upload=upload.read() if upload else None,
            mapping=columns.mapping_of(args.get("mapping") or request.form.get("mapping")),
        )
        return imports.start_import(
            session=uow,
            actor=actor,
            rows=rows,
            options=imports.ImportOptions(
                automation=args["automation"], reject_duplicates=args["reject_duplicates"]
            ),
            chunk_size=settings.import_chunk_size,
            now=now,
        )


@blp.route("/capture/web-form")
class WebForm(MethodView):
    @public("HMAC signature: a signing secret with the web_form scope, or the clinic's single secret")
    @signed_for(signing.Scope.WEB_FORM)
    @blp.arguments(schemas.WebFormIn)
    @blp.response(201, schemas.WebFormOut)
    @blp.alt_response(
        200,
        schema=schemas.WebFormOut,
        success=True,
        description="The same submission_id again: the same lead",
    )
    @blp.alt_response(401, description="Missing, wrong, stale or replayed signature, or unknown clinic")
    @blp.alt_response(403, description="Signed by a secret without the web_form scope")
    @inject
    def post(self, form, *, uow, now):
        """Capture a website inquiry as a lead (HMAC-signed by the clinic; see the schema for the mapping)."""
        intake = service.capture_web_form(session=uow, clinic_id=g.signed_clinic_id, form=form, now=now)
        status = "created" if intake.created else "already_received"
        logs.bind(clinic_id=g.signed_clinic_id, lead_id=intake.lead.id)
        return {"lead_id": intake.lead.id, "status": status}, 201 if intake.created else 200
