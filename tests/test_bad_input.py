"""Bad input anywhere is a 4xx naming the field (or an empty page), never a 500: extreme datetimes,
NUL characters, lone surrogates, integers beyond the database's columns, absurd page numbers."""

from __future__ import annotations

import json

import pytest

from tests.leadkit import create_lead
from tests.tasks.taskkit import in_minutes, iso

HUGE = 10**12  # beyond PostgreSQL's 32-bit `integer`


@pytest.fixture
def task(client, tenant):
    lead = create_lead(client, tenant)
    body = {"title": "Call back", "type": "CALL", "due_at": iso(in_minutes(60))}
    resp = client.post(f"/api/leads/{lead['id']}/tasks", json=body, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _post_raw(client, method, path, text, headers):
    return client.open(path, method=method, data=text, content_type="application/json", headers=headers)


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0719-02-20T04:57:59Z"]
)
def test_extreme_datetimes_are_a_422_on_task_create_update_and_snooze(client, tenant, task, when):
    h = tenant.headers()
    cases = [
        (
            "POST",
            f"/api/leads/{task['lead_id']}/tasks",
            {"title": "x", "type": "CALL", "due_at": when},
            "due_at",
        ),
        ("PUT", f"/api/leads/tasks/{task['id']}", {"due_at": when}, "due_at"),
        ("POST", f"/api/leads/tasks/{task['id']}/snooze", {"until": when}, "until"),
        ("GET", f"/api/leads/tasks/my-tasks?due_from={when.replace('+', '%2B')}", None, "due_from"),
        ("POST", "/api/follow-up-rules/1/test", {"occurred_at": when}, "occurred_at"),
    ]
    for method, path, body, field in cases:
        resp = client.open(path, method=method, json=body, headers=h)
        if path.startswith("/api/follow-up-rules") and resp.status_code == 404:
            continue  # no rule 1 in this clinic: the body is not what was refused
        assert resp.status_code == 422, (path, resp.get_json())
        location = "query" if method == "GET" else "json"
        assert field in resp.get_json()["errors"][location], (path, resp.get_json())


def test_integers_beyond_the_columns_are_a_422_naming_the_field(client, tenant, task):
    h = tenant.headers()
    lead_tasks = f"/api/leads/{task['lead_id']}/tasks"
    cases = [
        ("POST", lead_tasks, {"template_id": HUGE}, "template_id"),
        (
            "POST",
            lead_tasks,
            {"title": "x", "type": "CALL", "due_in_minutes": 5, "assigned_to_id": HUGE},
            "assigned_to_id",
        ),
        ("PUT", f"/api/leads/tasks/{task['id']}", {"assigned_to_id": HUGE}, "assigned_to_id"),
        ("POST", "/api/follow-up-rules", _rule(actions=[{"type": "assign", "user_id": HUGE}]), "actions"),
        (
            "POST",
            "/api/follow-up-rules",
            _rule(actions=[{"type": "create_task", "template_id": HUGE}]),
            "actions",
        ),
        (
            "POST",
            "/api/follow-up-rules",
            _rule(actions=[{"type": "enroll_sequence", "sequence_id": HUGE}]),
            "actions",
        ),
        ("PUT", "/api/users/1", {"max_open_leads": HUGE}, "max_open_leads"),
    ]
    for method, path, body, field in cases:
        resp = client.open(path, method=method, json=body, headers=h)
        assert resp.status_code == 422, (path, body, resp.get_json())
        assert field in resp.get_json()["errors"]["json"], (path, resp.get_json())
    for path in (f"/api/jobs?subject=lead:{HUGE}", "/api/jobs?subject=lead:%C2%B2"):
        resp = client.get(path, headers=h)
        assert resp.status_code == 422 and "subject" in resp.get_json()["errors"]["query"], path


def _rule(**fields):
    return {
        "name": "r",
        "trigger": "lead.created",
        "actions": [{"type": "suggest", "suggestion": "call"}],
        **fields,
    }


def test_nul_characters_and_lone_surrogates_are_a_422_naming_the_field(client, tenant, task):
    h = tenant.headers()
    lead_tasks = f"/api/leads/{task['lead_id']}/tasks"
    for bad in ("\x00", "\ud800", "a\udfffb"):
        cases = [
            ("POST", lead_tasks, {"title": bad, "type": "CALL", "due_in_minutes": 5}, "title"),
            ("POST", f"/api/leads/tasks/{task['id']}/complete", {"notes": bad}, "notes"),
            ("POST", "/api/leads", {"first_name": bad, "last_name": "B"}, "first_name"),
            ("POST", "/api/task-templates", {"name": bad, "title": "t", "type": "CALL"}, "name"),
            ("PUT", "/api/clinic", {"name": bad}, "name"),
            ("POST", "/api/follow-up-rules", _rule(name=bad), "name"),
            ("POST", "/api/follow-up-rules", {**_rule(), bad: 1}, "_schema"),
        ]
        for method, path, body, field in cases:
            # json.dumps escapes a lone surrogate as \\ud800: valid JSON that Python parses back into one.
            resp = _post_raw(client, method, path, json.dumps(body), h)
            assert resp.status_code == 422, (path, repr(bad), resp.get_json())
            assert field in resp.get_json()["errors"]["json"], (path, resp.get_json())


def test_a_page_far_beyond_the_end_is_an_empty_page_everywhere(client, tenant, task):
    h = tenant.headers()
    hook = client.post(
        "/api/webhooks", json={"url": "http://127.0.0.1:9/hook", "event_types": ["lead.created"]}, headers=h
    ).get_json()
    paths = [
        "/api/jobs",
        "/api/leads/tasks/my-tasks",
        "/api/leads/tasks/overdue",
        f"/api/leads/{task['lead_id']}/tasks",
        "/api/me/notifications",
        "/api/notifications",
        f"/api/webhooks/{hook['id']}/deliveries",
    ]
    for path in paths:
        for page in (10**18, 10**30):
            resp = client.get(f"{path}?page={page}", headers=h)
            assert (resp.status_code, resp.get_json()) == (200, []), (path, page, resp.get_json())
