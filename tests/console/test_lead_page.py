"""The lead page, as the people who call the families use it, in Chromium against a real server and
SQL database: a coordinator edits the details (a bad email is refused next to its field, and what
else was typed stays), completes and snoozes tasks, replies in the conversation (once, however often
the form is sent), books a free slot (checked in once a visit has started, not before); the front
desk sees no PHI; who may not open it cannot."""

from __future__ import annotations

import re
from datetime import datetime

from playwright.sync_api import expect

from app.platform import clock
from tests.availability import kit as availability
from tests.console.test_browser import log_in
from tests.console.test_console_pages import csrf_of
from tests.console.test_console_pages import log_in as console_log_in
from tests.leadkit import create_lead, get_lead

EVERY_DAY = {day: ["08:00", "20:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _task(client, tenant, lead_id: int, title: str) -> dict:
    resp = client.post(
        f"/api/leads/{lead_id}/tasks",
        json={"title": title, "type": "CALL", "due_in_minutes": 30},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _api(client, tenant, path: str):
    resp = client.get(path, headers=tenant.headers("clinic_admin"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_a_bad_email_is_refused_beside_its_field_and_what_else_was_typed_stays(
    client, tenant, live_server, page
):
    lead = create_lead(client, tenant, phone="(415) 555-0101", email="rosa@example.com", city="Oakland")
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/leads/{lead['id']}")
    page.get_by_text("Edit details").click()
    page.fill("#edit-email", "rosa-at-example")
    page.fill("#edit-city", "Springfield")
    page.fill("#edit-preferred_time", "evenings")
    page.get_by_role("button", name="Save details").click()
    expect(page.locator("#err-email")).to_be_visible()
    expect(page.locator("#err-email")).to_contain_text("email")
    expect(page.locator("#edit-email")).to_have_value("rosa-at-example")
    expect(page.locator("#edit-city")).to_have_value("Springfield")
    expect(page.locator("#edit-preferred_time")).to_have_value("evenings")
    unchanged = get_lead(client, tenant, lead["id"]).get_json()
    assert (unchanged["email"], unchanged["city"]) == ("rosa@example.com", "Oakland")

    page.fill("#edit-email", "rosa.diaz@example.com")
    page.get_by_role("button", name="Save details").click()
    expect(page.locator(".flash")).to_have_text("Saved.")
    saved = get_lead(client, tenant, lead["id"]).get_json()
    assert (saved["email"], saved["city"], saved["preferred_time"]) == (
        "rosa.diaz@example.com",
        "Springfield",
        "evenings",
    )


def test_an_edit_over_someone_elses_change_is_refused_not_lost(client, tenant, live_server, page):
    lead = create_lead(client, tenant, city="Oakland")
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/leads/{lead['id']}")
    meanwhile = client.put(
        f"/api/leads/{lead['id']}", json={"city": "Fresno"}, headers=tenant.headers("clinic_admin")
    )
    assert meanwhile.status_code == 200
    page.get_by_text("Edit details").click()
    page.fill("#edit-city", "Springfield")
    page.get_by_role("button", name="Save details").click()
    expect(page.locator("#details [role=alert]")).to_contain_text("changed this lead since you opened it")
    assert get_lead(client, tenant, lead["id"]).get_json()["city"] == "Fresno"


def test_a_coordinator_completes_snoozes_and_creates_tasks(client, tenant, live_server, page):
    lead = create_lead(client, tenant, phone="(415) 555-0102")
    call = _task(client, tenant, lead["id"], "Call about braces")
    later = _task(client, tenant, lead["id"], "Send the brochure")
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/leads/{lead['id']}")

    page.locator(f"tr[data-task='{call['id']}'] button.complete").click()
    expect(page.locator(".flash")).to_have_text("Task completed.")
    expect(page.locator(f"tr[data-task='{call['id']}'] .status")).to_have_text("Completed")
    assert _api(client, tenant, f"/api/leads/tasks/{call['id']}")["status"] == "COMPLETED"

    page.locator(f"#snooze-{later['id']}").select_option("1440")
    page.locator(f"tr[data-task='{later['id']}'] button.snooze").click()
    expect(page.locator(".flash")).to_have_text("Task snoozed.")
    snoozed = _api(client, tenant, f"/api/leads/tasks/{later['id']}")
    moved = datetime.fromisoformat(snoozed["due_at"]) - datetime.fromisoformat(later["due_at"])
    assert moved.total_seconds() > 20 * 3600  # a day from now, not half an hour

    page.get_by_text("New task", exact=True).click()
    page.fill("#task-title", "Ask about insurance")
    page.get_by_role("button", name="Create task").click()
    expect(page.locator("#err-due_at")).to_contain_text("required")  # beside the field left empty
    expect(page.locator("#task-title")).to_have_value("Ask about insurance")
    page.fill("#task-due_at", "2030-01-07T09:30")
    page.get_by_role("button", name="Create task").click()
    expect(page.locator(".flash")).to_have_text("Task created.")
    expect(page.locator("#tasks")).to_contain_text("Ask about insurance")
    made = [
        t
        for t in _api(client, tenant, f"/api/leads/{lead['id']}/tasks")
        if t["title"] == "Ask about insurance"
    ]
    assert len(made) == 1
    # 09:30 on the clinic's clock (New York in January: UTC-5)
    assert datetime.fromisoformat(made[0]["due_at"]) == datetime.fromisoformat("2030-01-07T14:30:00+00:00")


def test_a_reply_sent_twice_with_one_key_is_in_the_thread_once(client, tenant, live_server, page):
    lead = create_lead(client, tenant, phone="(415) 555-0103")
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/leads/{lead['id']}")
    page.locator("#reply-channel").select_option("sms")
    page.fill("#reply-body", "Hi Jane, when suits you for a call?")
    form = page.locator("form.reply")
    posted = {
        name: form.locator(f"input[name={name}]").input_value() for name in ("csrf_token", "idempotency_key")
    }
    form.get_by_role("button", name="Send reply").click()
    expect(page.locator(".flash")).to_have_text("Sent.")
    again = page.request.post(
        f"{live_server}/console/leads/{lead['id']}/reply",
        form={**posted, "channel": "sms", "body": "Hi Jane, when suits you for a call?"},
        max_redirects=0,
    )
    assert again.status == 303  # the same key: accepted again, sent once
    page.reload()
    expect(page.locator("#thread .message")).to_have_count(1)
    expect(page.locator("#thread .message .body")).to_have_text("Hi Jane, when suits you for a call?")
    thread = _api(client, tenant, f"/api/leads/{lead['id']}/conversation")
    assert [m["body"] for m in thread["items"]] == ["Hi Jane, when suits you for a call?"]


def test_a_coordinator_books_a_free_slot_and_checks_the_family_in(client, tenant, live_server, page):
    lead = create_lead(client, tenant, phone="(415) 555-0104")
    doctor = availability.provider(client, tenant, hours=EVERY_DAY)
    kind = availability.consultation_type(client, tenant, [doctor["id"]])
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/leads/{lead['id']}")
    page.get_by_text("Book a consultation").click()
    slot = page.locator("#book-slot option").first
    chosen = slot.get_attribute("value").split("|")[0]
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.locator(".flash")).to_have_text("Consultation booked.")
    [booked] = _api(client, tenant, f"/api/leads/{lead['id']}/consultations")
    assert datetime.fromisoformat(booked["starts_at"]) == datetime.fromisoformat(chosen)
    assert (booked["type_id"], booked["provider_id"], booked["status"]) == (
        kind["id"],
        doctor["id"],
        "scheduled",
    )
    row = page.locator(f"tr[data-consultation='{booked['id']}']")
    expect(row.locator(".status")).to_have_text("Scheduled")
    # The slot is ahead: the family is not checked in before it starts, and the page says so.
    row.locator("button.check-in").click()
    expect(page.locator("#consultations .error")).to_have_text(
        re.compile(r"^This consultation starts \w{3} .+: check the family in once it has started\.$")
    )
    assert _api(client, tenant, f"/api/leads/{lead['id']}/consultations")[0]["status"] == "scheduled"
    # A visit that has started (booked for now, outside the booking page's slots) is checked in.
    started = client.post(
        f"/api/leads/{lead['id']}/consultations",
        json={"starts_at": clock.now().isoformat()},
        headers=tenant.headers("front_desk"),
    )
    assert started.status_code == 201, started.get_json()
    page.goto(f"{live_server}/console/leads/{lead['id']}")
    page.locator(f"tr[data-consultation='{started.get_json()['id']}'] button.check-in").click()
    expect(page.locator(".flash")).to_have_text("Checked in.")
    statuses = {c["id"]: c["status"] for c in _api(client, tenant, f"/api/leads/{lead['id']}/consultations")}
    assert statuses == {booked["id"]: "scheduled", started.get_json()["id"]: "attended"}


def test_the_front_desk_sees_no_phi_and_no_form_it_may_not_send(client, tenant, live_server, page):
    lead = create_lead(
        client, tenant, first_name="Rosa", phone="(415) 555-0105", notes="allergic to latex",
        insurance_member_id="MEM-777", patient_first_name="Lucia", city="Shelbyville",
    )  # fmt: skip
    _task(client, tenant, lead["id"], "Call Rosa")
    log_in(page, live_server, tenant, role="front_desk")
    page.goto(f"{live_server}/console/leads/{lead['id']}")
    expect(page.locator("#phi-hidden")).to_be_visible()
    html = page.content()
    assert "Rosa" in html and "Call Rosa" in html
    assert [v for v in ("latex", "MEM-777", "Lucia", "Shelbyville") if v in html] == []
    expect(page.locator("form.reply")).to_have_count(0)
    expect(page.locator("#edit")).to_have_count(0)
    expect(page.locator("#tasks button.complete")).to_have_count(0)


def test_the_page_needs_a_login_and_a_role_that_reads_leads(app, client, tenant):
    lead = create_lead(client, tenant)
    with app.test_client() as anonymous:
        resp = anonymous.get(f"/console/leads/{lead['id']}")
        assert resp.status_code == 302 and "/console/login" in resp.headers["Location"]
    with app.test_client() as doctor:
        console_log_in(doctor, tenant, "doctor")
        assert doctor.get(f"/console/leads/{lead['id']}").status_code == 403
    with app.test_client() as desk:
        console_log_in(desk, tenant, "front_desk")
        token = csrf_of(desk.get(f"/console/leads/{lead['id']}").get_data(as_text=True))
        # A form's route checks its own permission: the front desk may not change a lead's details.
        refused = desk.post(f"/console/leads/{lead['id']}/edit", data={"csrf_token": token, "city": "X"})
        assert refused.status_code == 403
    assert get_lead(client, tenant, lead["id"]).get_json().get("city") is None


def with_rows(client, tenant, lead_id: int) -> None:
    """A task, a consultation and a sent reply on the lead: its page's every row and its controls
    are then there for the every-page checks (tests/console/test_every_page.py)."""
    _task(client, tenant, lead_id, "Call the family")
    booked = client.post(
        f"/api/leads/{lead_id}/consultations",
        json={"starts_at": "2030-01-07T15:00:00Z", "location": "Main office"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert booked.status_code == 201, booked.get_json()
    sent = client.post(
        f"/api/leads/{lead_id}/conversation/messages",
        json={"channel": "sms", "body": "Hello from the clinic"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert sent.status_code == 201, sent.get_json()


def _post(console, lead_id: int, path: str, **form):
    token = csrf_of(console.get(f"/console/leads/{lead_id}").get_data(as_text=True))
    return console.post(f"/console/leads/{lead_id}/{path}", data={"csrf_token": token, **form})


def test_a_task_is_reassigned_and_a_consultation_rescheduled_then_missed(app, client, tenant):
    lead = create_lead(client, tenant, phone="(415) 555-0106")
    task = _task(client, tenant, lead["id"], "Call back")
    booked = client.post(
        f"/api/leads/{lead['id']}/consultations",
        json={"starts_at": "2030-01-07T15:00:00Z"},
        headers=tenant.headers("treatment_coordinator"),
    ).get_json()
    admin = tenant.users["clinic_admin"]
    with app.test_client() as console:
        console_log_in(console, tenant, "treatment_coordinator")
        moved = _post(console, lead["id"], f"tasks/{task['id']}/reassign", assignee=str(admin.id))
        assert moved.status_code == 303
        assert _api(client, tenant, f"/api/leads/tasks/{task['id']}")["assigned_to_id"] == admin.id
        # 10:00 on the clinic's clock, New York in January: 15:00 UTC
        later = _post(
            console, lead["id"], f"consultations/{booked['id']}/reschedule", starts_at="2030-01-08T10:00"
        )
        assert later.status_code == 303
        again = _api(client, tenant, f"/api/consultations/{booked['id']}")
        assert datetime.fromisoformat(again["starts_at"]) == datetime.fromisoformat(
            "2030-01-08T15:00:00+00:00"
        )
        missed = _post(console, lead["id"], f"consultations/{booked['id']}/no-show")
        assert missed.status_code == 303
        assert _api(client, tenant, f"/api/consultations/{booked['id']}")["status"] == "no_show"
        # A second no-show of a missed visit: the use case's refusal, said on the page, not a 500.
        refused = _post(console, lead["id"], f"consultations/{booked['id']}/no-show")
        said = refused.get_data(as_text=True)
        assert refused.status_code == 409 and "a consultation no_show cannot be" in said


def test_a_task_of_another_lead_is_not_changed_from_this_leads_page(app, client, tenant):
    lead = create_lead(client, tenant, phone="(415) 555-0107")
    other = create_lead(client, tenant, first_name="Ann", phone="(415) 555-0108")
    task = _task(client, tenant, other["id"], "Call Ann")
    with app.test_client() as console:
        console_log_in(console, tenant, "treatment_coordinator")
        refused = _post(console, lead["id"], f"tasks/{task['id']}/complete", outcome="done")
    assert refused.status_code == 404
    assert _api(client, tenant, f"/api/leads/tasks/{task['id']}")["status"] == "PENDING"


def test_the_timeline_is_oldest_first_a_page_at_a_time_the_newest_page_first(app, client, tenant):
    lead = create_lead(client, tenant)
    for n in range(27):
        logged = client.post(
            f"/api/leads/{lead['id']}/activities",
            json={"type": "NOTE", "notes": f"note {n:02d}", "occurred_at": f"2026-01-01T10:{n:02d}:00Z"},
            headers=tenant.headers("treatment_coordinator"),
        )
        assert logged.status_code == 201, logged.get_json()
    with app.test_client() as console:
        console_log_in(console, tenant, "treatment_coordinator")
        first = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
        second = console.get(f"/console/leads/{lead['id']}?page=2").get_data(as_text=True)
    notes = [
        re.findall(r"note (\d\d)", html.split('<ol id="thread"')[1].split("</ol>")[0])
        for html in (first, second)
    ]
    # 28 entries (the 27 notes and the lead's assignment): the 25 newest on page one, the rest on
    # page two, each page oldest first
    assert notes[0] == [f"{n:02d}" for n in range(3, 27)] and notes[1] == ["00", "01", "02"]
    assert "page 1 of 2" in first and ">Older<" in first and ">Newer<" in second
