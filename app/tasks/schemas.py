"""Request and response schemas of follow-up tasks and templates."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.api import RequestSchema, UTCDateTime, id_field
from app.tasks.models import LeadTaskType, Recurrence, TaskPriority, TaskStatus

TYPES = [t.value for t in LeadTaskType]
PRIORITIES = [p.value for p in TaskPriority]
STATUSES = [s.value for s in TaskStatus]


class TaskOut(Schema):
    id = fields.Integer()
    lead_id = fields.Integer()
    title = fields.String()
    description = fields.String(allow_none=True)
    type = fields.String()
    priority = fields.String()
    assigned_to_id = fields.Integer()
    created_by_id = fields.Integer(allow_none=True)
    due_at = fields.DateTime()
    reminder_at = fields.DateTime(allow_none=True)
    status = fields.String()
    completed_at = fields.DateTime(allow_none=True)
    completed_by = fields.Integer(allow_none=True)
    outcome_notes = fields.String(allow_none=True)
    escalated_at = fields.DateTime(allow_none=True)
    template_id = fields.Integer(allow_none=True)
    origin = fields.Dict()
    recurrence = fields.String(allow_none=True)
    recurrence_until = fields.DateTime(allow_none=True)
    previous_task_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TaskCreateIn(RequestSchema):
    title = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, validate=validate.Length(max=5000))
    type = fields.String(validate=validate.OneOf(TYPES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    assigned_to_id = id_field(allow_none=True)
    due_at = UTCDateTime(naive_is_utc=False, metadata={"description": "ISO 8601 with an offset"})
    due_in_minutes = fields.Integer(validate=validate.Range(min=0, max=525600))
    template_id = id_field()
    recurrence = fields.String(allow_none=True, validate=validate.OneOf([r.value for r in Recurrence]))
    recurrence_until = UTCDateTime(naive_is_utc=False, allow_none=True)

    @validates_schema
    def _one_due(self, data, **_):
        if "due_at" in data and "due_in_minutes" in data:
            raise ValidationError("give due_at or due_in_minutes, not both", "due_in_minutes")


class TaskUpdateIn(RequestSchema):
    title = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, validate=validate.Length(max=5000))
    type = fields.String(validate=validate.OneOf(TYPES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    assigned_to_id = id_field()
    due_at = UTCDateTime(naive_is_utc=False)
    status = fields.String(
        validate=validate.OneOf([TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value]),
        metadata={"description": "PENDING or IN_PROGRESS; use /complete or /cancel to close"},
    )


class CompleteIn(RequestSchema):
    notes = fields.String(allow_none=True, validate=validate.Length(max=5000))


class SnoozeIn(RequestSchema):
    until = UTCDateTime(naive_is_utc=False)
    minutes = fields.Integer(validate=validate.Range(min=1, max=525600))

    @validates_schema
    def _exactly_one(self, data, **_):
        if ("until" in data) == ("minutes" in data):
            raise ValidationError("give exactly one of until or minutes", "until")


class LeadTasksArgs(RequestSchema):
    status = fields.String(validate=validate.OneOf(STATUSES))


class MyTasksArgs(RequestSchema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    due_from = UTCDateTime(naive_is_utc=False)
    due_to = UTCDateTime(naive_is_utc=False)
    overdue = fields.Boolean(load_default=False)


class TemplateOut(Schema):
    id = fields.Integer()
    name = fields.String()
    title = fields.String()
    type = fields.String()
    priority = fields.String()
    due_offset_minutes = fields.Integer()
    description = fields.String(allow_none=True)
    is_active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TemplateUpdateIn(RequestSchema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    title = fields.String(validate=validate.Length(min=1, max=200))
    type = fields.String(validate=validate.OneOf(TYPES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    due_offset_minutes = fields.Integer(validate=validate.Range(min=0, max=525600))
    description = fields.String(allow_none=True, validate=validate.Length(max=5000))
    is_active = fields.Boolean()


class TemplateCreateIn(TemplateUpdateIn):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
