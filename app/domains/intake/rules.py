"""The mapping of a web form to a lead (its signature: app/domains/auth/signing.py). Pure: no I/O, no
clock."""

from __future__ import annotations

from app.domains.leads.models import LeadSourceCategory, PatientRelationship
from app.domains.leads.rules import split_full_name

PAID_MEDIUMS = (
    "cpc",
    "ppc",
    "paid",
    "paidsearch",
    "paid_search",
    "paid-search",
    "paid_social",
    "paid-social",
)
PAID_MEDIUMS += ("cpm", "display", "banner", "ads")
UTM_MEDIUM_CATEGORIES = {
    **dict.fromkeys(PAID_MEDIUMS, LeadSourceCategory.WEB_PAID),
    **dict.fromkeys(("social", "social-media", "social_media", "socialmedia"), LeadSourceCategory.WEB_SOCIAL),
    **dict.fromkeys(("organic", "seo", "organic_search", "organic-search"), LeadSourceCategory.WEB_ORGANIC),
}


def utm_category(medium: str | None) -> LeadSourceCategory | None:
    """The source category a utm_medium stands for (cpc/paid → WEB_PAID, social, organic)."""
    if not medium:
        return None
    return UTM_MEDIUM_CATEGORIES.get(medium.strip().lower())


# Form fields that are lead fields under the same name.
COPIED_FIELDS = (
    "email",
    "phone",
    "preferred_contact",
    "preferred_time",
    "insurance_carrier",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "patient_dob",
    "treatment_interest",
    "priority",
)


def form_to_lead(form: dict) -> dict:
    """Lead fields from a web form (see WebFormIn for the accepted fields)."""
    first, last = form.get("first_name"), form.get("last_name")
    if form.get("name") and not (first or last):
        first, last = split_full_name(form["name"])
    data: dict = {"first_name": first or "", "last_name": last or ""}
    for key in COPIED_FIELDS:
        if form.get(key) is not None:
            data[key] = form[key]
    patient_first, patient_last = form.get("patient_first_name"), form.get("patient_last_name")
    child = form.get("child_name") or form.get("patient_name")
    if child and not (patient_first or patient_last):
        patient_first, patient_last = split_full_name(child)
        if not patient_last:
            patient_last = data["last_name"]  # "Child's name: Emma" from Jane Doe → Emma Doe
    if patient_first or patient_last:
        data["patient_first_name"] = patient_first
        data["patient_last_name"] = patient_last
    relationship = form.get("patient_relationship")
    if relationship is None and form.get("child_name"):
        relationship = PatientRelationship.CHILD.value
    elif relationship is None and (patient_first or patient_last):
        same = (patient_first or "", patient_last or "") == (data["first_name"], data["last_name"])
        relationship = PatientRelationship.SELF.value if same else PatientRelationship.OTHER.value
    if relationship is not None:
        data["patient_relationship"] = relationship
    notes = form.get("message")
    if notes:
        data["notes"] = notes
    if form.get("utm_campaign"):
        data["source_campaign"] = form["utm_campaign"]
    detail = [
        f"{key}={form[key]}"
        for key in ("source", "utm_source", "utm_medium", "utm_term", "utm_content", "page_url", "referrer")
        if form.get(key)
    ]
    if detail:
        data["source_detail"] = "; ".join(detail)[:500]
    return data
