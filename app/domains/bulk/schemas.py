"""Request and response schemas of bulk jobs."""

from marshmallow import ValidationError, fields, validate, validates_schema

from app.domains.bulk.models import ROW_OUTCOMES
from app.domains.tasks.schemas import OUTCOMES, PRIORITIES, TYPES, TeamFilterArgs
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, UTCDateTime, id_field
from app.platform.phi_policy import PolicedJSON

MAX_LEAD_IDS = 50_000
POLICIES = ("lead_owner", "user", "round_robin")
TASK_ACTIONS = ("reassign", "reschedule", "complete", "cancel")


class BulkFilterIn(RequestSchema):
    source_id = id_field()
    source_campaign = fields.String(validate=validate.Length(min=1, max=200))
    stage = fields.String(validate=validate.Length(min=1, max=64))
    created_from = UTCDateTime()
    created_to = UTCDateTime()

    @validates_schema
    def _range(self, data, **_):
        if data.get("created_from") and data.get("created_to") and data["created_from"] >= data["created_to"]:
            raise ValidationError("must be after created_from", "created_to")


class BulkTasksIn(RequestSchema):
    lead_ids = fields.List(id_field(), validate=validate.Length(min=1, max=MAX_LEAD_IDS))
    filter = fields.Nested(BulkFilterIn)
    template_id = id_field()
    title = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, validate=validate.Length(max=5000))
    type = fields.String(validate=validate.OneOf(TYPES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    due_at = UTCDateTime()
    due_in_minutes = fields.Integer(strict=True, validate=validate.Range(min=0, max=525600))
    assignee_policy = fields.String(load_default="lead_owner", validate=validate.OneOf(POLICIES))
    user_id = id_field()

    @validates_schema
    def _shape(self, data, **_):
        if ("lead_ids" in data) == ("filter" in data):
            raise ValidationError("give exactly one of lead_ids or filter", "lead_ids")
        if "due_at" in data and "due_in_minutes" in data:
            raise ValidationError("give due_at or due_in_minutes, not both", "due_in_minutes")
        if data.get("assignee_policy") == "user" and "user_id" not in data:
            raise ValidationError("required with assignee_policy=user", "user_id")
        if data.get("assignee_policy") != "user" and "user_id" in data:
            raise ValidationError("only with assignee_policy=user", "user_id")


class BulkEnrollmentIn(RequestSchema):
    """The leads to enrol: a list of ids, or a filter over the clinic's open leads (as bulk tasks)."""

    lead_ids = fields.List(id_field(), validate=validate.Length(min=1, max=MAX_LEAD_IDS))
    filter = fields.Nested(BulkFilterIn)

    @validates_schema
    def _shape(self, data, **_):
        if ("lead_ids" in data) == ("filter" in data):
            raise ValidationError("give exactly one of lead_ids or filter", "lead_ids")


class BulkTaskActionsIn(RequestSchema):
    """One action over many tasks: a list of ids, or the team-view filter (open tasks only)."""

    action = fields.String(required=True, validate=validate.OneOf(TASK_ACTIONS))
    task_ids = fields.List(id_field(), validate=validate.Length(min=1, max=MAX_LEAD_IDS))
    filter = fields.Nested(TeamFilterArgs, metadata={"description": "As GET /api/leads/tasks (open tasks)"})
    user_id = id_field(metadata={"description": "reassign: the new assignee"})
    offset_minutes = fields.Integer(
        strict=True,
        validate=validate.Range(min=-525600, max=525600),
        metadata={"description": "reschedule: move each task's due time by this many minutes"},
    )
    due_at = UTCDateTime(metadata={"description": "reschedule: move every task to this time"})
    outcome = fields.String(
        load_default="done", validate=validate.OneOf(OUTCOMES), metadata={"description": "complete"}
    )
    notes = fields.String(allow_none=True, validate=validate.Length(max=5000))

    @validates_schema
    def _shape(self, data, **_):
        if ("task_ids" in data) == ("filter" in data):
            raise ValidationError("give exactly one of task_ids or filter", "task_ids")
        action = data.get("action")
        if action == "reassign" and "user_id" not in data:
            raise ValidationError("required to reassign", "user_id")
        if action == "reschedule" and ("offset_minutes" in data) == ("due_at" in data):
            raise ValidationError("give exactly one of offset_minutes or due_at", "offset_minutes")
        moves = [name for name in ("offset_minutes", "due_at") if name in data]
        if action != "reschedule" and moves:
            raise ValidationError("only to reschedule", moves[0])
        if action != "reassign" and "user_id" in data:
            raise ValidationError("only to reassign", "user_id")


class BulkJobsArgs(RequestSchema):
    status = fields.String(validate=validate.OneOf(("pending", "running", "done", "failed", "cancelled")))


class BulkJobOut(AnswerSchema):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String()
    total = fields.Integer()
    done = fields.Integer()
    failed = fields.Integer()
    errors = fields.List(PolicedJSON())
    outcomes = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        allow_none=True,
        metadata={
            "description": "The per-row report so far, by outcome: a lead import's {created, duplicate, "
            "invalid}, a bulk enrolment's {enrolled, already_enrolled, opted_out, do_not_contact, "
            "not_enrolled}; null for other kinds"
        },
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class BulkJobRowOut(AnswerSchema):
    row = fields.Integer(
        metadata={"description": "1 = the first row sent (a CSV's first line after the header)"}
    )
    outcome = fields.String(
        metadata={
            "description": "An import row's: created, duplicate or invalid; a lead's in a bulk enrolment: "
            "enrolled, already_enrolled, opted_out, do_not_contact or not_enrolled (why: message)"
        }
    )
    lead_id = fields.Integer(
        allow_none=True, metadata={"description": "The lead created, or the one it repeats"}
    )
    external_id = fields.String(allow_none=True)
    field = fields.String(allow_none=True, metadata={"description": "The invalid field"})
    message = fields.String(allow_none=True)
    matches = fields.List(PolicedJSON(), allow_none=True, metadata={"description": "Open leads matched"})


class BulkJobRowsArgs(RequestSchema):
    outcome = fields.String(validate=validate.OneOf(ROW_OUTCOMES))
