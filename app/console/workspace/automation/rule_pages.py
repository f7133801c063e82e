"""The rules pages (/console/rules): the clinic's rules with when each last fired, a rule in words with
its versions (the API keeps every version: AutomationRuleVersion), and the builder for a new rule or
an edit.

The builder is one plain form (drafts.py reads it): pickers for when the rule runs, rows of
conditions, a form for each action, a lead picker by name. Its buttons post what to do: add or
remove a row or an action, or draw the form again for a changed choice (the page's script posts
these in the background and swaps the form in place), find leads by name, check the rule, try it on
the lead chosen, replay it over the last 30 days, or save it through the API's create/update service."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import redirect, render_template, request, url_for

from app.console import forms, wording_rules
from app.console.auth import page
from app.console.wording_rules import Choices
from app.console.workspace.automation import drafts
from app.console.workspace.automation.blueprint import blp
from app.console.workspace.automation.choices import choices_of, find_leads, leads_named
from app.domains.automation import schemas, service, simulation, stats
from app.platform import phi_policy
from app.platform.api.injection import inject
from app.platform.db import MAX_ID
from app.platform.roles import Permission

SIMULATED_DAYS = 30
STARTER = {"trigger": "lead.created", "active": True, "conditions": [], "actions": [dict(drafts.NEW_ACTION)]}
REDRAWS = ("add", "add-group", "remove", "add-action", "remove-action", "redraw")


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
        choices=choices_of(session=uow, actor=actor),
        w=wording_rules,
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
        choices=choices_of(session=uow, actor=actor),
        w=wording_rules,
        d=drafts,
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
@inject
def rule_check(*, uow, actor):
    """The builder's check as it is built: the same validation as saving, each error in words by the
    path of the field it is shown beside; and the rule as it reads now."""
    draft, errors = drafts.definition_from(request.form)
    return {
        "errors": errors,
        "words": wording_rules.rule_sentence(draft, choices_of(session=uow, actor=actor)),
    }


@blp.route("/rules/leads")
@page(Permission.CONFIGURE)
@inject
def rule_leads(*, uow, actor, now):
    """The lead picker's matches for what is typed, as the form's choices (a fragment)."""
    found = find_leads(session=uow, actor=actor, typed=request.args.get("q", ""), now=now)
    return render_template("console/workspace/_lead_choices.html", leads=found, chosen=None, typed=True)


@dataclass
class Builder:
    """The builder's page as posted: the rule edited (None for a new one), the draft, the clinic's
    names for its pickers, and the lead picker (what was typed, the leads found, the one chosen)."""

    rule: object
    draft: dict
    choices: Choices
    picker: dict = field(default_factory=lambda: {"typed": "", "leads": [], "chosen": None})

    def render(self, errors: dict | None = None, status: int = 200, **results):
        html = render_template(
            "console/workspace/rule_builder.html",
            rule=self.rule,
            draft=self.draft,
            errors=errors or {},
            choices=self.choices,
            picker=self.picker,
            w=wording_rules,
            d=drafts,
            action=forms.ActionForm(),
            **results,
        )
        return html, status


def _builder(uow, actor, now, *, rule):
    choices = choices_of(session=uow, actor=actor)
    if request.method == "GET":
        draft = _definition_of(rule) if rule else {**STARTER, "actions": [dict(drafts.NEW_ACTION)]}
        return Builder(rule, draft, choices).render()
    draft, problems = drafts.draft_from(request.form)
    doing = request.form.get("do", "check")
    built = Builder(rule, draft, choices, _picker(uow, actor, now))
    if doing.partition(":")[0] in REDRAWS:
        return built.render(focus=drafts.change(draft, doing))
    if doing == "find":
        return built.render(focus="lead_q")
    errors = drafts.placed(draft, {**drafts.in_words(drafts.check(draft)), **problems})
    if errors or doing not in ("save", "simulate", "test"):
        return built.render(errors, 422 if errors else 200, checked=not errors)
    if doing == "save":
        return _save(uow, actor, now, draft, rule)
    if doing == "simulate":
        return _simulate(uow, actor, now, built)
    return _try(uow, actor, now, built)


def _candidate(actor, built: Builder):
    rule_id = built.rule.id if built.rule else None
    return simulation.draft_rule(actor=actor, definition=built.draft, rule_id=rule_id)


def _simulate(uow, actor, now, built: Builder):
    answer = simulation.replay(
        session=uow, actor=actor, rule=_candidate(actor, built), days=SIMULATED_DAYS, now=now
    )
    uow.rollback()  # a replay writes nothing, not even lazily seeded defaults
    with phi_policy.reading_as(actor):  # the why of a condition on a PHI field, for who may read it
        for match in answer["matched_leads"]:
            match["why"] = schemas.EvaluatedCondition(many=True).dump(match["why"])
    named = leads_named(session=uow, actor=actor, lead_ids=[m["lead_id"] for m in answer["matched_leads"]])
    return built.render(simulated=answer, named=named)


def _picker(uow, actor, now) -> dict:
    """The lead picker as posted: what was typed, the leads it finds, and the one chosen."""
    typed = (request.form.get("lead_q") or "").strip()[:100]
    text = (request.form.get("lead_id") or "").strip()
    chosen = int(text) if text.isdigit() and len(text) < 11 and int(text) <= MAX_ID else None
    found = find_leads(session=uow, actor=actor, typed=typed, now=now) if typed else []
    if chosen is not None and all(lead["id"] != chosen for lead in found):
        found = list(leads_named(session=uow, actor=actor, lead_ids=[chosen]).values()) + found
    return {"typed": typed, "leads": found, "chosen": chosen}


def _try(uow, actor, now, built: Builder):
    chosen = built.picker["chosen"]
    lead = next((lead for lead in built.picker["leads"] if lead["id"] == chosen), None)
    if lead is None:  # none chosen, or not one of the clinic's live leads
        return built.render({"lead_id": ["Find the lead by name, then choose it."]}, 422)
    answer = simulation.try_definition(
        session=uow, actor=actor, rule=_candidate(actor, built), sample={"lead_id": chosen}, now=now
    )
    uow.rollback()
    with phi_policy.reading_as(
        actor
    ):  # a condition on a PHI field keeps what it saw from who may not read it
        tried = schemas.RuleTestOut().dump(answer)
    return built.render(tried=tried, tried_lead=lead)


def _save(uow, actor, now, draft, rule):
    loaded = schemas.RuleCreateIn().load(draft)  # checked already (drafts.check): loads cleanly
    if rule is None:
        rule = service.create_rule(session=uow, actor=actor, data=loaded, now=now)
    else:
        rule = service.update_rule(session=uow, actor=actor, rule_id=rule.id, changes=loaded, now=now)
    return redirect(url_for("console.automation.rule_show", rule_id=rule.id), 303)


def _definition_of(rule) -> dict:
    return {name: getattr(rule, name) for name in service.RULE_FIELDS}
