"""The clinic's own settings as a clinic admin writes them (PUT /api/clinic): hours, holidays, the
contact policy, provider limits, SLA targets, assignment."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from app.domains.auth.schemas import (
    ASSIGNMENT_POLICIES,
    HHMM,
    MESSAGING_SERVICE_SID,
    SID_FORM,
    e164,
    validate_holiday_country,
    validate_timezone,
)
from app.domains.business_hours.rules import month_day
from app.domains.business_hours.schemas import BusinessHours
from app.platform.api import RequestSchema, StrictBoolean
from app.platform.api.emails import Email
from app.platform.delivery.rules import parse_limit

INSTAGRAM_HOURLY_LIMIT = 200  # Meta's per account (app/domains/outbound/worker/rate_limits.py's default)


class ClinicQuietHoursIn(RequestSchema):
    start = fields.String(
        required=True, validate=[validate.Length(max=5), validate.Regexp(HHMM, error="HH:MM")]
    )
    end = fields.String(
        required=True, validate=[validate.Length(max=5), validate.Regexp(HHMM, error="HH:MM")]
    )


def _rate_limit(text: str) -> None:
    try:
        parse_limit(text)
    except ValueError as error:
        raise ValidationError(str(error)) from None


def _instagram_rate_limit(text: str) -> None:
    """Meta takes at most 200 messages an hour from an account: a clinic may set a lower limit only."""
    _rate_limit(text)
    limit = parse_limit(text)
    windows_an_hour = max(1, -(-3600 // int(limit.get_expiry())))
    if limit.amount * windows_an_hour > INSTAGRAM_HOURLY_LIMIT:
        raise ValidationError(
            f"Instagram takes at most {INSTAGRAM_HOURLY_LIMIT} messages an hour; set a lower limit"
        )


def _month_day(text: str) -> None:
    if month_day(text) is None:
        raise ValidationError("a day every year has, as MM-DD (e.g. 01-01; not 02-29)")


class ProviderRateLimitsIn(RequestSchema):
    email = fields.String(allow_none=True, validate=[validate.Length(max=64), _rate_limit])
    sms = fields.String(allow_none=True, validate=[validate.Length(max=64), _rate_limit])
    # Meta's 200 messages an hour per Instagram account is the limit unless the clinic sets a lower one.
    instagram = fields.String(allow_none=True, validate=[validate.Length(max=64), _instagram_rate_limit])
    whatsapp = fields.String(allow_none=True, validate=[validate.Length(max=64), _rate_limit])


class SlaSettingsIn(RequestSchema):
    speed_to_lead_minutes = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=60 * 24 * 30),
        metadata={"description": "business minutes from capture to a person's first attempt (default 5)"},
    )
    first_response_minutes = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=60 * 24 * 30),
        metadata={"description": "business minutes from capture to the first contact (default 1440)"},
    )
    warning_share = fields.Float(
        validate=validate.Range(min=0.05, max=0.99),
        metadata={"description": "the share of the target at which the owner is warned (default 0.8)"},
    )


class CadenceTouchIn(RequestSchema):
    after_business_days = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=1, max=30),
        metadata={"description": "business days after the failed attempt"},
    )
    channels = fields.List(
        fields.String(validate=validate.OneOf(["call", "sms", "email"])),
        required=True,
        validate=validate.Length(min=1, max=3),
        metadata={
            "description": "call (a task for the owner), sms, email (automated, through the contact policy)"
        },
    )


class CadenceIn(RequestSchema):
    touches = fields.List(
        fields.Nested(CadenceTouchIn),
        validate=validate.Length(max=10),
        metadata={
            "description": "the next attempt after each failed one: the first after the initial contact "
            "call; after the last, the break-up (default: call and sms 1 business day later, then call 2)"
        },
    )
    reply_window_business_days = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=10),
        metadata={
            "description": "business days a text or email waits for an answer before it failed (default 1)"
        },
    )


class FollowUpPassIn(RequestSchema):
    """The follow-up pass (app/domains/sequences/follow_up_pass.py): what a paced sequence's next
    message waits for."""

    windows = fields.List(
        fields.String(validate=[validate.Length(max=5), validate.Regexp(HHMM, error="HH:MM")]),
        validate=validate.Length(min=1, max=6),
        metadata={"description": "local send windows, HH:MM (default 09:00, 14:00, 18:00)"},
    )
    min_score = fields.Float(
        validate=validate.Range(min=0, max=1),
        metadata={"description": "the lowest lead score (P(conversion), 0-1) followed up (default 0.2)"},
    )
    max_score = fields.Float(
        validate=validate.Range(min=0, max=1),
        metadata={"description": "the highest lead score followed up (default 0.6)"},
    )
    max_follow_ups = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=50),
        metadata={"description": "follow-ups the pass sends one lead in all (default 5)"},
    )
    min_interval_hours = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=24 * 30),
        metadata={"description": "hours between two of the pass's follow-ups to a lead (default 24)"},
    )

    @validates_schema
    def check_band(self, data, **kwargs):
        if data.get("min_score", 0) > data.get("max_score", 1):
            raise ValidationError({"min_score": ["must not be above max_score"]})


class ClinicSettingsIn(RequestSchema):
    """Automation settings of a clinic; unknown keys are refused so a typo does not silently do nothing."""

    reminder_offsets_minutes = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=60 * 24 * 30)),
        validate=validate.Length(min=0, max=5),
        metadata={"description": "minutes before a task is due to remind its assignee, e.g. [1440, 15]"},
    )
    escalation_hours = fields.Float(validate=validate.Range(min=0.25, max=24 * 30))
    no_show_grace_minutes = fields.Integer(
        validate=validate.Range(min=0, max=240),
        metadata={
            "description": "a consultation with no check-in this long after its start is a no-show "
            "(default 15)"
        },
    )
    # The long timers of consultations (app/domains/consultations/timers.py).
    benefits_reset = fields.String(
        allow_none=True,
        validate=[validate.Length(min=5, max=5), _month_day],
        metadata={
            "description": "MM-DD, e.g. 01-01: on that local date every lead pending a decision for "
            "cost or financing gets a call task and a text, once a year; null: off"
        },
    )
    records_valid_days = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=365),
        metadata={
            "description": "days an attended consultation's diagnostic records stay valid; a reminder "
            "goes records_reminder_days before they expire; null: off"
        },
    )
    records_reminder_days = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=365),
        metadata={"description": "days before the records expire that the reminder goes (default 7)"},
    )
    no_contact_escalation_hours = fields.Float(
        validate=validate.Range(min=1, max=24 * 30),
        metadata={
            "description": "a lead with no contact this long after capture (counted on open days) is "
            "escalated to the clinic admins (default 24)"
        },
    )
    email_from = Email(
        validate=validate.Length(max=254),
        metadata={"description": "the From address of the clinic's email (else EMAIL_FROM)"},
    )
    email_from_name = fields.String(
        validate=[
            validate.Length(min=1, max=100),
            validate.Regexp(r"^[^\r\n<>\"]*$", error="no line breaks, <, > or quotes"),
        ],
        metadata={"description": "the display name beside email_from, e.g. Smile Orthodontics"},
    )
    # The clinic's own SMS sender: its messages go from it and texts to it are routed to the clinic.
    sms_number = fields.String(
        allow_none=True,
        validate=[validate.Length(max=16), e164],
        metadata={
            "description": "the clinic's Twilio number in E.164, e.g. +15551234567, one the platform "
            "operator assigned to it (else SMS_FROM)"
        },
    )
    sms_messaging_service_sid = fields.String(
        allow_none=True,
        validate=[
            validate.Length(max=34),
            validate.Regexp(MESSAGING_SERVICE_SID, error=SID_FORM),
        ],
        metadata={
            "description": "send through this Twilio Messaging Service instead of one number (one the "
            "platform operator assigned to the clinic)"
        },
    )
    whatsapp_number = fields.String(
        allow_none=True,
        validate=[validate.Length(max=16), e164],
        metadata={
            "description": "the clinic's WhatsApp sender in E.164: one of its assigned Twilio numbers, "
            "enabled for WhatsApp (else the platform's WHATSAPP_FROM)"
        },
    )
    sms_help_text = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=320),
        metadata={"description": "the answer to a text of HELP (default: the clinic's name and STOP hint)"},
    )
    # My next call (app/domains/tasks/claims.py).
    next_task_lease_minutes = fields.Integer(
        validate=validate.Range(min=1, max=240),
        metadata={"description": "how long POST /api/me/next-task holds a task for its caller (default 10)"},
    )
    # A second factor at login (app/domains/auth/login/second_factor.py).
    require_admin_second_factor = StrictBoolean(
        metadata={
            "description": "clinic admins must log in with a second factor; one without it is asked "
            "to enrol (403 second_factor_enrollment_required) (default false)"
        },
    )
    complete_tasks_on_reply = StrictBoolean(
        metadata={
            "description": "a text or email from the family completes the open call, SMS and email "
            "tasks the automation made to reach them, 'Replied by <channel>' on the timeline (default true)"
        },
    )
    next_task_team_overdue = StrictBoolean(
        metadata={"description": "next-task may hand out a teammate's unclaimed overdue task (default true)"},
    )
    # The contact policy of automated messages to leads (app/domains/lead_messages/policy.py).
    quiet_hours = fields.Nested(
        ClinicQuietHoursIn,
        allow_none=True,
        metadata={"description": "local (the lead's timezone) {start, end}; default 20:00-08:00; null: none"},
    )
    # The follow-up cadence (app/domains/automation/cadence.py).
    cadence = fields.Nested(
        CadenceIn,
        allow_none=True,
        metadata={"description": "what follows a failed attempt to reach a lead; null: the default"},
    )
    stale_after_days = fields.Integer(
        validate=validate.Range(min=1, max=365),
        metadata={"description": "days without activity before an open lead is stale (default 7)"},
    )
    fallback_owner_id = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={
            "description": "who owns a lead when no coordinator is available (an active user of the "
            "clinic who works leads); null: nobody, the lead waits for the next available one"
        },
    )
    orphan_after_hours = fields.Float(
        validate=validate.Range(min=0, max=24 * 30),
        metadata={
            "description": "hours an open lead may go without a next step (no open task, pending "
            "automated step or active sequence) before the orphan sweep gives its owner a "
            "follow-up task (default 24)"
        },
    )
    erase_closed_after_months = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=1200),
        metadata={
            "description": "months after a lead is lost or converted before its person's data is "
            "erased (a daily sweep; an anonymised tombstone stays); 0 or null: never"
        },
    )
    daily_message_cap = fields.Integer(
        validate=validate.Range(min=0, max=50),
        metadata={"description": "automated messages per lead per local day (default 2)"},
    )
    # Outreach limits (seed 004): app/domains/lead_messages/policy.py holds automated messages to one lead
    # back.
    max_automated_messages_per_lead = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=10_000),
        metadata={
            "description": "automated messages a lead may get in all; more are skipped (default: none)"
        },
    )
    min_message_interval_minutes = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=60 * 24 * 30),
        metadata={
            "description": "minutes between two automated messages to a lead; a sooner one waits (default 0)"
        },
    )
    sla = fields.Nested(
        SlaSettingsIn,
        allow_none=True,
        metadata={
            "description": "SLA clock targets: speed_to_lead_minutes, first_response_minutes, warning_share"
        },
    )
    min_touch_gap_minutes = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=60 * 24 * 30),
        metadata={
            "description": "minutes between any two touches of a lead, a person's included; an automated "
            "message or sequence step sooner waits for the gap's end (default 0)"
        },
    )
    follow_up_pass = fields.Nested(
        FollowUpPassIn,
        allow_none=True,
        metadata={"description": "when and to whom paced sequences send their next message; null: default"},
    )
    provider_rate_limits = fields.Nested(
        ProviderRateLimitsIn,
        allow_none=True,
        metadata={
            "description": 'per channel, e.g. {"sms": "200/hour"}: messages over it wait for the next '
            "window (app/domains/outbound/worker/rate_limits.py); null: no limit"
        },
    )
    # When automation's call tasks fall due (app/domains/intelligence): the first open moment, or the
    # best-answered open hour within a window after it.
    call_timing = fields.String(
        validate=validate.OneOf(["first_slot", "best_slot"]),
        metadata={"description": "first_slot (default) or best_slot: automated call tasks at the best hour"},
    )
    best_slot_window_hours = fields.Integer(
        validate=validate.Range(min=1, max=168),
        metadata={"description": "how far past the first open moment best_slot may look (default 24)"},
    )
    # Engagement (issue 60, app/domains/engagement/service.py).
    track_links = StrictBoolean(
        metadata={"description": "links in messages to leads go through the engine's redirect (default on)"}
    )
    open_pixel = StrictBoolean(
        metadata={"description": "emails to leads carry a 1x1 open pixel (default off)"}
    )
    count_machine_opens = StrictBoolean(
        metadata={"description": "a mail proxy's open (Apple Mail Privacy Protection) counts (default off)"}
    )


class ClinicUpdateIn(RequestSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    timezone = fields.String(validate=[validate.Length(max=64), validate_timezone])
    business_hours = BusinessHours()
    holiday_country = fields.String(
        allow_none=True, validate=[validate.Length(max=8), validate_holiday_country]
    )
    default_phone_region = fields.String(validate=[validate.Length(max=2), validate.Regexp(r"^[A-Z]{2}$")])
    assignment_policy = fields.String(validate=validate.OneOf(ASSIGNMENT_POLICIES))
    settings = fields.Nested(ClinicSettingsIn)
