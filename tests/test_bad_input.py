"""Bad input anywhere is a 4xx naming the field (or an empty page), never a 500: extreme datetimes,
NUL characters, lone surrogates, integers beyond the database's columns, absurd page numbers."""

from __future__ import annotations

import json

import pytest

from tests.leadkit import create_lead, signed_headers
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


# --- issue 42: inputs that answered 500 -------------------------------------------------------


@pytest.mark.parametrize("token", ["%C2%B2", "1.%C3%A9", f"{HUGE}.{'0' * 32}", "%C2%B2.0123456789abcdef"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_malformed_unsubscribe_token_is_a_clear_page_not_a_500(client, token, method):
    resp = client.open(f"/api/unsubscribe/{token}", method=method, data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 404, resp.get_data(as_text=True)
    assert resp.mimetype == "text/html" and "This unsubscribe link is not valid" in resp.get_data(
        as_text=True
    )


@pytest.mark.parametrize("path", ["/api/capture/web-form", "/api/capture/inbound", "/api/capture/call"])
@pytest.mark.parametrize("signature", ["é" * 64, "sha256=²", "\u00ff"])
def test_a_non_ascii_signature_is_a_401_naming_the_header(client, tenant, path, signature):
    body = json.dumps({"email": "jane@example.com"}).encode()
    headers = signed_headers(tenant.clinic, body) | {"X-Followup-Signature": signature}
    resp = client.post(path, data=body, headers=headers)
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert "X-Followup-Signature" in resp.get_json()["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:99999/",
        "http://a..b/",
        "http://[::1/",
        "http://[zz]/hook",
        "http://example.com:0/",
        "http://exa mple.com/",
        "http://example.com/caf\u00e9",
        f"http://{'a' * 64}.example.com/",
    ],
)
def test_a_webhook_url_that_cannot_be_reached_is_a_422_naming_url(client, tenant, url):
    resp = client.post(
        "/api/webhooks", json={"url": url, "event_types": ["lead.created"]}, headers=tenant.headers()
    )
    assert resp.status_code == 422, (url, resp.get_json())
    assert "url" in resp.get_json()["errors"]["json"], resp.get_json()


@pytest.mark.parametrize(
    "path, field",
    [
        ("/console/bulk-jobs/progress?ids=%C2%B2", "ids"),
        ("/console/bulk-jobs/progress?ids=1,%C2%B2", "ids"),
        (f"/console/bulk-jobs/progress?ids={HUGE}", "ids"),
        ("/console/failures?until=9999-12-31", "until"),
        ("/console/failures/retry?until=9999-12-31", "until"),
        ("/console/failures?since=0001-01-01", "since"),
        ("/console/failures?source=jobs&until=9999-12-31", "until"),
    ],
)
def test_console_ids_and_dates_out_of_range_are_a_422_naming_the_field(app, tenant, path, field):
    from tests.console.test_console_pages import log_in

    with app.test_client() as console:
        log_in(console, tenant)
        resp = console.get(path)
    assert resp.status_code == 422, (path, resp.status_code)
    assert field in resp.get_data(as_text=True)


BOOLEAN_CASES = [
    ("PUT", "/api/pipeline-stages/{stage}", "is_default"),
    ("PUT", "/api/pipeline-stages/{stage}", "is_terminal"),
    ("POST", "/api/lead-sources", "is_active"),
    ("POST", "/api/leads", "email_opt_out"),
    ("POST", "/api/notifications/1/retry", "confirm_may_duplicate"),
]


@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
@pytest.mark.parametrize("method, path, field", BOOLEAN_CASES)
def test_a_boolean_field_takes_only_true_or_false(client, tenant, method, path, field, value):
    stages = client.get("/api/pipeline-stages", headers=tenant.headers()).get_json()
    stage = next(s for s in stages if not s["is_terminal"])
    resp = client.open(
        path.format(stage=stage["id"]), method=method, json={field: value}, headers=tenant.headers()
    )
    assert resp.status_code == 422, (path, field, value, resp.get_json())
    assert field in resp.get_json()["errors"]["json"], resp.get_json()


def test_a_query_string_boolean_is_still_the_text_true_or_false(client, tenant):
    h = tenant.headers()
    assert client.get("/api/lead-sources?is_active=false", headers=h).status_code == 200
    assert client.get("/api/leads/tasks/my-tasks?overdue=TRUE", headers=h).status_code == 200
    for text in ("1", "0", "yes"):
        resp = client.get(f"/api/leads/tasks/my-tasks?overdue={text}", headers=h)
        assert resp.status_code == 422 and "overdue" in resp.get_json()["errors"]["query"], text


# Addresses marshmallow's pattern takes but an SMTP relay refuses for good (a permanent failure
# after the lead was already saved and the automation planned its emails).
UNDELIVERABLE = [
    "user@localhost",
    "user@[127.0.0.1]",
    "ünï@example.com",
    '"quoted"@example.com',
    "x@clinic.test",
]


@pytest.mark.parametrize("address", UNDELIVERABLE)
def test_an_address_smtp_would_refuse_is_a_422_naming_email_at_capture_and_user_creation(
    client, tenant, address
):
    lead = {"first_name": "Ana", "last_name": "Lima", "phone": "+14155550101", "email": address}
    captured = client.post("/api/leads", json=lead, headers=tenant.headers())
    assert captured.status_code == 422 and "email" in captured.get_json()["errors"]["json"], (
        captured.get_json()
    )
    user = {"email": address, "name": "Bo", "role": "treatment_coordinator"}
    created = client.post("/api/users", json=user, headers=tenant.headers())
    assert created.status_code == 422 and "email" in created.get_json()["errors"]["json"], created.get_json()
    assert client.get("/api/leads", headers=tenant.headers()).get_json() == []  # nothing half-written
