"""Request and response schemas of intake: the web form."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from app.api import RequestSchema, UTCDate
from app.leads.models import PatientRelationship, PreferredContact, TreatmentInterest


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
    email = fields.Email(validate=validate.Length(max=254))
    phone = _text(40)
    preferred_contact = fields.String(validate=validate.OneOf([p.value for p in PreferredContact]))
    preferred_time = _text(100)
    child_name = _text(100)
    patient_name = _text(100)
    patient_first_name = _text(100)
    patient_last_name = _text(100)
    patient_relationship = fields.String(validate=validate.OneOf([r.value for r in PatientRelationship]))
    patient_dob = UTCDate()
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


class WebFormOut(Schema):
    lead_id = fields.Integer()
    status = fields.String(
        metadata={"description": "created, or already_received for a repeated submission_id"}
    )
