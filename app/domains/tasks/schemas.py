"""Request and response schemas of follow-up tasks and templates."""

from marshmallow import ValidationError, fields, validate, validates_schema

from app.domains.leads.schemas import NextActionOut
from app.domains.tasks.models import LeadTaskType, Recurrence, TaskOutcome, TaskPriority, TaskStatus
from app.domains.tasks.outcomes import CALL_TASK_OUTCOMES
from app.domains.tasks.outcomes import LOST_REASONS as CALL_LOST_REASONS
from app.domains.tasks.team import DUE_BUCKETS, SORT_CHOICES
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, StrictBoolean, UTCDateTime, id_field
from app.platform.phi_policy import PhiSchema, PolicedJSON

TYPES = [t.value for t in LeadTaskType]
PRIORITIES = [p.value for p in TaskPriority]
STATUSES = [s.value for s in TaskStatus]
OUTCOMES = [o.value for o in TaskOutcome]
CALL_OUTCOMES = list(CALL_TASK_OUTCOMES)
COMPLETION_OUTCOMES = list(dict.fromkeys(OUTCOMES + CALL_OUTCOMES))
LOST_REASONS = CALL_LOST_REASONS


class TaskOut(PhiSchema):
    PHI_KIND = "task"

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
    outcome = fields.String(
        allow_none=True, metadata={"description": "Set on completion: " + ", ".join(OUTCOMES)}
    )
    outcome_notes = fields.String(allow_none=True)
    escalated_at = fields.DateTime(allow_none=True)
    template_id = fields.Integer(allow_none=True)
    origin = PolicedJSON(
        metadata={"description": "why it exists: manual, a template, or a rule with the conditions it saw"}
    )
    reminder_offsets_minutes = fields.List(
        fields.Integer(), allow_none=True, metadata={"description": "Own reminder offsets; null: clinic's"}
    )
    recurrence = fields.String(allow_none=True)
    recurrence_interval = fields.Integer(allow_none=True, metadata={"description": "Every N; null is 1"})
    recurrence_until = fields.DateTime(allow_none=True)
    series_id = fields.Integer(
        allow_none=True, metadata={"description": "The first task of its recurring series (null on it)"}
    )
    previous_task_id = fields.Integer(allow_none=True)
    claimed_by_id = fields.Integer(
        allow_none=True, metadata={"description": "Who holds the task from next-task (until claimed_until)"}
    )
    claimed_until = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class MyTaskOut(TaskOut):
    lead_next_best_action = fields.Nested(
        NextActionOut,
        attribute="lead.next_action",
        allow_none=True,
        metadata={"description": "The lead's next best action (app/domains/intelligence)"},
    )


OFFSETS = fields.List(
    fields.Integer(strict=True, validate=validate.Range(min=1, max=525600)),
    allow_none=True,
    validate=validate.Length(max=10),
    metadata={"description": "Minutes before due for each reminder (overrides the clinic's); [] none"},
)
REMINDER_AT = UTCDateTime(
    allow_none=True,
    metadata={"description": "One reminder at this time (kept as minutes before due); null: none"},
)
INTERVAL = fields.Integer(
    strict=True,
    validate=validate.Range(min=1, max=365),
    metadata={"description": "Every N days, weeks or months (default 1)"},
)


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
    recurrence_interval = INTERVAL
    reminder_offsets_minutes = OFFSETS
    reminder_at = REMINDER_AT

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
    reminder_offsets_minutes = OFFSETS
    reminder_at = REMINDER_AT
    recurrence = fields.String(validate=validate.OneOf([r.value for r in Recurrence]))
    recurrence_interval = INTERVAL
    recurrence_until = UTCDateTime(allow_none=True)
    apply_to = fields.String(
        load_default="this",
        validate=validate.OneOf(["this", "series"]),
        metadata={"description": "A recurring task: this occurrence only (default) or the whole series"},
    )


class CompleteIn(RequestSchema):
    outcome = fields.String(
        load_default=TaskOutcome.DONE.value,
        validate=validate.OneOf(COMPLETION_OUTCOMES),
        metadata={
            "description": "How it ended (default done): "
            + ", ".join(OUTCOMES)
            + ". A call task may end with a call's outcome ("
            + ", ".join(CALL_OUTCOMES)
            + "): the call is logged on the lead's timeline with it (converted needs lead:convert)"
        },
    )
    notes = fields.String(allow_none=True, validate=validate.Length(max=5000))
    reschedule_to = UTCDateTime(
        metadata={"description": "With outcome rescheduled: a follow-up task (the same) is due then"},
    )
    callback_at = UTCDateTime(
        metadata={
            "description": "With outcome callback_requested (required then): the call is due again then"
        },
    )
    lost_reason = fields.String(
        validate=validate.OneOf(LOST_REASONS),
        metadata={
            "description": "With outcome not_interested: why (default NOT_INTERESTED); the lead is lost"
        },
    )


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
    overdue = StrictBoolean(load_default=False)


class TemplateOut(AnswerSchema):
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
    is_active = StrictBoolean()


class TemplateCreateIn(TemplateUpdateIn):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf(TYPES))


class TeamFilterArgs(RequestSchema):
    """Filters of the team task views; a list filter takes the parameter repeated for several values."""

    assigned_to_id = fields.List(
        id_field(strict=False),
        validate=validate.Length(max=100),
        metadata={"description": "Assignee user ids"},
    )
    status = fields.List(fields.String(validate=validate.OneOf(STATUSES)), validate=validate.Length(max=20))
    type = fields.List(fields.String(validate=validate.OneOf(TYPES)), validate=validate.Length(max=20))
    priority = fields.List(
        fields.String(validate=validate.OneOf(PRIORITIES)), validate=validate.Length(max=20)
    )
    lead_id = id_field(strict=False)
    due_from = UTCDateTime(metadata={"description": "Due at or after (naive means UTC)"})
    due_to = UTCDateTime(metadata={"description": "Due before (naive means UTC)"})
    overdue = StrictBoolean(
        metadata={"description": "true: open and past due only; false: everything else"},
    )

    @validates_schema
    def _range(self, data, **_):
        if data.get("due_from") and data.get("due_to") and data["due_from"] > data["due_to"]:
            raise ValidationError("due_to is before due_from", "due_to")


class TeamTasksArgs(TeamFilterArgs):
    sort = fields.String(
        load_default="due_at",
        validate=validate.OneOf(SORT_CHOICES),
        metadata={"description": "A field to sort by; a leading '-' sorts descending"},
    )


class StatusCountsOut(AnswerSchema):
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_due = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "Open tasks by due bucket: " + ", ".join(DUE_BUCKETS)},
    )
    open = fields.Integer()
    total = fields.Integer()


class AssigneeCountsOut(StatusCountsOut):
    assigned_to_id = fields.Integer()
    name = fields.String(allow_none=True)


class TaskSummaryOut(AnswerSchema):
    as_of = fields.DateTime()
    timezone = fields.String(metadata={"description": "The clinic's timezone: buckets follow its days"})
    today_ends_at = fields.DateTime()
    week_ends_at = fields.DateTime()
    totals = fields.Nested(StatusCountsOut)
    assignees = fields.List(fields.Nested(AssigneeCountsOut))
