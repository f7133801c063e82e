"""Today and quick entry through Flask's test client: who may open them (they sit under the console's
login, CSRF and permission checks), the quick entry's field errors, duplicates while typing and one
lead per idempotency key, and a call's outcome logged as the API logs it, completing its task."""

from __future__ import annotations

import re

import pytest

from app.platform import clock
from tests.automation.kit import run_events
from tests.automation.outreachkit import configure_clinic, lead_with
from tests.console.test_console_pages import csrf_of, log_in
from tests.conversations.test_conversations import providers  # noqa: F401 (a fixture)
from tests.intake.test_twilio import CLINIC_NUMBER, INBOUND, PHONE, signed_post, text
from tests.leadkit import create_lead, get_lead
from tests.stream.kit import only_assignee

PAGES = {"/console/today": "lead:read", "/console/leads/new": "lead:create"}


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _permissions(role):
    from app.platform.roles import ROLE_PERMISSIONS, Role

    return {str(p) for p in ROLE_PERMISSIONS[Role(role)]}


def test_anonymous_users_are_sent_to_login_and_roles_without_the_permission_are_refused(app, tenant):
    with app.test_client() as anonymous:
        for path in PAGES:
            answer = anonymous.get(path)
            assert answer.status_code == 302 and "/console/login" in answer.headers["Location"], path
    for role in tenant.users:
        with app.test_client() as c:
            log_in(c, tenant, role)
            for path, permission in PAGES.items():
                expected = 200 if permission in _permissions(role) else 403
                assert c.get(path).status_code == expected, (role, path)


def _form(console, **fields) -> dict:
    html = console.get("/console/leads/new").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    return {"csrf_token": csrf_of(html), "idempotency_key": key, **fields}


def test_quick_entry_shows_each_field_error_beside_its_field_and_keeps_what_was_typed(console, tenant):
    log_in(console, tenant, "front_desk")
    answer = console.post(
        "/console/leads/new", data=_form(console, first_name="", email="not-an-email", last_name="Lee")
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="first_name-error"[^>]*>[^<]+', html)
    assert re.search(r'id="email-error"[^>]*>[^<]*email', html, re.I)
    assert 'value="Lee"' in html and 'value="not-an-email"' in html


def test_quick_entry_without_its_csrf_token_is_refused(console, tenant):
    log_in(console, tenant, "front_desk")
    form = _form(console, first_name="Ann", last_name="Lee")
    del form["csrf_token"]
    assert console.post("/console/leads/new", data=form).status_code == 400


def test_the_same_form_sent_twice_makes_one_lead_and_both_land_on_it(app, client, console, tenant):
    log_in(console, tenant, "front_desk")
    form = _form(console, first_name="Ann", last_name="Lee", phone="(415) 555-0199")
    first = console.post("/console/leads/new", data=form)
    second = console.post("/console/leads/new", data=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    lead_id = int(first.headers["Location"].rsplit("/", 1)[1])
    assert get_lead(client, tenant, lead_id).get_json()["first_name"] == "Ann"
    found = client.get("/api/leads?q=4155550199", headers=tenant.headers("clinic_admin")).get_json()
    assert [lead["id"] for lead in found] == [lead_id]
    other = _form(console, first_name="Ann", last_name="Lee", phone="(415) 555-0199")
    assert other["idempotency_key"] != form["idempotency_key"]  # a new form is a new lead


def test_possible_duplicates_show_while_typing_before_anything_is_saved(client, console, tenant):
    family = create_lead(client, tenant, first_name="Rosa", last_name="Diaz", phone="(415) 555-0134")
    log_in(console, tenant, "front_desk")
    fragment = console.get("/console/leads/new/duplicates?first_name=R&phone=415-555-0134").get_data(
        as_text=True
    )
    assert f'data-lead-id="{family["id"]}"' in fragment and "Rosa Diaz" in fragment and "phone" in fragment
    unmatched = console.get("/console/leads/new/duplicates?phone=415-555-01").get_data(as_text=True)
    assert "data-lead-id" not in unmatched  # half a number matches nothing, and is no error


def test_another_clinics_lead_is_never_a_duplicate(client, console, tenant, make_tenant):
    other = make_tenant("Other clinic")
    create_lead(client, other, first_name="Rosa", last_name="Diaz", phone="(415) 555-0134")
    log_in(console, tenant, "front_desk")
    fragment = console.get("/console/leads/new/duplicates?phone=415-555-0134").get_data(as_text=True)
    assert "data-lead-id" not in fragment


def _task(client, tenant, lead_id: int, user_id: int) -> dict:
    body = {"title": "Call back", "type": "CALL", "due_at": "2020-01-01T09:00:00Z", "assigned_to_id": user_id}
    answer = client.post(f"/api/leads/{lead_id}/tasks", json=body, headers=tenant.headers("clinic_admin"))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_taking_the_next_call_and_logging_no_answer_logs_the_call_and_completes_its_task(
    client, console, tenant
):
    coordinator = tenant.users["treatment_coordinator"].id
    lead = create_lead(client, tenant, first_name="Zoe", last_name="Park", phone="(415) 555-0177")
    task = _task(client, tenant, lead["id"], coordinator)
    log_in(console, tenant, "treatment_coordinator")
    token = csrf_of(console.get("/console/today").get_data(as_text=True))
    taken = console.post("/console/today/next-call", data={"csrf_token": token})
    assert taken.status_code == 303
    call_page = console.get(taken.headers["Location"]).get_data(as_text=True)
    held = re.search(r'class="call-lead" data-task-id="(\d+)"', call_page)
    assert held, call_page
    task_id = int(held.group(1))
    logged = console.post(
        f"/console/today/calls/{task_id}", data={"csrf_token": token, "outcome": "no_answer"}
    )
    assert logged.status_code == 303 and "logged=" in logged.headers["Location"]
    timeline = client.get(
        f"/api/leads/{lead['id']}/activities", headers=tenant.headers("clinic_admin")
    ).get_json()
    calls = [a for a in timeline if a["type"] == "PHONE_CALL"]
    assert [(c["direction"], c["outcome"]) for c in calls] == [("OUTBOUND", "no_answer")]
    done = client.get(f"/api/leads/tasks/{task_id}", headers=tenant.headers("clinic_admin")).get_json()
    assert done["status"] == "COMPLETED" and done["outcome"] == "no_answer"
    assert task_id == task["id"]  # the overdue call task is the one handed out


def test_an_outcome_outside_the_four_is_a_422_naming_it(client, console, tenant):
    lead = create_lead(client, tenant)
    task = _task(client, tenant, lead["id"], tenant.users["treatment_coordinator"].id)
    log_in(console, tenant, "treatment_coordinator")
    token = csrf_of(console.get("/console/today").get_data(as_text=True))
    answer = console.post(
        f"/console/today/calls/{task['id']}", data={"csrf_token": token, "outcome": "maybe"}
    )
    assert answer.status_code == 422 and "outcome" in answer.get_data(as_text=True)


def test_front_desk_may_open_today_but_not_take_or_log_calls(client, console, tenant):
    log_in(console, tenant, "front_desk")
    html = console.get("/console/today").get_data(as_text=True)
    assert "take-next-call" not in html
    token = csrf_of(html)
    assert console.post("/console/today/next-call", data={"csrf_token": token}).status_code == 403


def test_another_clinics_task_is_a_404_to_release_or_to_log(client, console, tenant, make_tenant):
    other = make_tenant("Other clinic")
    lead = create_lead(client, other)
    body = {"title": "Call back", "type": "CALL", "due_at": "2020-01-01T09:00:00Z"}
    task = client.post(
        f"/api/leads/{lead['id']}/tasks", json=body, headers=other.headers("clinic_admin")
    ).get_json()
    log_in(console, tenant, "treatment_coordinator")
    html = console.get(f"/console/today?call={task['id']}").get_data(as_text=True)
    assert 'class="call-lead"' not in html  # the call shown is the one the server says is held
    token = csrf_of(html)
    released = console.post(f"/console/today/calls/{task['id']}/release", data={"csrf_token": token})
    assert released.status_code == 404
    logged = console.post(
        f"/console/today/calls/{task['id']}", data={"csrf_token": token, "outcome": "spoke"}
    )
    assert logged.status_code == 404
    timeline = client.get(
        f"/api/leads/{lead['id']}/activities", headers=other.headers("clinic_admin")
    ).get_json()
    assert [a for a in timeline if a["type"] == "PHONE_CALL"] == []


def test_a_familys_text_waits_on_its_owners_today_and_is_gone_once_read(
    app,
    client,
    console,
    tenant,
    providers,  # noqa: F811 (the imported fixture, asked for)
):
    only_assignee(app, tenant, "treatment_coordinator")
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    signed_post(client, INBOUND, text("Is Tuesday free?", sid="SM1"))
    log_in(console, tenant, "treatment_coordinator")
    waiting = console.get("/console/today").get_data(as_text=True)
    assert re.search(r'id="replies".*Is Tuesday free\?', waiting, re.S)
    coordinator = tenant.headers("treatment_coordinator")
    assert (
        client.post(f"/api/leads/{lead['id']}/conversation/read", json={}, headers=coordinator).status_code
        == 200
    )
    assert "Is Tuesday free?" not in console.get("/console/today").get_data(as_text=True)


def test_a_saved_form_changed_and_sent_again_makes_no_second_lead_until_saved_anew(client, console, tenant):
    log_in(console, tenant, "front_desk")
    form = _form(console, first_name="Ann", last_name="Lee", phone="(415) 555-0199")
    first = console.post("/console/leads/new", data=form)
    assert first.status_code == 303
    changed = console.post("/console/leads/new", data={**form, "first_name": "Anna"})
    html = changed.get_data(as_text=True)
    assert changed.status_code == 422 and "saved already" in html and 'value="Anna"' in html
    assert _leads_with_phone(client, tenant, "4155550199") == [
        int(first.headers["Location"].rsplit("/", 1)[1])
    ]
    fresh_key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    assert fresh_key != form["idempotency_key"]
    again = console.post(
        "/console/leads/new", data={**form, "first_name": "Anna", "idempotency_key": fresh_key}
    )
    assert again.status_code == 303 and again.headers["Location"] != first.headers["Location"]


def _leads_with_phone(client, tenant, digits: str) -> list[int]:
    found = client.get(f"/api/leads?q={digits}", headers=tenant.headers("clinic_admin")).get_json()
    return sorted(lead["id"] for lead in found)


def test_todays_tasks_show_how_late_each_is_and_its_leads_sla_clock(app, client, console, tenant):
    only_assignee(app, tenant, "treatment_coordinator")
    lead = create_lead(client, tenant, first_name="Zoe", last_name="Park")
    run_events(app, lead["id"], clock.now())  # the capture's consumers: the SLA clocks start, the call task
    sla = client.get(f"/api/leads/{lead['id']}/sla", headers=tenant.headers("clinic_admin")).get_json()
    assert any(c["status"] in ("pending", "warning") for c in sla), sla
    late = _task(client, tenant, lead["id"], tenant.users["treatment_coordinator"].id)
    log_in(console, tenant, "treatment_coordinator")
    html = console.get("/console/today").get_data(as_text=True)
    line = re.search(rf'<li data-task-id="{late["id"]}">(.*?)</li>', html, re.S).group(1)
    assert "Zoe Park" in line and "overdue by" in line and "SLA:" in line
