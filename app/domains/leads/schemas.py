"""Request and response schemas of leads and lead sources."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields, validate

from app.domains.leads.models import (
    LeadPriority,
    LeadSourceCategory,
    LeadStatus,
    PatientRelationship,
    PreferredContact,
    TreatmentInterest,
)
from app.domains.leads.rules import CONSENT_SOURCES, SEARCH_LIMIT, SORT_FIELDS
from app.platform.answers import AnswerSchema
from app.platform.api import (
    MAX_ID,
    MAX_YEAR,
    MIN_YEAR,
    RequestSchema,
    StrictBoolean,
    UTCDate,
    id_field,
    to_bounded_utc,
)
from app.platform.api.emails import Email
from app.platform.phi_policy import PhiSchema


def _one_of(enum) -> validate.OneOf:
    return validate.OneOf([member.value for member in enum])


def _text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(max=max_length), **kwargs)


def _iana_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a directory, e.g. "America"
        raise ValidationError(f"unknown timezone {value!r}; use an IANA name like America/Chicago") from exc


class DateOrDateTime(fields.Field):
    """An ISO date (a whole day, in the clinic's timezone) or an ISO datetime (naive = UTC)."""

    guarded_by = "years MIN_YEAR..MAX_YEAR, as UTCDate and UTCDateTime"  # tests/test_guarded_schemas.py

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("give an ISO date (2024-05-01) or datetime (2024-05-01T09:00:00Z)")
        text = value.strip()
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                if not MIN_YEAR <= day.year <= MAX_YEAR:
                    raise ValidationError(f"give a date between the years {MIN_YEAR} and {MAX_YEAR}")
                return day
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError("give an ISO date (2024-05-01) or datetime (2024-05-01T09:00:00Z)") from exc
        return to_bounded_utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC))


class PatientIn(RequestSchema):
    """One patient of the lead: who is to be treated (the contact's child, the contact, ...)."""

    first_name = _text(100, allow_none=True, metadata={"description": "Required unless relationship is SELF"})
    last_name = _text(100, allow_none=True)
    birth_year = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=MIN_YEAR, max=MAX_YEAR),
        metadata={"description": "Not in the future; or give `age`"},
    )
    age = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=0, max=120),
        metadata={"description": "In years, today: stored as the year of birth it gives"},
    )
    relationship = fields.String(
        validate=_one_of(PatientRelationship),
        metadata={"description": "To the contact; the first patient's default SELF, the others' CHILD"},
    )


class PatientOut(AnswerSchema):
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    birth_year = fields.Integer(allow_none=True)
    relationship = fields.String()


class LeadFieldsIn(RequestSchema):
    """A lead's details; every field optional. Stage, status and owner change through their own endpoints."""

    first_name = fields.String(validate=validate.Length(min=1, max=100))
    last_name = fields.String(validate=validate.Length(min=1, max=100))
    email = Email(allow_none=True, validate=validate.Length(max=254))
    phone = _text(40, allow_none=True, metadata={"description": "Any format; stored and returned as E.164"})
    phone_alt = _text(40, allow_none=True)
    preferred_contact = fields.String(validate=_one_of(PreferredContact))
    preferred_time = _text(100, allow_none=True)
    patient_first_name = _text(100, allow_none=True)
    patient_last_name = _text(100, allow_none=True)
    patient_dob = UTCDate(allow_none=True, metadata={"description": "Encrypted at rest; not in the future"})
    patient_relationship = fields.String(validate=_one_of(PatientRelationship))
    patient_birth_year = fields.Integer(allow_none=True, validate=validate.Range(min=MIN_YEAR, max=MAX_YEAR))
    patients = fields.List(
        fields.Nested(PatientIn),
        validate=validate.Length(min=1, max=8),
        metadata={
            "description": "Every patient, in order: the first is the lead's own patient (the patient_* "
            "fields, which it replaces: give one or the other); the others replace the lead's further "
            "patients"
        },
    )
    address_line1 = _text(200, allow_none=True)
    address_line2 = _text(200, allow_none=True)
    city = _text(100, allow_none=True)
    state = _text(100, allow_none=True)
    postal_code = _text(20, allow_none=True)
    source_id = id_field()
    source_campaign = _text(200, allow_none=True)
    source_detail = _text(500, allow_none=True)
    referring_provider_id = id_field(allow_none=True)
    referring_patient_id = id_field(allow_none=True)
    treatment_interest = fields.List(
        fields.String(validate=_one_of(TreatmentInterest)),
        validate=validate.Length(max=len(TreatmentInterest)),
    )
    insurance_carrier = _text(200, allow_none=True)
    insurance_member_id = _text(100, allow_none=True, metadata={"description": "Encrypted at rest"})
    notes = _text(10000, allow_none=True)
    priority = fields.String(
        validate=_one_of(LeadPriority),
        metadata={"description": "normal (the default), high or urgent (a call within minutes)"},
    )
    # The contact policy of automated messages (app/domains/lead_messages/policy.py).
    do_not_contact = StrictBoolean(metadata={"description": "no automated messages or sequence calls at all"})
    email_opt_out = StrictBoolean(metadata={"description": "no automated email"})
    sms_opt_out = StrictBoolean(
        metadata={
            "description": "no automated SMS (an inbound STOP sets it, and only the person's START clears it)"
        }
    )
    whatsapp_opt_out = StrictBoolean(
        metadata={
            "description": "no WhatsApp messages (a STOP on WhatsApp sets it, and only the person's START "
            "there clears it)"
        }
    )
    timezone = fields.String(
        allow_none=True,
        validate=[validate.Length(max=64), _iana_timezone],
        metadata={"description": "IANA name, for quiet hours; null: the clinic's timezone"},
    )


class LeadUpdateIn(LeadFieldsIn):
    """A lead's details; every field optional. Stage, status and owner change through their own
    endpoints. Turning sms_opt_out or email_opt_out off records consent: it needs `consent_reason`
    (audited), and over the person's own opt-out `consent_source`; never over a texted STOP (409)."""

    consent_reason = fields.String(
        validate=[validate.Length(min=1, max=500), validate.Regexp(r"\S", error="must not be blank")],
        metadata={
            "description": "why consent is recorded (kept in the audit trail; no health details): needed "
            "to turn sms_opt_out or email_opt_out off"
        },
    )
    consent_source = fields.String(
        validate=validate.OneOf(CONSENT_SOURCES),
        metadata={
            "description": "how the person gave their new consent, needed over an opt-out of their own "
            "(an unsubscribe, a complaint); a texted STOP is undone only by their START"
        },
    )


class LeadIn(LeadFieldsIn):
    """A new lead. Without source_id the lead is attributed to the clinic's "Other" source."""

    first_name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    last_name = fields.String(required=True, validate=validate.Length(min=1, max=100))


class CreateLeadArgs(RequestSchema):
    reject_duplicates = StrictBoolean(
        load_default=False,
        metadata={"description": "Refuse (409) instead of creating when an open lead matches"},
    )


class DuplicateOut(AnswerSchema):
    lead_id = fields.Integer()
    matched = fields.List(fields.String(), metadata={"description": "phone, email and/or name_dob"})


class ScoreFactorOut(AnswerSchema):
    feature = fields.String()
    label = fields.String()
    effect = fields.String(metadata={"description": "raises or lowers"})
    weight = fields.Float(metadata={"description": "Its effect on the log-odds, against the average lead"})


class NextActionOut(AnswerSchema):
    action = fields.String(
        metadata={
            "description": "call_now, call_at_best_slot, send_breakup_email, move_to_lost, "
            "schedule_consultation or enroll_sequence"
        }
    )
    reason = fields.String()
    # Kept as ISO text in the lead's JSON column: a string here, formatted as a date-time.
    at = fields.String(
        allow_none=True,
        metadata={"format": "date-time", "description": "When to act (a call's best slot); past: now"},
    )


class LeadOut(PhiSchema):
    PHI_KIND = "lead"
    # Rewritten by the engine after a lead's events (app/domains/intelligence): not part of the ETag.
    # `patients` too: a lead's answer lists them where it was read with them (a change of them is a
    # change of the lead, its updated_at in the ETag).
    ETAG_DERIVED = (
        "score", "score_factors", "score_model_version", "next_best_action", "in_sequence", "patients",
    )  # fmt: skip

    id = fields.Integer()
    first_name = fields.String()
    last_name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    phone_alt = fields.String(allow_none=True)
    preferred_contact = fields.String()
    preferred_time = fields.String(allow_none=True)
    patient_first_name = fields.String(allow_none=True)
    patient_last_name = fields.String(allow_none=True)
    patient_dob = fields.Date(allow_none=True)
    patient_relationship = fields.String()
    patient_birth_year = fields.Integer(allow_none=True)
    patients = fields.List(
        fields.Nested(PatientOut),
        metadata={"description": "Every patient: the lead's own (the patient_* fields) first, when named"},
    )
    address_line1 = fields.String(allow_none=True)
    address_line2 = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    state = fields.String(allow_none=True)
    postal_code = fields.String(allow_none=True)
    source_id = fields.Integer()
    source_campaign = fields.String(allow_none=True)
    source_detail = fields.String(allow_none=True)
    referring_provider_id = fields.Integer(allow_none=True)
    referring_patient_id = fields.Integer(allow_none=True)
    treatment_interest = fields.List(fields.String())
    insurance_carrier = fields.String(allow_none=True)
    insurance_member_id = fields.String(allow_none=True)
    assigned_to_id = fields.Integer(allow_none=True)
    assigned_at = fields.DateTime(allow_none=True)
    status = fields.String()
    pipeline_stage = fields.String()
    stage_entered_at = fields.DateTime()
    converted_at = fields.DateTime(allow_none=True)
    treatment_value = fields.Decimal(
        places=2, as_string=True, allow_none=True, metadata={"type": "string", "format": "decimal"}
    )
    lost_at = fields.DateTime(allow_none=True)
    lost_reason = fields.String(allow_none=True)
    hesitation_reason = fields.String(
        allow_none=True, metadata={"description": "why the lead hesitates (set entering pending_decision)"}
    )
    lost_notes = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    suggested_action = fields.String(allow_none=True)
    next_step_blocked = fields.String(
        allow_none=True,
        metadata={
            "description": "why the orphan sweep could not give this open lead a next step: no_owner "
            "(nobody available to own it, no fallback owner) or unreachable (do not contact, or opted "
            "out on every channel); null when it could"
        },
    )
    priority = fields.String(metadata={"description": "normal, high or urgent"})
    last_contacted_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "the last contact: an answered call, an inbound message, a visit"},
    )
    escalated = fields.Boolean(
        metadata={"description": "escalated to the clinic admins: no contact within hours of capture"},
    )
    escalated_at = fields.DateTime(allow_none=True)
    # Follow-up intelligence (app/domains/intelligence); null until the lead is first scored.
    score = fields.Float(
        allow_none=True, metadata={"description": "P(conversion within 90 days), 0-1; null until scored"}
    )
    score_factors = fields.List(
        fields.Nested(ScoreFactorOut), allow_none=True, metadata={"description": "The top three factors"}
    )
    score_model_version = fields.String(allow_none=True)
    next_best_action = fields.Nested(
        NextActionOut, attribute="next_action", allow_none=True, metadata={"description": "Open leads only"}
    )
    in_sequence = fields.Boolean(
        metadata={
            "optional": True,
            "description": "in an active follow-up sequence (the spec's label): in a lead's read and "
            "the lead list; not part of the ETag",
        }
    )
    do_not_contact = fields.Boolean()
    email_opt_out = fields.Boolean()
    sms_opt_out = fields.Boolean()
    whatsapp_opt_out = fields.Boolean()
    timezone = fields.String(allow_none=True)
    external_id = fields.String(allow_none=True, metadata={"description": "The importer's id, if imported"})
    merged_into_id = fields.Integer(allow_none=True, metadata={"description": "the lead it was merged into"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class LeadCreatedOut(LeadOut):
    possible_duplicates = fields.List(fields.Nested(DuplicateOut))


def _user_id_in_range(value: str) -> None:
    if value.isdigit() and not 1 <= int(value) <= MAX_ID:
        raise ValidationError(f"user ids run from 1 to {MAX_ID}")


SORT_CHOICES = [*SORT_FIELDS, *(f"-{name}" for name in SORT_FIELDS)]


class LeadQueryArgs(RequestSchema):
    stage = fields.String(validate=validate.Length(max=64), metadata={"description": "Pipeline stage slug"})
    status = fields.String(validate=_one_of(LeadStatus))
    assigned_to = fields.String(
        validate=[
            validate.Length(max=10),
            validate.Regexp(r"^(\d{1,10}|me|none)$", error="give a user id, 'me' or 'none'"),
            _user_id_in_range,
        ],
        metadata={"description": "A user id, `me`, or `none` for unassigned leads"},
    )
    source = id_field(strict=False, metadata={"description": "Lead source id"})
    priority = fields.String(
        validate=_one_of(LeadPriority), metadata={"description": "normal, high or urgent"}
    )
    created_from = DateOrDateTime(metadata={"description": "ISO date or datetime (inclusive)"})
    created_to = DateOrDateTime(metadata={"description": "ISO date (whole day) or datetime (inclusive)"})
    q = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Text in contact or patient names, email or phone digits"},
    )
    stale = StrictBoolean(
        metadata={
            "description": "true: open leads flagged stale (over their stage's limit in this stay, or "
            "quiet for the clinic's stale_after_days); false: the others"
        }
    )
    next_step = fields.String(
        validate=validate.OneOf(["none"]),
        metadata={
            "description": "`none`: open leads with no open task, no pending automated step and no "
            "active sequence (orphans)"
        },
    )
    in_sequence = StrictBoolean(
        metadata={"description": "true: leads in an active follow-up sequence; false: the others"},
    )
    sort = fields.String(
        load_default="-created_at",
        validate=validate.OneOf(SORT_CHOICES),
        metadata={"description": "A field name, `-` first for descending"},
    )


def _two_characters_at_least(value: str) -> None:
    if len(value.strip()) < 2:
        raise ValidationError("type at least 2 characters (spaces aside)")


class LeadSearchArgs(RequestSchema):
    q = fields.String(
        required=True,
        validate=[validate.Length(max=100), _two_characters_at_least],
        metadata={"description": "The list's `q` (phone in any format, names, email); 2 characters at least"},
    )
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=SEARCH_LIMIT))


class LeadMatchOut(PhiSchema):
    """A lead as a search box lists it: who, how to reach them, where they are."""

    PHI_KIND = "lead"
    id, first_name, last_name = fields.Integer(), fields.String(), fields.String()
    email, phone = fields.String(allow_none=True), fields.String(allow_none=True)
    patient_first_name = fields.String(allow_none=True)
    patient_last_name = fields.String(allow_none=True)
    patients = fields.List(fields.Nested(PatientOut))
    status, pipeline_stage = fields.String(), fields.String()
    assigned_to_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


# --- lead sources ----------------------------------------------------------------------------


class LeadSourceUpdateIn(RequestSchema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    category = fields.String(validate=_one_of(LeadSourceCategory))
    description = _text(2000, allow_none=True)
    is_active = StrictBoolean()
    monthly_cost = fields.Decimal(
        allow_none=True,
        places=2,
        validate=validate.Range(min=0, max=10**9),
        # Numbers, not apispec's Decimal-formatted strings ("1000000000.00" is no JSON Schema bound).
        metadata={"description": ">= 0", "minimum": 0, "maximum": 10**9},
    )
    coordinator_ids = fields.List(
        id_field(),
        validate=validate.Length(max=100),
        metadata={"description": "Coordinators who take this source's leads (assignment policy `source`)"},
    )


class LeadSourceIn(LeadSourceUpdateIn):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    category = fields.String(required=True, validate=_one_of(LeadSourceCategory))


class LeadSourceOut(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    category = fields.String()
    description = fields.String(allow_none=True)
    is_active = fields.Boolean()
    monthly_cost = fields.Decimal(
        places=2, as_string=True, allow_none=True, metadata={"type": "string", "format": "decimal"}
    )
    coordinator_ids = fields.List(fields.Integer())
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class LeadSourceQueryArgs(RequestSchema):
    category = fields.String(validate=_one_of(LeadSourceCategory))
    is_active = StrictBoolean()
