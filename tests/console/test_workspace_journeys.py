"""Today and quick entry in Debian's Chromium, as the people who use them: the front desk enters a
phone call's lead with the keyboard alone and is warned of the family already on file; a double submit
makes one lead; a coordinator takes the next call, logs "no answer" with one key and sees the follow-up
the engine (a real worker, a clinic rule) scheduled; a lead given to the coordinator by someone else
appears on Today without a reload (the real stream process)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser import serious_violations
from tests.console.test_browser import log_in
from tests.console.test_every_page import DESK, PHONE, _wider_than_the_screen
from tests.leadkit import create_lead, set_user
from tests.stream.kit import only_assignee, stream_process
from tests.workers import wait_for

NO_ANSWER_FOLLOW_UP = {
    "name": "No answer: try again tomorrow",
    "trigger": "activity.logged",
    "conditions": [
        {"field": "event.outcome", "operator": "equals", "value": "no_answer"},
        {"field": "event.direction", "operator": "equals", "value": "OUTBOUND"},
    ],
    "actions": [
        {
            "type": "create_task",
            "title": "Try again after no answer",
            "task_type": "CALL",
            "assignee": {"kind": "lead_owner"},
            "delay": {"amount": 1, "unit": "business_days"},
        }
    ],
}


def _open_tasks(client, tenant, lead_id: int) -> list[dict]:
    answer = client.get(f"/api/leads/{lead_id}/tasks", headers=tenant.headers("clinic_admin"))
    return [t for t in answer.get_json() if t["status"] in ("PENDING", "IN_PROGRESS", "OVERDUE")]


def _leads_with_phone(client, tenant, digits: str) -> list[int]:
    found = client.get(f"/api/leads?q={digits}", headers=tenant.headers("clinic_admin")).get_json()
    return [lead["id"] for lead in found]


def test_the_front_desk_enters_a_call_by_keyboard_and_is_warned_of_the_family_on_file(
    app, client, tenant, celery_worker, live_server, page
):
    only_assignee(app, tenant, "treatment_coordinator")
    family = create_lead(client, tenant, first_name="Rosa", last_name="Diaz", phone="(415) 555-0134")
    log_in(page, live_server, tenant, role="front_desk")
    page.goto(f"{live_server}/console/leads/new")
    expect(page.locator("#first_name")).to_be_focused()  # ready to type as the phone rings
    keys = page.keyboard
    keys.type("Maria")
    keys.press("Tab")
    keys.type("Diaz")
    keys.press("Tab")
    keys.type("415 555 0134")
    warning = page.locator(f"#duplicates li[data-lead-id='{family['id']}']")
    expect(warning).to_contain_text("Rosa Diaz")
    expect(warning).to_contain_text("phone")
    assert _leads_with_phone(client, tenant, "4155550134") == [family["id"]]  # nothing saved yet
    keys.press("Tab")  # email: none given
    keys.press("Tab")  # past the warning's link to the family on file
    keys.press("Tab")  # the source
    expect(page.locator("#source_id")).to_be_focused()
    keys.press("ArrowDown")
    chosen = page.locator("#source_id").input_value()
    keys.press("Tab")  # the first treatment interest
    keys.press("Space")
    expect(page.locator("input[name=treatment_interest]").first).to_be_checked()
    for _ in range(6):  # the other interests, then the notes
        keys.press("Tab")
    expect(page.locator("#notes")).to_be_focused()
    keys.type("Mother of Rosa; asks about braces for her daughter")
    keys.press("Control+Enter")

    expect(page).to_have_url(re.compile(r"/console/leads/\d+$"))
    lead_id = int(page.url.rsplit("/", 1)[1])
    assert lead_id != family["id"]
    saved = client.get(f"/api/leads/{lead_id}", headers=tenant.headers("clinic_admin")).get_json()
    assert (saved["first_name"], saved["last_name"], saved["phone"]) == ("Maria", "Diaz", "+14155550134")
    assert str(saved["source_id"]) == chosen and saved["treatment_interest"] == ["BRACES_METAL"]
    # The engine (the worker) gives the new lead its call task; the lead page lists it.
    wait_for(lambda: _open_tasks(client, tenant, lead_id), timeout=30)
    page.reload()
    expect(page.locator("#tasks")).to_contain_text("Initial contact")


def test_a_double_submit_of_the_quick_entry_makes_one_lead(client, tenant, live_server, page):
    log_in(page, live_server, tenant, role="front_desk")
    page.goto(f"{live_server}/console/leads/new")
    page.fill("#first_name", "Ann")
    page.fill("#last_name", "Lee")
    page.fill("#phone", "(415) 555-0199")
    # The same form sent twice, as a second press or a resent POST sends it: the same body, the same key.
    landed = page.evaluate(
        """async () => {
          const form = document.getElementById('quick-entry');
          const send = () => fetch(form.action, {method: 'POST', credentials: 'same-origin',
            body: new URLSearchParams(new FormData(form))});
          const first = await send(), second = await send();
          return [first.status, first.url, second.status, second.url];
        }"""
    )
    assert landed[0] == landed[2] == 200 and landed[1] == landed[3]
    assert re.search(r"/console/leads/\d+$", landed[1])
    assert _leads_with_phone(client, tenant, "4155550199") == [int(landed[1].rsplit("/", 1)[1])]


def test_a_coordinator_takes_the_next_call_logs_no_answer_and_sees_the_follow_up_the_engine_made(
    app, client, tenant, celery_worker, monkeypatch, live_server, page
):
    settings = app.config["SETTINGS"]
    made = client.post(
        "/api/follow-up-rules", json=NO_ANSWER_FOLLOW_UP, headers=tenant.headers("clinic_admin")
    )
    assert made.status_code == 201, made.get_json()
    only_assignee(app, tenant, "treatment_coordinator")
    lead = create_lead(client, tenant, first_name="Zoe", last_name="Park", phone="(415) 555-0177")
    wait_for(lambda: _open_tasks(client, tenant, lead["id"]), timeout=30)  # speed to lead's call task
    with stream_process(settings, CORS_ORIGINS=live_server) as stream:
        monkeypatch.setattr(settings, "stream_url", f"{stream}/api/me/events")
        log_in(page, live_server, tenant, role="treatment_coordinator")
        expect(page).to_have_url(re.compile(r"/console/today$"))  # the coordinator's home
        # The shortcuts are the page's script's: a key pressed before it has run does nothing (the
        # URL changes before the page has loaded; a busy CI host showed it).
        page.wait_for_load_state("load")
        page.keyboard.press("n")
        card = page.locator("#next-call .call-lead")
        expect(card).to_contain_text("Zoe Park")
        expect(card).to_contain_text("+1 415-555-0177")  # as a person reads it, dialled by tel:
        assert serious_violations(page) == []  # the call card with its outcome buttons
        page.wait_for_load_state("load")
        page.keyboard.press("3")  # the third outcome: no answer

        expect(page.locator("#logged h2")).to_have_text("Call logged: No answer")
        follow_up = page.locator("#next-steps li")
        expect(follow_up).to_contain_text("Try again after no answer")
        for size in (PHONE, DESK):  # the page with its call logged and the next step, at both widths
            page.set_viewport_size(size)
            assert serious_violations(page) == [] and not _wider_than_the_screen(page), size
    timeline = client.get(
        f"/api/leads/{lead['id']}/activities", headers=tenant.headers("clinic_admin")
    ).get_json()
    calls = [(a["direction"], a["outcome"]) for a in timeline if a["type"] == "PHONE_CALL"]
    assert calls == [("OUTBOUND", "no_answer")]
    (task,) = _open_tasks(client, tenant, lead["id"])  # the first call task is done; the follow-up is open
    assert task["title"] == "Try again after no answer"
    assert follow_up.get_attribute("data-task-id") == str(task["id"])


def test_a_lead_assigned_by_someone_else_appears_on_today_without_a_reload(
    app, client, tenant, celery_worker, monkeypatch, live_server, page
):
    settings = app.config["SETTINGS"]
    only_assignee(app, tenant, "clinic_admin")
    lead = create_lead(client, tenant, first_name="Ivy", last_name="Chen")
    coordinator = tenant.users["treatment_coordinator"].id
    set_user(app, coordinator, out_of_office=False)  # back at work: the admin may give them the lead
    with stream_process(settings, CORS_ORIGINS=live_server) as stream:
        monkeypatch.setattr(settings, "stream_url", f"{stream}/api/me/events")
        log_in(page, live_server, tenant, role="treatment_coordinator")
        page.goto(f"{live_server}/console/today")
        expect(page.locator("#live-status")).to_have_text("live")
        page.evaluate("window.notReloaded = true")
        expect(page.locator("#assigned-now li")).to_have_count(0)

        given = client.post(
            f"/api/leads/{lead['id']}/assign",
            json={"user_id": coordinator},
            headers=tenant.headers("clinic_admin"),
        )
        assert given.status_code == 200, given.get_json()

        arrived = page.locator(f"#assigned-now li[data-lead-id='{lead['id']}']")
        expect(arrived).to_have_text("Ivy Chen")
        assert page.evaluate("window.notReloaded") is True


def test_a_coordinator_enters_a_parents_call_for_her_son_by_keyboard(client, tenant, live_server, page):
    """Issue 76: "Maria Lopez for Maria Lopez" no more. The patient section takes the son and his age
    from the keyboard; the board's card then says whom the lead is for."""
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/leads/new")
    page.locator("#first_name").fill("Maria")
    page.locator("#last_name").fill("Lopez")
    page.locator("#notes").focus()
    keys = page.keyboard
    keys.press("Tab")  # from the notes into the patient section: who the patient is (a child)
    expect(page.locator("#patient_relationship")).to_be_focused()
    expect(page.locator("#patient_relationship")).to_have_value("CHILD")
    keys.press("Tab")
    keys.type("Diego")
    keys.press("Tab")  # his last name: the family's, left empty
    keys.press("Tab")
    keys.type("12")
    keys.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/leads/\d+$"))
    expect(page.locator("#patients")).to_contain_text("Diego (12), Child")
    page.goto(f"{live_server}/console/board")
    expect(page.locator("main")).to_contain_text("Maria Lopez for Diego (12)")
