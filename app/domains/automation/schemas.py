"""Automation API shapes: rules, their versions, test and simulate answers, the why-trail."""

from marshmallow import ValidationError, fields, post_dump, validate, validates_schema

from app.domains.automation import rules
from app.domains.automation.language.triggers import TRIGGERS
from app.domains.lead_messages import merge_fields
from app.domains.tasks.sla.schemas import SlaClockOut
from app.platform import phi_policy
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, StrictBoolean, UTCDateTime, id_field

_CONDITIONS_DOC = (
    "[{field, operator, value} or a group]: all must hold; a group is {all: [...]}, {any: [...]} or "
    f"{{not: item}}, nested up to {rules.MAX_GROUP_DEPTH} levels, at most {rules.MAX_CONDITIONS} "
    "conditions in all; fields: lead.<field>, event.<field> and computed ones "
    f"({', '.join(rules.COMPUTED_FIELDS)}); operators: {', '.join(rules.OPERATORS)}"
)
_ACTIONS_DOC = (
    f"[{{type, delay: {{amount, unit}}, ...}}]; types: {', '.join(rules.ACTION_TYPES)}; units: "
    f"{', '.join(rules.DELAY_UNITS)}. A create_task's delay sets the task's due time (the task exists at "
    "once); every other action happens after its delay. Texts take merge fields: "
    f"{', '.join('{{ ' + name + ' }}' for name in merge_fields.MERGE_FIELDS)}"
)


# Conditions and actions are free-form JSON checked by the rule language (rule_validation.validate_conditions,
# rule_validation.validate_actions: ids, delays and merge-field texts bounded there) when the rule is saved.
_CHECKED_BY_RULES = {
    "guarded_by": "app.domains.automation.rule_validation.validate_conditions / validate_actions"
}
MAX_CONDITIONS = MAX_ACTIONS = rules.MAX_CONDITIONS


class RuleUpdateIn(RequestSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    trigger = fields.String(
        validate=validate.Length(max=64), metadata={"description": f"one of {', '.join(TRIGGERS)}"}
    )
    conditions = fields.List(
        fields.Raw(metadata=_CHECKED_BY_RULES),
        validate=validate.Length(max=MAX_CONDITIONS),
        metadata={"description": _CONDITIONS_DOC},
    )
    actions = fields.List(
        fields.Raw(metadata=_CHECKED_BY_RULES),
        validate=validate.Length(max=MAX_ACTIONS),
        metadata={"description": _ACTIONS_DOC},
    )
    priority = fields.Integer(
        validate=validate.Range(min=0, max=100_000), metadata={"description": "lower first"}
    )
    stop_processing = StrictBoolean(metadata={"description": "a match ends the chain for this event"})
    active = StrictBoolean()


class RuleCreateIn(RuleUpdateIn):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    trigger = fields.String(
        required=True,
        validate=validate.Length(max=64),
        metadata={"description": f"one of {', '.join(TRIGGERS)}"},
    )
    actions = fields.List(
        fields.Raw(metadata=_CHECKED_BY_RULES),
        required=True,
        validate=validate.Length(max=MAX_ACTIONS),
        metadata={"description": _ACTIONS_DOC},
    )


class RuleOut(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    trigger = fields.String()
    conditions = fields.List(fields.Raw())
    actions = fields.List(fields.Raw())
    priority = fields.Integer()
    stop_processing = fields.Boolean()
    active = fields.Boolean()
    version = fields.Integer()
    default_key = fields.String(allow_none=True, metadata={"description": "set on a seeded default rule"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    created_by = fields.String()
    updated_by = fields.String()


class RuleVersionOut(AnswerSchema):
    version = fields.Integer()
    definition = fields.Dict()
    created_at = fields.DateTime()
    created_by = fields.String()


class RuleTestIn(RequestSchema):
    lead_id = id_field(metadata={"description": "a lead of the clinic to test against"})
    lead = fields.Dict(metadata={"description": "lead fields (override the lead's, or make a sample lead)"})
    event = fields.Dict(
        metadata={"description": "the event's fields, e.g. {outcome: no_answer, direction: outbound}"}
    )
    computed = fields.Dict(
        metadata={"description": "computed fields to assume, e.g. {failed_attempts_in_a_row: 3}"}
    )
    occurred_at = UTCDateTime(
        naive_is_utc=False, metadata={"description": "when the event happened (default: now)"}
    )


# Left out of a condition on a PHI field for a reader without `lead:phi` (phi_policy.withhold_seen).
_WITHHELD_ON_PHI = "Absent from a condition on a PHI field for a reader without `lead:phi`."


class EvaluatedCondition(AnswerSchema):
    """A condition as evaluated, or a group of them (`all`, `any`, `not`: its items' trails)."""

    field = fields.String(metadata={"optional": True})
    operator = fields.String(metadata={"optional": True})
    all = fields.List(fields.Nested(lambda: EvaluatedCondition()), metadata={"optional": True})
    any = fields.List(
        fields.Nested(lambda: EvaluatedCondition()),
        metadata={"optional": True, "description": "up to the branch that matched"},
    )
    not_ = fields.Nested(
        lambda: EvaluatedCondition(), attribute="not", data_key="not", metadata={"optional": True}
    )
    value = fields.Raw(metadata={"optional": True, "description": _WITHHELD_ON_PHI})
    seen = fields.Raw(
        metadata={"optional": True, "description": f"the value the condition saw. {_WITHHELD_ON_PHI}"}
    )
    result = fields.Boolean(metadata={"optional": True, "description": _WITHHELD_ON_PHI})

    @post_dump
    def _withhold_phi_seen(self, data: dict, **kwargs) -> dict:
        return phi_policy.withhold_seen(data, phi_policy.current_reader())


class PlannedAction(AnswerSchema):
    index = fields.Integer()
    type = fields.String()
    at = fields.DateTime(metadata={"description": "a task's due time, else when the action happens"})
    action = phi_policy.PolicedJSON()


class RuleTestOut(AnswerSchema):
    rule_id = fields.Integer()
    version = fields.Integer()
    trigger = fields.String()
    matched = fields.Boolean()
    conditions = fields.List(fields.Nested(EvaluatedCondition))
    actions = fields.List(fields.Nested(PlannedAction))
    stops_processing = fields.Boolean()


class SimulateArgs(RequestSchema):
    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=365))


class SimulateOut(AnswerSchema):
    rule_id = fields.Integer()
    version = fields.Integer()
    days = fields.Integer()
    events_considered = fields.Integer()
    events_matched = fields.Integer()
    totals = fields.Dict(metadata={"description": "action type -> how many would have been made"})
    per_day = fields.List(fields.Dict())
    per_coordinator = fields.List(fields.Dict())


class StepOut(AnswerSchema):
    """A step on a lead's why-trail. Its JSON values pass the PHI policy (app/platform/phi_policy.py): a
    condition on a lead's PHI field (its city, insurance, interest) keeps what it compared with, saw
    and whether it held from a reader without `lead:phi`."""

    id = fields.Integer()
    action_type = fields.String()
    status = fields.String(metadata={"description": "scheduled, done, skipped, cancelled, failed"})
    run_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    rule = phi_policy.PolicedJSON(allow_none=True, metadata={"description": "{id, version, name}"})
    sequence = phi_policy.PolicedJSON(allow_none=True, metadata={"description": "{enrollment_id, step}"})
    event = phi_policy.PolicedJSON(allow_none=True, metadata={"description": "{id, type}"})
    sweep = fields.String(
        allow_none=True, metadata={"description": "the beat sweep that made the step, e.g. the orphan sweep"}
    )
    conditions = fields.List(
        phi_policy.PolicedJSON(), metadata={"description": "as evaluated: value seen, result"}
    )
    action = phi_policy.PolicedJSON()
    result = phi_policy.PolicedJSON(
        metadata={"description": "what it made (task_id, notification_id) or why not"}
    )
    reason = fields.String(allow_none=True)


class TrailEnrollmentOut(AnswerSchema):
    id = fields.Integer()
    sequence_id = fields.Integer()
    status = fields.String()
    current_step = fields.Integer()
    next_step_at = fields.DateTime(allow_none=True)
    enrolled_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    end_reason = fields.String(allow_none=True)
    # Where a branching sequence has the lead, and the path it took (see EnrollmentOut's path).
    position = fields.String(allow_none=True)
    path = fields.List(fields.Dict(), allow_none=True)


class AttemptOut(AnswerSchema):
    """An attempt to reach the lead since its last contact, as the cadence and the break-up count it."""

    activity_id = fields.Integer()
    type = fields.String(metadata={"description": "PHONE_CALL, SMS, EMAIL or DIRECT_MESSAGE"})
    made_at = fields.DateTime(metadata={"description": "when it was made (a message: when it went)"})
    failed_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "when it failed: a call at once, a message when its reply window passed"},
    )
    counted = fields.Boolean(
        metadata={"description": "it failed by now and is the one of its business day that counts"}
    )


class WhyTrailOut(AnswerSchema):
    lead_id = fields.Integer()
    suggested_action = fields.String(allow_none=True)
    failed_attempts = fields.Integer(
        metadata={"description": "failed attempts in a row counted now (three: the break-up)"}
    )
    attempts = fields.List(
        fields.Nested(AttemptOut), metadata={"description": "attempts since the last contact, oldest first"}
    )
    pending = fields.List(fields.Nested(StepOut))
    past = fields.List(fields.Nested(StepOut))
    held_back = fields.List(
        fields.Nested(StepOut), metadata={"description": "skipped or moved by the policy"}
    )
    enrollments = fields.List(fields.Nested(TrailEnrollmentOut))
    sla = fields.List(
        fields.Nested(SlaClockOut),
        metadata={"description": "the lead's SLA clocks: when the owner was warned, when it breached"},
    )


class StatsArgs(RequestSchema):
    start = UTCDateTime(data_key="from", metadata={"description": "Range start (inclusive); default: all"})
    end = UTCDateTime(data_key="to", metadata={"description": "Range end (exclusive); default: all"})

    @validates_schema
    def _range(self, data, **_):
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            raise ValidationError("must be after from", "to")


class RuleStatsOut(AnswerSchema):
    rule_id = fields.Integer()
    name = fields.String()
    active = fields.Boolean()
    runs = fields.Integer(metadata={"description": "Events the rule fired on (made steps for)"})
    steps = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "Steps by status"}
    )
    skipped_reasons = fields.Dict(keys=fields.String(), values=fields.Integer())
    last_run_at = fields.DateTime(allow_none=True)
