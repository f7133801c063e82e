"""Request and response schemas of consultations and the booking system's appointment webhook."""

from marshmallow import ValidationError, fields, validate, validates_schema

from app.domains.consultations import rules
from app.domains.consultations.models import ConsultationStatus, TimerKind, TimerStatus
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, UTCDate, UTCDateTime, id_field
from app.platform.api.emails import Email
from app.platform.phi_policy import PhiSchema

STATUSES = [s.value for s in ConsultationStatus]
DURATION = fields.Integer(
    strict=True,
    validate=validate.Range(min=rules.MIN_DURATION, max=rules.MAX_DURATION),
    metadata={"description": "minutes (default 60)"},
)
LOCATION = fields.String(
    allow_none=True,
    validate=validate.Length(max=200),
    metadata={"description": "the clinic's office or room (no patient details)"},
)
PROVIDER = fields.String(
    allow_none=True, validate=validate.Length(max=120), metadata={"description": "the doctor's name"}
)
EXTERNAL_ID = fields.String(
    validate=validate.Length(min=1, max=120),
    metadata={"description": "the booking system's appointment id (unique per clinic)"},
)


class ConsultationIn(RequestSchema):
    starts_at = UTCDateTime(required=True, metadata={"description": "ISO time; naive means UTC"})
    duration_minutes = DURATION
    location = LOCATION
    provider_name = PROVIDER
    external_id = EXTERNAL_ID
    type_id = id_field(metadata={"description": "a consultation type: its length, and its providers"})
    provider_id = id_field(
        metadata={"description": "the provider or chair (default: the first of the type's free then)"}
    )


class ConsultationChangeIn(RequestSchema):
    """A reschedule: a new `starts_at` replaces the old time's reminders and no-show check."""

    starts_at = UTCDateTime(metadata={"description": "the new start"})
    duration_minutes = DURATION
    location = LOCATION
    provider_name = PROVIDER

    @validates_schema
    def something(self, data, **kwargs):
        if not data:
            raise ValidationError("give at least one of starts_at, duration_minutes, location, provider_name")


class CheckInIn(RequestSchema):
    checked_in_at = UTCDateTime(
        metadata={
            "description": "when the family arrived (default now; a time ahead of now counts as now);"
            " not before the consultation starts (422)"
        }
    )


class DayArgs(RequestSchema):
    date = UTCDate(required=True, metadata={"description": "the clinic's local day, YYYY-MM-DD"})
    status = fields.String(validate=validate.OneOf(STATUSES))


class ConsultationOut(AnswerSchema):
    id = fields.Integer()
    lead_id = fields.Integer()
    status = fields.String(metadata={"description": ", ".join(STATUSES)})
    starts_at = fields.DateTime()
    duration_minutes = fields.Integer()
    location = fields.String(allow_none=True)
    provider_name = fields.String(allow_none=True)
    external_id = fields.String(allow_none=True)
    provider_id = fields.Integer(allow_none=True, metadata={"description": "the provider or chair booked"})
    type_id = fields.Integer(allow_none=True, metadata={"description": "the consultation type"})
    ends_at = fields.DateTime(allow_none=True, metadata={"description": "with a provider: the visit's end"})
    overlap_allowed = fields.Boolean(
        metadata={
            "description": "a practice-management booking kept over another (see /api/availability/clashes)"
        }
    )
    version = fields.Integer(metadata={"description": "bumped by each new time"})
    booked_via = fields.String(
        metadata={
            "description": "how it was booked: staff (the API or the console), webhook (the booking "
            "system), self (the family, on the clinic's booking page)"
        }
    )
    confirmed_at = fields.DateTime(allow_none=True, metadata={"description": "the family replied C or YES"})
    reschedule_requested_at = fields.DateTime(
        allow_none=True, metadata={"description": "the family replied R: a call task asks the coordinator"}
    )
    checked_in_at = fields.DateTime(allow_none=True)
    no_show_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class AppointmentIn(RequestSchema):
    """A booking or practice-management system's appointment event, signed like a web form.

    - `external_id` (required): the appointment's id there; every event of one appointment names it;
    - `status` (required): booked (or scheduled, rescheduled), cancelled, attended (or checked_in), no_show;
    - `occurred_at` (required): when it happened there; events apply in this order, so an older one
      arriving after a newer one, or the same one again, changes nothing;
    - `starts_at` (required the first time an appointment is seen), `duration_minutes`, `location`,
      `provider_name` (matched to the clinic's provider of that name) or `provider_id`: a booked event
      with a new `starts_at` reschedules; into a time the provider holds it is a 409 naming the clash,
      unless the clinic lets its practice-management system win (then stored, the clash recorded);
    - `lead_id`, or the lead's `phone` or `email`: whose consultation (an open lead of the clinic).
    """

    external_id = fields.String(required=True, validate=validate.Length(min=1, max=120))
    status = fields.String(required=True, validate=validate.OneOf(sorted(rules.WEBHOOK_STATUSES)))
    occurred_at = UTCDateTime(required=True)
    starts_at = UTCDateTime()
    duration_minutes = DURATION
    location = LOCATION
    provider_name = PROVIDER
    provider_id = id_field()
    lead_id = id_field()
    phone = fields.String(validate=validate.Length(min=1, max=40))
    email = Email(validate=validate.Length(max=254))


class AppointmentOut(AnswerSchema):
    consultation_id = fields.Integer()
    status = fields.String(metadata={"description": "the consultation's status after the event"})
    applied = fields.Boolean(
        metadata={"description": "false: the same event again, or one older than an event already applied"}
    )


class RecallIn(RequestSchema):
    """A recall: a local date (`on`) or whole months from today (`in_months`), not both."""

    on = UTCDate(metadata={"description": "the clinic's local date, YYYY-MM-DD (today or later)"})
    in_months = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=rules.MAX_RECALL_MONTHS),
        metadata={"description": "whole months from the clinic's today (31 Jan + 1 = the last day of Feb)"},
    )
    note = fields.String(
        allow_none=True,
        validate=validate.Length(max=500),
        metadata={"description": "for the coordinator (not sent to the family)"},
    )

    @validates_schema
    def one_of(self, data, **kwargs):
        if "on" in data and "in_months" in data:
            raise ValidationError("give on or in_months, not both", field_name="in_months")
        if "on" not in data and "in_months" not in data:
            raise ValidationError("give on (a date) or in_months", field_name="on")


class TimerOut(PhiSchema):
    """A lead's long timer: a recall, a records expiry reminder, or a benefits reset nudge."""

    PHI_KIND = "timer"

    id = fields.Integer()
    lead_id = fields.Integer()
    kind = fields.String(metadata={"description": ", ".join(k.value for k in TimerKind)})
    status = fields.String(metadata={"description": ", ".join(s.value for s in TimerStatus)})
    on = fields.Date(attribute="fires_on", metadata={"description": "the clinic's local date it fires on"})
    due_at = fields.DateTime(metadata={"description": "the clinic's opening that day (UTC)"})
    note = fields.String(allow_none=True)
    consultation_id = fields.Integer(
        allow_none=True, metadata={"description": "records_expiry: the attended consultation"}
    )
    expires_on = fields.Date(
        allow_none=True, metadata={"description": "records_expiry: the records' last day"}
    )
    reason = fields.String(allow_none=True, metadata={"description": "why it was cancelled"})
    fired_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
