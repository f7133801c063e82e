"""Request and response schemas of intake: the web form, the bulk import."""

from __future__ import annotations

from marshmallow import EXCLUDE, ValidationError, fields, pre_load, validate, validates_schema

from app.domains.leads.models import LeadPriority, PatientRelationship, PreferredContact, TreatmentInterest
from app.domains.leads.schemas import LeadIn
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, StrictBoolean, UTCDate
from app.platform.api.emails import Email


def _text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(max=max_length), **kwargs)


class WebFormIn(RequestSchema):
    """A website's inquiry form, mapped to a lead.

    Mapping:
    - `name` (split at the last space) or `first_name` / `last_name` → the contact's name;
    - `email`, `phone` (any format; read in the clinic's phone region) → the contact; one of them is required;
    - `child_name` → the patient (relationship CHILD; the contact's last name if only a first name is given),
      or `patient_name` / `patient_first_name` / `patient_last_name` with `patient_relationship`;
    - `patient_dob` (ISO date) → the patient's date of birth;
    - `priority` (normal, high, urgent; any case) → the lead's priority (urgent: a call within minutes);
    - `message` → notes; `treatment_interest` (one value or a list, any case) and `preferred_contact`,
      `preferred_time`, `insurance_carrier`, address fields as on a lead;
    - `source` (a lead source's name) or `utm_source` (a source's name) → the lead source; else
      `utm_medium` (cpc/ppc/paid → WEB_PAID, social → WEB_SOCIAL, organic → WEB_ORGANIC) → the
      clinic's first active source of that category; else the clinic's WEB_ORGANIC source;
    - `utm_campaign` → source_campaign; `source`, `utm_*`, `page_url`, `referrer` → source_detail;
    - `submission_id` (required, unique per clinic): the same submission sent again gives the same lead.
    Other fields (honeypots, consent boxes, ...) are ignored.
    """

    class Meta:
        unknown = EXCLUDE

    submission_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    name = _text(100)  # split into first and last name, each at most 100
    first_name = _text(100)
    last_name = _text(100)
    email = Email(validate=validate.Length(max=254))
    phone = _text(40)
    preferred_contact = fields.String(validate=validate.OneOf([p.value for p in PreferredContact]))
    preferred_time = _text(100)
    child_name = _text(100)
    patient_name = _text(100)
    patient_first_name = _text(100)
    patient_last_name = _text(100)
    patient_relationship = fields.String(validate=validate.OneOf([r.value for r in PatientRelationship]))
    patient_dob = UTCDate()
    priority = fields.String(validate=validate.OneOf([p.value for p in LeadPriority]))
    message = _text(10000)
    treatment_interest = fields.List(
        fields.String(validate=validate.OneOf([t.value for t in TreatmentInterest])),
        validate=validate.Length(max=len(TreatmentInterest)),
    )
    insurance_carrier = _text(200)
    address_line1 = _text(200)
    address_line2 = _text(200)
    city = _text(100)
    state = _text(100)
    postal_code = _text(20)
    source = _text(100)
    utm_source = _text(100)
    utm_medium = _text(100)
    utm_campaign = _text(200)
    utm_term = _text(200)
    utm_content = _text(200)
    page_url = _text(500)
    referrer = _text(500)

    @pre_load
    def lenient_values(self, data, **kwargs):
        """Website forms send enum values in any case, and one interest as a plain string."""
        if not isinstance(data, dict):
            return data
        data = {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()}
        data = {k: v for k, v in data.items() if v not in ("", None)}
        interest = data.get("treatment_interest")
        if isinstance(interest, str):
            data["treatment_interest"] = [interest]
        if isinstance(data.get("treatment_interest"), list):
            data["treatment_interest"] = [
                v.strip().upper().replace(" ", "_") if isinstance(v, str) else v
                for v in data["treatment_interest"]
            ]
        for key in ("preferred_contact", "patient_relationship"):
            if isinstance(data.get(key), str):
                data[key] = data[key].upper()
        if isinstance(data.get("priority"), str):
            data["priority"] = data["priority"].lower()
        return data

    @validates_schema
    def names_and_contact(self, data, **kwargs):
        errors = {}
        if not (data.get("name") or data.get("first_name")):
            errors["name"] = ["give name or first_name"]
        if not (data.get("email") or data.get("phone")):
            errors["phone"] = ["give a phone or an email so the clinic can answer"]
        if errors:
            raise ValidationError(errors)


class WebFormOut(AnswerSchema):
    lead_id = fields.Integer()
    status = fields.String(
        metadata={"description": "created, or already_received for a repeated submission_id"}
    )


# --- bulk import ---------------------------------------------------------------------------------

MAX_IMPORT_ROWS = 10_000


class ImportRowIn(LeadIn):
    """One row of a lead import: a new lead's fields, and the importer's id for it."""

    external_id = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={
            "description": "Your id for this lead: a row whose external_id was imported before "
            "is reported duplicate, never created twice"
        },
    )


IMPORT_ROW = ImportRowIn()


class ImportArgs(RequestSchema):
    automation = StrictBoolean(
        load_default=True,
        metadata={"description": "false for historical leads: no rule fires (no call task, no messages)"},
    )
    reject_duplicates = StrictBoolean(
        load_default=False,
        metadata={
            "description": "Report a row matching an open lead (phone, email, name and DOB) as a "
            "duplicate instead of creating it"
        },
    )
    mapping = fields.String(
        # Within the request line's 8000 bytes (MAX_REQUEST_LINE) once percent-encoded.
        validate=validate.Length(max=2000),
        metadata={
            "description": "For a spreadsheet: a JSON object naming the lead field each column holds, by "
            'its header (`{"Vorname": "first_name", "Fax": null}`; null leaves the column out). A column '
            "not named is guessed from its header (Vorname, First Name, Tel., Mobile, E-Mail ...)"
        },
    )
