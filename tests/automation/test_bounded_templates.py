"""Merge-field texts are bounded: a text that would render hundreds of megabytes, loop or call is a
422 when it is saved (rule or sequence), and rendering a stored text never goes past the bounds."""

from __future__ import annotations

import pytest
from jinja2 import TemplateError

from app.domains.lead_messages import merge_fields

BOMBS = [
    "{{ 'x' * 200000000 }}",
    "{{ first_name * 200000000 }}",
    "{% for a in 'xxxxxxxxxx' %}{% for b in 'xxxxxxxxxx' %}{{ a }}{% endfor %}{% endfor %}",
    "{{ first_name.ljust(200000000) }}",
    "{{ lipsum(100000) }}",
    "{{ 9 ** 9 ** 9 }}",
    "{{ '%0200000000d' % 1 }}",
    "{{ first_name | center(200000000) }}",
    "x" * (merge_fields.MAX_TEMPLATE_LENGTH + 1),
]


def _email_rule(body: str) -> dict:
    action = {"type": "send_email", "subject": "Hello", "body": body}
    return {"name": "Bomb", "trigger": "lead.created", "actions": [action]}


@pytest.mark.parametrize("text", BOMBS)
def test_an_unbounded_text_in_a_rule_is_a_422_at_save_time(client, tenant, text):
    resp = client.post("/api/follow-up-rules", json=_email_rule(text), headers=tenant.headers())
    assert resp.status_code == 422, resp.get_json()
    assert "body" in resp.get_json()["errors"]["json"]["actions"]["0"]


@pytest.mark.parametrize("text", BOMBS)
def test_an_unbounded_text_in_a_sequence_is_a_422_at_save_time(client, tenant, text):
    step = {"delay": {"amount": 1, "unit": "days"}, "channel": "email", "subject": "Hi", "body": text}
    resp = client.post("/api/sequences", json={"name": "Bomb", "steps": [step]}, headers=tenant.headers())
    assert resp.status_code == 422, resp.get_json()
    assert "body" in resp.get_json()["errors"]["json"]["steps"]["0"]


def test_notify_and_task_texts_are_checked_too(client, tenant):
    bomb = "{{ 'x' * 200000000 }}"
    actions = [
        {"type": "notify", "title": bomb, "lead_owner": True},
        {"type": "create_task", "title": bomb},
    ]
    resp = client.post(
        "/api/follow-up-rules",
        json={"name": "Bomb", "trigger": "lead.created", "actions": actions},
        headers=tenant.headers(),
    )
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]["json"]["actions"]
    assert "title" in errors["0"] and "title" in errors["1"]


def test_ordinary_merge_texts_still_save_and_render(client, tenant):
    text = "Hi {{ first_name | title }}{% if stage %}, about {{ stage }}{% endif %} - {{ clinic_name }}"
    resp = client.post("/api/follow-up-rules", json=_email_rule(text), headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    assert merge_fields.merge(text, {"first_name": "ada", "clinic_name": "Smile"}) == "Hi Ada - Smile"


def test_rendering_a_stored_text_that_breaks_the_bounds_fails_small():
    # A text stored before the bounds existed: merging it is refused, never rendered unbounded.
    for text in BOMBS:
        with pytest.raises(TemplateError):
            merge_fields.merge(text, {"first_name": "Ada"})
    long_value = {"first_name": "x" * (merge_fields.MAX_RENDERED_LENGTH + 1)}
    with pytest.raises(TemplateError):
        merge_fields.merge("{{ first_name }}", long_value)
