"""Quick entry (/console/leads/new): a phone call's lead typed with the keyboard alone. The possible
duplicates show while typing (GET .../duplicates, the capture's own duplicate finder); the save carries
an idempotency key made when the form is rendered, so a double submit makes one lead; field errors sit
beside their fields; a saved lead opens on its page (with the call task the engine gives it)."""

from __future__ import annotations

import json
import uuid

from flask import Blueprint, render_template, request, url_for
from flask import redirect as go_to

from app.console.auth import page
from app.console.wording import PATIENT_WORDS, RELATIONSHIPS
from app.console.workspace import intake
from app.domains.leads import service as leads
from app.domains.leads.models import TreatmentInterest
from app.platform.api.injection import inject
from app.platform.app_db import get_db
from app.platform.errors import DomainError, ValidationFailed
from app.platform.idempotency import service as keys
from app.platform.roles import Permission

blp = Blueprint("quick_entry", __name__)
SHOWN_DUPLICATES = 5
SAVED_ALREADY = "This form was saved already as another lead. Check the values and save again for a new lead."
# A call is most often a parent's for a child: the patient section's first choice.
QUICK_RELATIONSHIPS = ("CHILD", "SELF", "SPOUSE", "OTHER")
INTERESTS = [(t.value, t.value.replace("_", " ").capitalize()) for t in TreatmentInterest]


def _render(*, uow, actor, values: dict, errors: dict, status: int = 200):
    return render_template(
        "console/workspace/quick_entry.html",
        values=values,
        errors=errors,
        sources=intake.source_choices(session=uow, actor=actor),
        interests=INTERESTS,
        relationships=[(code, RELATIONSHIPS[code]) for code in QUICK_RELATIONSHIPS],
        patient_words=PATIENT_WORDS,
        key=values.get("idempotency_key") or str(uuid.uuid4()),
    ), status


@blp.route("/leads/new")
@page(Permission.CREATE)
@inject
def new_lead(*, uow, actor):
    return _render(uow=uow, actor=actor, values={}, errors={})


@blp.route("/leads/new", methods=["POST"])
@page(Permission.CREATE)
@inject
def save_lead(*, actor, now):
    values = {**request.form.to_dict(), "treatment_interest": request.form.getlist("treatment_interest")}
    data, errors = intake.field_errors(intake.lead_fields(request.form))
    key = (request.form.get("idempotency_key") or "").strip()
    if not key:
        errors["idempotency_key"] = ["missing: reload the form"]
    if not errors:
        # What the key stands for: the lead as typed (the same form sent again is the same lead).
        typed = json.dumps(intake.lead_fields(request.form), sort_keys=True).encode()
        digest = keys.request_hash(method="POST", path=request.path, body=typed)
        submission = intake.Submission(actor=actor, key=key, path=request.path, digest=digest, data=data)
        try:
            lead_id = intake.capture_once(db=get_db(), submission=submission, now=now)
        except ValidationFailed as error:
            errors = intake.form_errors(error.errors.get("json", {}))
            if "headers" in error.errors:  # this form was saved already, with other values
                errors = {"form": [SAVED_ALREADY]}
                values.pop("idempotency_key", None)  # a fresh key: what is typed now is another lead
            errors = errors or {"form": [error.message]}
        else:
            return go_to(url_for("console.lead_page.show", lead_id=lead_id), code=303)
    with get_db().unit_of_work() as uow:
        return _render(uow=uow, actor=actor, values=values, errors=errors, status=422)


@blp.route("/leads/new/duplicates")
@page(Permission.CREATE)
@inject
def duplicates(*, uow, actor, now):
    """The open leads what is typed so far may be (an HTML fragment the form shows as you type)."""
    typed = {name: request.args.get(name, "")[:254] for name in intake.PROBED}
    found = intake.possible_duplicates(session=uow, actor=actor, typed=typed, now=now)
    shown = []
    for match in found[:SHOWN_DUPLICATES]:
        try:
            lead = leads.get_lead(session=uow, clinic_id=actor.clinic_id, lead_id=match["lead_id"])
        except DomainError:
            continue
        shown.append({**match, "name": f"{lead.first_name} {lead.last_name}"})
    return render_template(
        "console/workspace/_duplicates.html", duplicates=shown, more=len(found) - len(shown)
    )
