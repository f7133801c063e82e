"""A call is logged one way wherever it is logged (issue 74 item 4): Today, the lead page, the API's
task completion with a call's outcome and the activities endpoint each leave a PHONE_CALL activity
with the outcome and notes, and the call task completed with it; every seed outcome is offered on
the pages; a callback's time and a lost reason are kept; `converted` needs lead:convert."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.platform import clock
from tests.auth.test_api_keys import create_key
from tests.automation.kit import run_events
from tests.console.test_console_pages import csrf_of, log_in
from tests.tasks.taskkit import iso, lead_for

SEED_OUTCOMES = (
    "spoke", "voicemail", "no_answer", "wrong_number", "callback_requested", "not_interested", "converted",
)  # fmt: skip
NOTES = "Left a message about Diego's retainer"


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def call_task(client, tenant, lead_id: int, kind: str = "CALL") -> dict:
    body = {
        "title": "Call back",
        "type": kind,
        "due_at": "2020-01-01T09:00:00Z",
        "assigned_to_id": tenant.users["treatment_coordinator"].id,
    }
    answer = client.post(f"/api/leads/{lead_id}/tasks", json=body, headers=tenant.headers("clinic_admin"))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def calls_of(client, tenant, lead_id: int) -> list[tuple]:
    timeline = client.get(f"/api/leads/{lead_id}/activities", headers=tenant.headers()).get_json()
    return [(a["direction"], a["outcome"], a["notes"]) for a in timeline if a["type"] == "PHONE_CALL"]


def task_now(client, tenant, task_id: int) -> tuple:
    task = client.get(f"/api/leads/tasks/{task_id}", headers=tenant.headers()).get_json()
    return task["status"], task["outcome"]


def test_a_call_leaves_the_same_records_wherever_it_is_logged(app, client, console, tenant):
    leads = {way: lead_for(client, tenant) for way in ("today", "lead page", "task api", "timeline")}
    tasks = {way: call_task(client, tenant, lead["id"]) for way, lead in leads.items()}
    log_in(console, tenant, "treatment_coordinator")
    token = csrf_of(console.get("/console/today").get_data(as_text=True))
    form = {"csrf_token": token, "outcome": "voicemail", "notes": NOTES}
    today = console.post(f"/console/today/calls/{tasks['today']['id']}", data=form)
    assert today.status_code == 303, today.get_data(as_text=True)
    lead_id, task_id = leads["lead page"]["id"], tasks["lead page"]["id"]
    page = console.post(f"/console/leads/{lead_id}/tasks/{task_id}/complete", data=form)
    assert page.status_code in (302, 303), page.get_data(as_text=True)
    api = client.post(
        f"/api/leads/tasks/{tasks['task api']['id']}/complete",
        json={"outcome": "voicemail", "notes": NOTES},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert api.status_code == 200, api.get_json()
    body = {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "voicemail", "notes": NOTES}
    logged = client.post(
        f"/api/leads/{leads['timeline']['id']}/activities",
        json=body,
        headers=tenant.headers("treatment_coordinator"),
    )
    assert logged.status_code == 201, logged.get_json()
    run_events(app, leads["timeline"]["id"], clock.now())  # the call's event ends the call task that was due
    for way, lead in leads.items():
        assert calls_of(client, tenant, lead["id"]) == [("OUTBOUND", "voicemail", NOTES)], way
        assert task_now(client, tenant, tasks[way]["id"]) == ("COMPLETED", "no_answer"), way


def test_every_seed_outcome_is_offered_where_calls_are_logged(client, console, tenant):
    lead = lead_for(client, tenant)
    task = call_task(client, tenant, lead["id"])
    log_in(console, tenant, "treatment_coordinator")
    lead_page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    today = console.get(f"/console/today?call={task['id']}").get_data(as_text=True)
    for outcome in SEED_OUTCOMES:
        assert f'value="{outcome}"' in lead_page, outcome
    # Today offers the call the coordinator holds: take it, then every outcome has its key.
    token = csrf_of(today)
    taken = console.post("/console/today/next-call", data={"csrf_token": token})
    held = console.get(taken.headers["Location"]).get_data(as_text=True)
    for key, outcome in enumerate(SEED_OUTCOMES, start=1):
        assert f'value="{outcome}" data-key="{key}"' in held, outcome


def test_a_callback_asked_for_a_time_is_due_then_and_a_reason_given_is_the_leads(app, client, tenant):
    asked = (clock.now() + timedelta(days=2)).replace(hour=15, minute=30, second=0, microsecond=0)
    lead = lead_for(client, tenant)
    task = call_task(client, tenant, lead["id"])
    answer = client.post(
        f"/api/leads/tasks/{task['id']}/complete",
        json={"outcome": "callback_requested", "callback_at": iso(asked)},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert answer.status_code == 200, answer.get_json()
    run_events(app, lead["id"], clock.now())
    open_tasks = client.get(f"/api/leads/{lead['id']}/tasks", headers=tenant.headers()).get_json()
    [callback] = [t for t in open_tasks if t["title"] == "Return the requested callback"]
    assert callback["type"] == "CALL" and callback["due_at"] == iso(asked)

    other = lead_for(client, tenant)
    task = call_task(client, tenant, other["id"])
    answer = client.post(
        f"/api/leads/tasks/{task['id']}/complete",
        json={"outcome": "not_interested", "lost_reason": "COST_FINANCIAL"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert answer.status_code == 200, answer.get_json()
    run_events(app, other["id"], clock.now())
    run_events(app, other["id"], clock.now())
    now = client.get(f"/api/leads/{other['id']}", headers=tenant.headers()).get_json()
    assert (now["status"], now["lost_reason"]) == ("LOST", "COST_FINANCIAL")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "spoke", "callback_at": "2099-01-01T10:00:00Z"}, "callback_at"),
        ({"outcome": "callback_requested", "callback_at": "2020-01-01T10:00:00Z"}, "callback_at"),
        ({"outcome": "spoke", "lost_reason": "COST_FINANCIAL"}, "lost_reason"),
        ({"outcome": "not_interested", "lost_reason": "BORED"}, "lost_reason"),
        ({"outcome": "maybe"}, "outcome"),
    ],
)
def test_a_call_outcome_with_details_it_does_not_take_is_a_422_naming_the_field(client, tenant, body, field):
    lead = lead_for(client, tenant)
    task = call_task(client, tenant, lead["id"])
    answer = client.post(
        f"/api/leads/tasks/{task['id']}/complete", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert answer.status_code == 422 and field in str(answer.get_json()), answer.get_json()
    assert (
        calls_of(client, tenant, lead["id"]) == [] and task_now(client, tenant, task["id"])[0] != "COMPLETED"
    )


def test_a_calls_outcome_on_a_task_that_is_no_call_is_a_422(client, tenant):
    lead = lead_for(client, tenant)
    task = call_task(client, tenant, lead["id"], kind="EMAIL")
    answer = client.post(
        f"/api/leads/tasks/{task['id']}/complete", json={"outcome": "spoke"}, headers=tenant.headers()
    )
    assert answer.status_code == 422 and "outcome" in str(answer.get_json())


def test_converted_needs_lead_convert_wherever_the_call_is_logged(app, client, tenant):
    key = create_key(client, tenant, ["lead:read", "lead:update"])["key"]
    lead = lead_for(client, tenant)
    task = call_task(client, tenant, lead["id"])
    by_task = client.post(
        f"/api/leads/tasks/{task['id']}/complete", json={"outcome": "converted"}, headers={"X-API-Key": key}
    )
    body = {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "converted"}
    by_timeline = client.post(f"/api/leads/{lead['id']}/activities", json=body, headers={"X-API-Key": key})
    for refused in (by_task, by_timeline):
        assert refused.status_code == 403 and "lead:convert" in refused.get_json()["message"]
    run_events(app, lead["id"], clock.now())
    assert (
        client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["status"] != "CONVERTED"
    )
    assert (
        calls_of(client, tenant, lead["id"]) == [] and task_now(client, tenant, task["id"])[0] != "COMPLETED"
    )
    # A coordinator may: the lead converts.
    allowed = client.post(
        f"/api/leads/tasks/{task['id']}/complete",
        json={"outcome": "converted"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert allowed.status_code == 200, allowed.get_json()
    run_events(app, lead["id"], clock.now())
    assert (
        client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["status"] == "CONVERTED"
    )
