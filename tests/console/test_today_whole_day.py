"""Today shows a coordinator's whole day (issue 76, item 4), through Flask's test client: the tasks
coming up after today (the next opening's call included) with when in words, the clinic's
consultations of its local day, and the call they took kept by the server (the task's claim), so it
is there again on every visit until logged or released; a released call is anyone's to take again.
Another clinic's tasks, calls and consultations never show.

Times are the clinic's: the clinic sits in Auckland (13 hours from UTC half the year), so a day
counted in UTC would miss a consultation at either end of the local day; the request clock is held
at the moment the test starts, so a test run near midnight sees one day throughout."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.platform import clock
from tests.availability.kit import consultation_type, provider, set_clinic_zone
from tests.console.test_console_pages import csrf_of, log_in
from tests.leadkit import create_lead

ZONE = "Pacific/Auckland"


@pytest.fixture
def moment(monkeypatch) -> datetime:
    """Now, held still for the whole test (every request reads this clock)."""
    held = clock.now()
    monkeypatch.setattr(clock, "now", lambda: held)
    return held


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(ZONE))


def _today(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(ZONE)).date()


def _task(
    client, tenant, lead_id: int, due_at: datetime, title: str, role: str = "treatment_coordinator"
) -> dict:
    body = {
        "title": title,
        "type": "CALL",
        "due_at": due_at.astimezone(UTC).isoformat(),
        "assigned_to_id": tenant.users[role].id,
    }
    answer = client.post(f"/api/leads/{lead_id}/tasks", json=body, headers=tenant.headers("clinic_admin"))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def _section(html: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}".*?</section>', html, re.S)
    assert found, f"no #{section_id} on the page"
    return found.group(0)


def _today_page(console) -> str:
    answer = console.get("/console/today")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_tasks_due_after_today_show_under_coming_up_with_when_in_words(
    client, console, tenant, make_tenant, moment
):
    set_clinic_zone(client, tenant, ZONE)
    today = _today(moment)
    lead = create_lead(client, tenant, first_name="Zoe", last_name="Park")
    opening = _task(client, tenant, lead["id"], _local(today + timedelta(days=1), 8), "First call")
    in_four = today + timedelta(days=4)
    later = _task(client, tenant, lead["id"], _local(in_four, 9), "Check in")
    far = today + timedelta(days=10)
    beyond = _task(client, tenant, lead["id"], _local(far, 14, 30), "Second try")
    overdue = _task(client, tenant, lead["id"], moment - timedelta(hours=2), "Late call")
    teammate = _task(
        client, tenant, lead["id"], _local(today + timedelta(days=1), 9), "Not mine", "clinic_admin"
    )
    other = make_tenant("Other clinic")
    stranger = create_lead(client, other, first_name="Otto", last_name="Stranger")
    _task(client, other, stranger["id"], _local(today + timedelta(days=1), 8), "Elsewhere")

    log_in(console, tenant, "treatment_coordinator")
    html = _today_page(console)
    upcoming = _section(html, "upcoming")
    lines = re.findall(r'<li data-task-id="(\d+)">(.*?)</li>', upcoming, re.S)
    assert [int(task_id) for task_id, _ in lines] == [opening["id"], later["id"], beyond["id"]]
    words = [re.sub(r"<[^>]+>|\s+", " ", line).strip() for _, line in lines]
    assert words[0].startswith("Tomorrow at 8:00 AM") and "Zoe Park" in words[0] and "First call" in words[0]
    assert words[1].startswith(f"{in_four:%a} at 9:00 AM"), words[1]
    assert words[2].startswith(f"{far:%a} {far.day} {far:%b} at 2:30 PM"), words[2]
    due_now = _section(html, "my-tasks")
    assert f'data-task-id="{overdue["id"]}"' in due_now and f'data-task-id="{opening["id"]}"' not in due_now
    assert f'data-task-id="{teammate["id"]}"' not in html and "Elsewhere" not in html


def test_todays_consultations_of_the_clinic_in_its_own_zone(client, console, tenant, make_tenant, moment):
    set_clinic_zone(client, tenant, ZONE)
    today = _today(moment)
    doctor = provider(client, tenant, name="Dr. Rivera")
    kind = consultation_type(client, tenant, [doctor["id"]], name="New patient consultation")
    early = create_lead(client, tenant, first_name="Ada", last_name="Early")
    late = create_lead(client, tenant, first_name="Lou", last_name="Late")
    tomorrow = create_lead(client, tenant, first_name="Tom", last_name="Morrow")
    admin = tenant.headers("clinic_admin")

    def book(lead, starts_at, **extra):
        body = {"starts_at": starts_at.astimezone(UTC).isoformat(), **extra}
        answer = client.post(f"/api/leads/{lead['id']}/consultations", json=body, headers=admin)
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()

    # The local day's first and last half hours: a day counted in UTC misses one of them.
    first = book(early, _local(today, 0, 15), type_id=kind["id"], provider_id=doctor["id"])
    last = book(late, _local(today, 23, 15), provider_name="Dr. Okafor", duration_minutes=30)
    assert client.post(f"/api/consultations/{last['id']}/cancel", json={}, headers=admin).status_code == 200
    book(tomorrow, _local(today + timedelta(days=1), 0, 15), provider_name="Dr. Okafor")
    other = make_tenant("Other clinic")
    stranger = create_lead(client, other, first_name="Otto", last_name="Stranger")
    client.post(
        f"/api/leads/{stranger['id']}/consultations",
        json={"starts_at": moment.isoformat()},
        headers=other.headers("clinic_admin"),
    )

    log_in(console, tenant, "treatment_coordinator")
    table = _section(_today_page(console), "consultations-today")
    rows = re.findall(r'<tr data-consultation-id="(\d+)">(.*?)</tr>', table, re.S)
    assert [int(consultation_id) for consultation_id, _ in rows] == [first["id"], last["id"]]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for _, row in rows]
    texts = [[re.sub(r"<[^>]+>", "", cell).strip() for cell in row] for row in cells]
    assert texts[0] == ["12:15 AM", "Ada Early", "New patient consultation", "Dr. Rivera", "Scheduled"]
    assert texts[1] == ["11:15 PM", "Lou Late", "", "Dr. Okafor", "Cancelled"]
    assert f'href="/console/leads/{early["id"]}"' in cells[0][1]
    assert "Tom Morrow" not in table and "Otto Stranger" not in table


def test_the_call_taken_stays_on_today_after_another_page_until_released(client, console, tenant, moment):
    lead = create_lead(client, tenant, first_name="Zoe", last_name="Park", phone="(415) 555-0177")
    task = _task(client, tenant, lead["id"], moment - timedelta(hours=1), "Call back")
    log_in(console, tenant, "treatment_coordinator")
    token = csrf_of(_today_page(console))
    taken = console.post("/console/today/next-call", data={"csrf_token": token})
    assert taken.status_code == 303 and taken.headers["Location"].endswith("/console/today")

    assert console.get(f"/console/leads/{lead['id']}").status_code == 200  # off to the lead, and back
    assert console.get("/console/board").status_code == 200
    call = _section(_today_page(console), "next-call")
    assert f'class="call-lead" data-task-id="{task["id"]}"' in call and "Zoe Park" in call
    assert "Yours until" in call and 'id="take-next-call"' not in call
    assert 'data-key="1"' in call  # the outcome keys are there to log it

    # Held: a teammate's next call (the admin may take overdue tasks of others) skips it.
    admin = tenant.headers("clinic_admin")
    assert client.post("/api/me/next-task", headers=admin).status_code == 204

    released = console.post(f"/console/today/calls/{task['id']}/release", data={"csrf_token": token})
    assert released.status_code == 303
    after = _today_page(console)
    call = _section(after, "next-call")
    assert "call-lead" not in call and 'id="take-next-call"' in call
    assert "Call released" in after
    handed = client.post("/api/me/next-task", headers=admin)
    assert handed.status_code == 200 and handed.get_json()["task"]["id"] == task["id"]
    # Now the admin's: releasing it again is no longer the coordinator's to do, and says so.
    again = console.post(f"/console/today/calls/{task['id']}/release", data={"csrf_token": token})
    assert again.status_code == 303 and "no longer yours" in _today_page(console)
    held = client.get(f"/api/leads/tasks/{task['id']}", headers=admin).get_json()
    assert held["claimed_by_id"] == tenant.users["clinic_admin"].id


def test_a_logged_call_leaves_today_and_the_next_one_can_be_taken(client, console, tenant, moment):
    lead = create_lead(client, tenant, first_name="Zoe", last_name="Park")
    task = _task(client, tenant, lead["id"], moment - timedelta(hours=1), "Call back")
    log_in(console, tenant, "treatment_coordinator")
    token = csrf_of(_today_page(console))
    console.post("/console/today/next-call", data={"csrf_token": token})
    logged = console.post(
        f"/console/today/calls/{task['id']}", data={"csrf_token": token, "outcome": "spoke"}
    )
    assert logged.status_code == 303
    call = _section(_today_page(console), "next-call")
    assert "call-lead" not in call and 'id="take-next-call"' in call


def test_the_api_gives_a_held_task_back_once(client, tenant, moment):
    lead = create_lead(client, tenant)
    task = _task(client, tenant, lead["id"], moment - timedelta(hours=1), "Call back")
    mine = tenant.headers("treatment_coordinator")
    assert client.post("/api/me/next-task", headers=mine).get_json()["task"]["id"] == task["id"]
    assert client.post(f"/api/me/next-task/{task['id']}/release", headers=mine).status_code == 204
    again = client.post(f"/api/me/next-task/{task['id']}/release", headers=mine)
    assert again.status_code == 409 and again.get_json()["code"] == "task_not_claimed"


def test_another_clinics_call_never_shows_and_is_a_404_to_release(
    client, console, tenant, make_tenant, moment
):
    other = make_tenant("Other clinic")
    stranger = create_lead(client, other, first_name="Otto", last_name="Stranger")
    theirs = _task(client, other, stranger["id"], moment - timedelta(hours=1), "Their call")
    their_coordinator = other.headers("treatment_coordinator")
    assert (
        client.post("/api/me/next-task", headers=their_coordinator).get_json()["task"]["id"] == theirs["id"]
    )

    log_in(console, tenant, "treatment_coordinator")
    html = _today_page(console)
    assert "Otto Stranger" not in html and "Their call" not in html
    refused = console.post(f"/console/today/calls/{theirs['id']}/release", data={"csrf_token": csrf_of(html)})
    assert refused.status_code == 404
    mine = tenant.headers("treatment_coordinator")
    assert client.post(f"/api/me/next-task/{theirs['id']}/release", headers=mine).status_code == 404
    still = client.get(f"/api/leads/tasks/{theirs['id']}", headers=other.headers("clinic_admin")).get_json()
    assert still["claimed_by_id"] == other.users["treatment_coordinator"].id


def test_a_call_kept_longer_stays_held_past_its_first_hold(client, console, tenant, moment, monkeypatch):
    lead = create_lead(client, tenant, first_name="Zoe", last_name="Park", phone="(415) 555-0177")
    task = _task(client, tenant, lead["id"], moment - timedelta(hours=1), "Call back")
    admin = tenant.headers("clinic_admin")  # issued now: a token from the test's future is refused
    log_in(console, tenant, "treatment_coordinator")
    token = csrf_of(_today_page(console))
    console.post("/console/today/next-call", data={"csrf_token": token})
    # Eight minutes on the call (the hold is ten): the coordinator keeps it, then twelve more pass.
    monkeypatch.setattr(clock, "now", lambda: moment + timedelta(minutes=8))
    kept = console.post(f"/console/today/calls/{task['id']}/keep", data={"csrf_token": token})
    assert kept.status_code == 303
    assert "Still yours, until" in _today_page(console)
    monkeypatch.setattr(clock, "now", lambda: moment + timedelta(minutes=12))
    call = _section(_today_page(console), "next-call")
    assert f'data-task-id="{task["id"]}"' in call and 'id="keep-call"' in call  # still the coordinator's
    held = client.get(f"/api/leads/tasks/{task['id']}", headers=admin).get_json()
    assert held["claimed_by_id"] == tenant.users["treatment_coordinator"].id


def test_a_call_that_is_someone_elses_now_cannot_be_kept(client, console, tenant, moment, monkeypatch):
    lead = create_lead(client, tenant, first_name="Zoe", last_name="Park")
    task = _task(client, tenant, lead["id"], moment - timedelta(hours=1), "Call back")
    admin = tenant.headers("clinic_admin")  # issued now: a token from the test's future is refused
    log_in(console, tenant, "treatment_coordinator")
    token = csrf_of(_today_page(console))
    console.post("/console/today/next-call", data={"csrf_token": token})
    monkeypatch.setattr(clock, "now", lambda: moment + timedelta(minutes=11))  # the hold ran out
    handed = client.post("/api/me/next-task", headers=admin)
    assert handed.status_code == 200 and handed.get_json()["task"]["id"] == task["id"]
    kept = console.post(f"/console/today/calls/{task['id']}/keep", data={"csrf_token": token})
    assert kept.status_code == 303 and "no longer yours" in _today_page(console)
    held = client.get(f"/api/leads/tasks/{task['id']}", headers=admin).get_json()
    assert held["claimed_by_id"] == tenant.users["clinic_admin"].id
