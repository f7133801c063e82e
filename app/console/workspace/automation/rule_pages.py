"""The rules pages (/console/rules): the clinic's rules with when each last fired, a rule with its
versions (the API keeps every version: AutomationRuleVersion), and the builder for a new rule or an
edit. The builder's one form posts the rule (its conditions and actions as JSON, written by the
builder's script or typed with JavaScript off) with what to do: check it, try it on a lead, replay it
over the last 30 days, or save it through the API's create/update service."""

from __future__ import annotations

import json
import re

from flask import jsonify, redirect, render_template, request, url_for

from app.console import forms
from app.console.auth import page
from app.console.story import names_of_clinic
from app.console.workspace.automation import drafts
from app.console.workspace.automation.blueprint import blp
from app.domains.automation import schemas, service, simulation, stats
from app.domains.automation.language.validation import vocabulary
from app.platform import phi_policy
from app.platform.api.injection import inject
from app.platform.db import MAX_ID
from app.platform.errors import NotFound
from app.platform.roles import Permission

SIMULATED_DAYS = 30
_ID = re.compile(r"[0-9]{1,10}", re.ASCII)
STARTER = {"conditions": [], "actions": [{"type": "create_task", "title": "Call the family"}]}


@blp.route("/rules")
@page(Permission.CONFIGURE)
@inject
def rules_list(*, uow, actor, now, wiring):
    seeded = wiring.caches.seeded_clinics
    rules = service.list_rules(session=uow, clinic_id=actor.clinic_id, now=now, seeded=seeded)
    fired = stats.rule_stats(session=uow, clinic_id=actor.clinic_id, start=None, end=None)
    last = {row["rule_id"]: row["last_run_at"] for row in fired}
    return render_template(
        "console/workspace/rules.html",
        rules=rules,
        last=last,
        names=names_of_clinic(session=uow, actor=actor),
    )


@blp.route("/rules/<int:rule_id>")
@page(Permission.CONFIGURE)
@inject
def rule_show(rule_id, *, uow, actor):
    rule = service.get_rule(session=uow, clinic_id=actor.clinic_id, rule_id=rule_id)
    versions = service.rule_versions(session=uow, clinic_id=actor.clinic_id, rule_id=rule_id)
    return render_template(
        "console/workspace/rule.html",
        rule=rule,
        versions=versions,
        names=names_of_clinic(session=uow, actor=actor),
        pretty=_pretty,
    )


@blp.route("/rules/new", methods=["GET", "POST"])
@page(Permission.CONFIGURE)
@inject
def rule_new(*, uow, actor, now):
    return _builder(uow, actor, now, rule=None)


@blp.route("/rules/<int:rule_id>/edit", methods=["GET", "POST"])
@page(Permission.CONFIGURE)
@inject
def rule_edit(rule_id, *, uow, actor, now):
    rule = service.get_rule(session=uow, clinic_id=actor.clinic_id, rule_id=rule_id)
    return _builder(uow, actor, now, rule=rule)


@blp.route("/rules/check", methods=["POST"])
@page(Permission.CONFIGURE)
def rule_check():
    """The builder's check as it is built: the same validation as saving, errors by path."""
    _, errors = drafts.definition_from(request.form)
    return jsonify({"errors": errors})


def _builder(uow, actor, now, *, rule):
    if request.method == "GET":
        draft = _definition_of(rule) if rule else {"trigger": "lead.created", "active": True, **STARTER}
        return _render(draft, {}, rule=rule)
    draft, errors = drafts.definition_from(request.form)
    doing = request.form.get("do", "check")
    if errors or doing == "check":
        return _render(draft, errors, rule=rule, checked=not errors), 422 if errors else 200
    if doing == "save":
        return _save(uow, actor, now, draft, rule)
    candidate = simulation.draft_rule(actor=actor, definition=draft, rule_id=rule.id if rule else None)
    if doing == "simulate":
        answer = simulation.replay(session=uow, actor=actor, rule=candidate, days=SIMULATED_DAYS, now=now)
        uow.rollback()  # a replay writes nothing, not even lazily seeded defaults
        with phi_policy.reading_as(actor):  # the why of a condition on a PHI field, for who may read it
            for match in answer["matched_leads"]:
                match["why"] = schemas.EvaluatedCondition(many=True).dump(match["why"])
        names = names_of_clinic(session=uow, actor=actor)
        return _render(draft, {}, rule=rule, simulated=answer, names=names)
    lead_text = (request.form.get("lead_id") or "").strip()
    if not _ID.fullmatch(lead_text) or int(lead_text) > MAX_ID:
        return _render(draft, {"lead_id": ["pick a lead id to test against"]}, rule=rule), 422
    try:
        answer = simulation.try_definition(
            session=uow, actor=actor, rule=candidate, sample={"lead_id": int(lead_text)}, now=now
        )
    except NotFound:
        return _render(draft, {"lead_id": [f"no lead {lead_text} in this clinic"]}, rule=rule), 422
    uow.rollback()
    with phi_policy.reading_as(
        actor
    ):  # a condition on a PHI field keeps what it saw from who may not read it
        tried = schemas.RuleTestOut().dump(answer)
    names = names_of_clinic(session=uow, actor=actor)
    return _render(draft, {}, rule=rule, tried=tried, lead_id=int(lead_text), names=names)


def _save(uow, actor, now, draft, rule):
    loaded = schemas.RuleCreateIn().load(draft)  # checked already (drafts.check): loads cleanly
    if rule is None:
        rule = service.create_rule(session=uow, actor=actor, data=loaded, now=now)
    else:
        rule = service.update_rule(session=uow, actor=actor, rule_id=rule.id, changes=loaded, now=now)
    return redirect(url_for("console.automation.rule_show", rule_id=rule.id), 303)


def _definition_of(rule) -> dict:
    return {name: getattr(rule, name) for name in service.RULE_FIELDS}


def _render(draft: dict, errors: dict, *, rule, **results):
    return render_template(
        "console/workspace/rule_builder.html",
        rule=rule,
        draft=draft,
        conditions_json=json.dumps(draft.get("conditions", []), indent=1),
        actions_json=json.dumps(draft.get("actions", []), indent=1),
        errors=errors,
        vocabulary=vocabulary(),
        action=forms.ActionForm(),
        pretty=_pretty,
        **results,
    )


def _pretty(value) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)
