"""The rule language in the clinic's words (app/console/wording_rules.py): every trigger, field,
operator, group, action, unit and wait the engine knows has a label (and help), so a new one cannot
reach the builder unnamed; no page of rules or sequences shows staff an identifier or JSON (each page
rendered, its visible text and labels read); a lead's why-trail says its conditions in the same
words; and the docs' table of the builder's words is the vocabulary's own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from app.console import wording_rules as w
from app.devtools import rule_words_doc
from app.domains.automation import rules
from app.domains.automation.language.triggers import TRIGGERS
from app.domains.sequences import graph
from tests.console.rule_forms import form_fields, visible_text
from tests.console.test_console_pages import log_in
from tests.console.test_rule_pages import PRICE_GUIDE, _form
from tests.leadkit import create_lead

ROOT = Path(__file__).resolve().parents[2]
# The rule language's own names: none may reach a person (those that are English words, like `equals`,
# `in` or `suggest`, are left out; their labels are checked by the vocabulary's test).
IDENTIFIERS = sorted(
    {
        *TRIGGERS,
        *rules.FIELDS,
        *(op for op in rules.OPERATORS if "_" in op),
        *(kind for kind in rules.ACTION_TYPES if "_" in kind),
        *(unit for unit in rules.DELAY_UNITS if "_" in unit),
        *(event for event in graph.WAIT_EVENTS if "_" in event),
        *(kind for kind in rules.ASSIGNEES if "_" in kind),
    },
    key=len,
    reverse=True,
)
JSON = re.compile(r'[\[{]\s*"|"\s*:\s*[\[{"0-9tfn]')


def test_every_word_of_the_rule_language_has_a_label_and_help():
    assert set(w.TRIGGERS) == set(TRIGGERS)
    assert set(w.FIELDS) == set(rules.FIELDS)
    assert set(w.OPERATORS) == set(rules.OPERATORS)
    assert set(w.GROUPS) == set(rules.GROUPS)
    assert set(w.ACTIONS) == set(rules.ACTION_TYPES)
    assert set(w.UNITS) == set(rules.DELAY_UNITS)
    assert set(w.WAIT_EVENTS) == {*graph.WAIT_EVENTS, graph.TIMEOUT}
    for table in (w.TRIGGERS, w.OPERATORS, w.GROUPS, w.ACTIONS, w.UNITS, w.WAIT_EVENTS):
        for key, word in table.items():
            assert word.label and word.help, key
            if "_" in key or "." in key:  # an identifier, not an English word like "contains"
                assert key not in word.label and key not in word.help, key
    for key, word in w.FIELDS.items():
        assert word.label and word.kind in ("text", "number", "yes_no", "choice"), key
        assert word.kind != "choice" or word.values in (
            *w.VALUES,
            "stages",
            "sources",
            "users",
            "triggers",
            "fields",
        )
    assert all(w.TRIGGERS[t].happened for t in TRIGGERS)
    # Each field offers the operators that make sense for it, and every operator is offered somewhere.
    assert {op for kind in w.BY_KIND.values() for op in kind} == set(rules.OPERATORS)


def test_sentences_say_a_rule_as_a_person_would():
    choices = w.Choices(names=w.Names(zone=None, users={7: "Maria Lopez"}, stages={"lost": "Lost"}))
    rule = {
        "trigger": "lead.created",
        "conditions": [
            {"any": [{"field": "lead.city", "operator": "in", "value": ["Oakland", "Berkeley"]}]},
            {"field": "lead.email", "operator": "exists", "value": False},
            {"field": "lead.priority", "operator": "not_equals", "value": "urgent"},
        ],
        "actions": [
            {"type": "create_task", "title": "Call them", "assignee": {"kind": "user", "user_id": 7},
             "delay": {"amount": 1, "unit": "business_days"}},
            {"type": "update_stage", "stage": "lost", "reason": "NOT_READY"},
        ],
    }  # fmt: skip
    assert w.rule_sentence(rule, choices) == (
        "When a new lead comes in, if (City is one of “Oakland” or “Berkeley”) and Email address is empty "
        "and Priority is not Urgent: create a task “Call them” (call) for Maria Lopez, due 1 business day "
        "later; then move the lead to Lost (not ready)."
    )
    assert w.replay_sentence({"days": 30, "events_considered": 4, "events_matched": 2,
                              "totals": {"create_task": 2, "send_sms": 1}}, "lead.stage_changed") == (
        "In the last 30 days a lead moved to another stage 4 times: this rule would have matched 2 of them "
        "and made 2 tasks and 1 text."
    )  # fmt: skip
    assert w.problem("actions.0.delay", "unknown unit 'weeks'; known: minutes, ...") == (
        "A whole number from 0 to 525,600, and a unit."
    )
    assert w.where("conditions.0.any.1.value") == "Condition 1.2" and w.where("actions.2.title") == "Action 3"


def _visible_problems(html: str) -> list[str]:
    text = visible_text(html)
    said = [name for name in IDENTIFIERS if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text)]
    return said + [f"JSON: {m.group(0)!r}" for m in JSON.finditer(text)]


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def test_no_rules_or_sequences_page_shows_an_identifier_or_json(console, client, tenant):
    admin = tenant.headers("clinic_admin")
    sequence = client.post("/api/sequences", json=PRICE_GUIDE, headers=admin).get_json()
    create_lead(client, tenant, first_name="Ana", last_name="Ruiz", city="Oakland")
    lead = create_lead(client, tenant, first_name="Anabel", last_name="Li", city="Fresno")
    log_in(console, tenant, role="clinic_admin")
    rule_ids = [r["id"] for r in client.get("/api/follow-up-rules", headers=admin).get_json()]
    pages = {
        "/console/rules": console.get("/console/rules"),
        "/console/rules/new": console.get("/console/rules/new"),
        "/console/sequences": console.get("/console/sequences"),
        "sequence": console.get(f"/console/sequences/{sequence['id']}"),
        **{f"rule {i}": console.get(f"/console/rules/{i}") for i in rule_ids},
        **{f"edit {i}": console.get(f"/console/rules/{i}/edit") for i in rule_ids},
        "find": console.post(
            "/console/rules/new", data=_form(console, "/console/rules/new", "find", {"lead_q": "an"})
        ),
        "try": console.post(
            "/console/rules/new",
            data=_form(console, "/console/rules/new", "test", {"lead_q": "Li", "lead_id": str(lead["id"])}),
        ),
        "replay": console.post("/console/rules/new", data=_form(console, "/console/rules/new", "simulate")),
        "wrong": console.post(
            "/console/rules/new", data=_form(console, "/console/rules/new", "save", {"name": ""})
        ),
    }
    every_action = MultiDict(
        [*_form(console, "/console/rules/new", "redraw").items(multi=True)]
        + [(f"actions.{i}.type", kind) for i, kind in enumerate(rules.ACTION_TYPES) if i]
    )
    pages["every action"] = console.post("/console/rules/new", data=every_action)
    for label, answer in pages.items():
        assert answer.status_code in (200, 422), label
        assert _visible_problems(answer.get_data(as_text=True)) == [], label
    assert f"Action {len(rules.ACTION_TYPES)}: what to do" in visible_text(
        pages["every action"].get_data(as_text=True)
    )
    # The check's answer, which the page's script shows, is words too.
    data = _form(console, "/console/rules/new", "check", {"name": "", "conditions.0.field": "lead.nope"})
    answer = console.post("/console/rules/check", data=data).get_json()
    assert (
        _visible_problems(" ".join(m for ms in answer["errors"].values() for m in ms) + answer["words"]) == []
    )


def test_a_leads_why_trail_says_its_rules_conditions_in_words(app, db, client, tenant):
    from tests.webhooks.test_webhooks import process_events

    lead = create_lead(client, tenant, first_name="Ana", last_name="Ruiz", city="Oakland")
    process_events(app, db)  # the default rules act on lead.created: speed to lead, and why
    with app.test_client() as console:
        log_in(console, tenant, role="clinic_admin")
        html = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    said = visible_text(html.split('<section id="automation"')[1].split("</section>")[0])
    assert "Priority is not Urgent: it is Normal, so this holds." in said
    assert "Made a call task" in said and "when a new lead comes in" in said
    assert "lead.priority" not in said and "not_equals" not in said and "create_task" not in said


def test_the_docs_table_of_the_builders_words_is_the_vocabularys_own():
    page = (ROOT / rule_words_doc.DOC_PATH).read_text()
    assert rule_words_doc.rewritten(page) == page, "stale: run make rule-words-doc"
    assert "| A new lead comes in | `lead.created` |" in page
    assert "| business minutes | `business_minutes` | Counted only while the clinic is open. |" in page


def test_the_form_fields_reader_reads_what_a_browser_posts():
    html = (
        '<form id="f"><input name="a" value="1"><input type="checkbox" name="b" value="x" checked>'
        '<input type="checkbox" name="b" value="y"><select name="c"><option value="p">P</option>'
        '<option value="q" selected>Q</option></select><textarea name="d">\nhi</textarea>'
        '<input type="hidden" name="csrf_token" value="t"></form>'
    )
    assert form_fields(html, "f") == [("a", "1"), ("b", "x"), ("c", "q"), ("d", "hi"), ("csrf_token", "t")]
