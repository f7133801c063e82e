"""The lead page as a work surface (issue 76 item 2): its heading in words, the actions a
coordinator takes near its top (log a call with every outcome, move the stage forward or to lost,
convert, mark lost with a reason) through the API's own use cases and permissions, each refusal said
beside its field, none offered on a closed lead; an open task edited from its row. Through Flask's
test client."""

from __future__ import annotations

import html as html_lib
import re
from datetime import datetime

import pytest

from tests.console.test_console_pages import csrf_of, log_in
from tests.leadkit import create_lead, get_lead

SEED_OUTCOMES = (
    "spoke", "voicemail", "no_answer", "wrong_number", "callback_requested", "not_interested", "converted",
)  # fmt: skip


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _section(html: str, section_id: str) -> str:
    return re.search(rf'<section id="{section_id}".*?</section>', html, re.S).group(0)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def _post(console, lead_id: int, path: str, **form):
    token = csrf_of(console.get(f"/console/leads/{lead_id}").get_data(as_text=True))
    return console.post(f"/console/leads/{lead_id}/{path}", data={"csrf_token": token, **form})


def _api(client, tenant, path: str):
    answer = client.get(path, headers=tenant.headers("clinic_admin"))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_the_heading_says_the_stage_and_status_in_words_not_codes_or_ids(client, console, tenant):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz", phone="(415) 555-0161")
    log_in(console, tenant, "treatment_coordinator")
    html = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    heading = _text(re.search(r"<h1>.*?</h1>", html, re.S).group(0))
    assert heading == "Rosa Diaz New Lead · New: not reached yet", heading
    assert f"lead {lead['id']}" not in heading.lower() and "NEW" not in heading


def test_a_call_is_logged_from_the_bar_with_its_outcome_and_notes(client, console, tenant):
    lead = create_lead(client, tenant, phone="(415) 555-0162")
    log_in(console, tenant, "treatment_coordinator")
    html = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    bar = _section(html, "actions")
    offered = re.findall(
        r'<option value="([a-z_]+)"', bar.split('id="call-outcome"')[1].split("</select>")[0]
    )
    assert tuple(offered) == SEED_OUTCOMES  # every outcome the API accepts, said in words
    assert "Spoke with them" in bar and "Asked to be called back" in bar
    # The bar comes right after the contact card and the owner, before the details and the timeline.
    assert html.index('id="owner"') < html.index('id="actions"') < html.index('id="details"')
    logged = _post(console, lead["id"], "call", outcome="voicemail", notes="Left a message about Tuesday")
    assert logged.status_code == 303 and logged.headers["Location"].endswith("#actions")
    calls = [
        a for a in _api(client, tenant, f"/api/leads/{lead['id']}/activities") if a["type"] == "PHONE_CALL"
    ]
    assert [(c["direction"], c["outcome"], c["notes"]) for c in calls] == [
        ("OUTBOUND", "voicemail", "Left a message about Tuesday")
    ]


def test_a_call_refused_is_said_beside_the_field_it_names(client, console, tenant):
    lead = create_lead(client, tenant, phone="(415) 555-0163")
    log_in(console, tenant, "treatment_coordinator")
    refused = _post(console, lead["id"], "call", outcome="callback_requested", callback_at="2001-01-01T09:00")
    said = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert re.search(r'id="err-callback_at">[^<]*future', said)
    assert 'id="call-outcome"' in said and '<div id="call" hidden' not in said  # the form stays open
    assert not [
        a for a in _api(client, tenant, f"/api/leads/{lead['id']}/activities") if a["type"] == "PHONE_CALL"
    ]


def test_the_stage_moves_forward_only_and_lost_needs_a_reason(client, console, tenant):
    lead = create_lead(client, tenant, phone="(415) 555-0164")
    log_in(console, tenant, "treatment_coordinator")
    bar = _section(console.get(f"/console/leads/{lead['id']}").get_data(as_text=True), "actions")
    form = bar.split('<form class="move"')[1].split("</form>")[0]
    offered = re.findall(r'<option value="([a-z_]+)"', form.split('name="stage"')[1].split("</select>")[0])
    assert offered[0] == "contacted" and offered[-1] == "lost"
    assert "new_lead" not in offered and "treatment_started" not in offered
    assert "Back to the board" not in form and "Chose competitor" in form  # reasons in words

    missing = _post(console, lead["id"], "stage", stage="lost", reason="")
    assert missing.status_code == 422
    said = _text(_section(missing.get_data(as_text=True), "actions"))
    assert "Why lost: Choose why the lead was lost" in said
    assert get_lead(client, tenant, lead["id"]).get_json()["pipeline_stage"] == "new_lead"

    moved = _post(console, lead["id"], "stage", stage="contacted")
    assert moved.status_code == 303
    assert get_lead(client, tenant, lead["id"]).get_json()["pipeline_stage"] == "contacted"
    # A stage behind it, posted all the same: the pipeline's refusal on the page, not a 500.
    back = _post(console, lead["id"], "stage", stage="new_lead")
    assert back.status_code == 409 and 'role="alert"' in _section(back.get_data(as_text=True), "actions")
    assert get_lead(client, tenant, lead["id"]).get_json()["pipeline_stage"] == "contacted"


def test_marking_lost_needs_a_reason_and_a_closed_lead_offers_no_actions(client, console, tenant):
    lead = create_lead(client, tenant, phone="(415) 555-0165")
    log_in(console, tenant, "treatment_coordinator")
    missing = _post(console, lead["id"], "lost", reason="", notes="went elsewhere")
    said = missing.get_data(as_text=True)
    assert missing.status_code == 422
    assert re.search(r'id="err-reason">Choose why the lead was lost', said)
    assert 'id="lost-notes" name="notes" type="text" value="went elsewhere"' in said  # kept
    assert get_lead(client, tenant, lead["id"]).get_json()["status"] != "LOST"

    lost = _post(console, lead["id"], "lost", reason="CHOSE_COMPETITOR", notes="went elsewhere")
    assert lost.status_code == 303
    closed = get_lead(client, tenant, lead["id"]).get_json()
    assert (closed["status"], closed["lost_reason"]) == ("LOST", "CHOSE_COMPETITOR")
    page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    bar = _section(page, "actions")
    assert "This lead is closed (lost)" in _text(bar)
    assert "<form" not in bar and "Log a call" not in bar
    assert "Lost" in _text(re.search(r"<h1>.*?</h1>", page, re.S).group(0))


def test_a_lead_is_converted_from_its_page(client, console, tenant):
    lead = create_lead(client, tenant, phone="(415) 555-0166")
    log_in(console, tenant, "treatment_coordinator")
    done = _post(console, lead["id"], "convert", treatment_value="4800")
    assert done.status_code == 303
    converted = get_lead(client, tenant, lead["id"]).get_json()
    assert (converted["status"], converted["pipeline_stage"]) == ("CONVERTED", "treatment_started")
    bar = _section(console.get(f"/console/leads/{lead['id']}").get_data(as_text=True), "actions")
    assert "This lead is closed (converted: treatment started)" in _text(bar) and "<form" not in bar
    # Converted already: the pipeline's refusal said on the page, not a 500.
    again = _post(console, lead["id"], "convert")
    assert again.status_code == 409


@pytest.mark.parametrize("path", ["call", "stage", "lost", "convert"])
def test_who_may_not_change_the_lead_is_refused_and_offered_nothing(client, console, tenant, path):
    lead = create_lead(client, tenant, phone="(415) 555-0167")
    log_in(console, tenant, "front_desk")
    html = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert "<form" not in _section(html, "actions")
    form = {"call": {"outcome": "spoke"}, "stage": {"stage": "contacted"}, "lost": {"reason": "OTHER"}}
    refused = console.post(
        f"/console/leads/{lead['id']}/{path}", data={"csrf_token": csrf_of(html), **form.get(path, {})}
    )
    assert refused.status_code == 403
    after = get_lead(client, tenant, lead["id"]).get_json()
    assert (after["status"], after["pipeline_stage"]) == ("NEW", "new_lead")


def test_another_clinics_lead_is_not_found(client, console, tenant, make_tenant):
    other_tenant = make_tenant("Other Orthodontics")
    theirs = create_lead(client, other_tenant, phone="(415) 555-0168")
    log_in(console, tenant, "treatment_coordinator")
    mine = create_lead(client, tenant, phone="(415) 555-0169")
    token = csrf_of(console.get(f"/console/leads/{mine['id']}").get_data(as_text=True))
    for path, form in (("call", {"outcome": "spoke"}), ("lost", {"reason": "OTHER"}), ("convert", {})):
        answer = console.post(f"/console/leads/{theirs['id']}/{path}", data={"csrf_token": token, **form})
        assert answer.status_code == 404, path
    assert get_lead(client, other_tenant, theirs["id"]).get_json()["status"] == "NEW"


def _task(client, tenant, lead_id: int, title: str) -> dict:
    answer = client.post(
        f"/api/leads/{lead_id}/tasks",
        json={"title": title, "type": "CALL", "due_in_minutes": 30},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_an_open_task_is_edited_from_its_row(client, console, tenant):
    lead = create_lead(client, tenant, phone="(415) 555-0170")
    task = _task(client, tenant, lead["id"], "Call back")
    admin = tenant.users["clinic_admin"]
    log_in(console, tenant, "treatment_coordinator")
    html = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert f'id="edit-task-{task["id"]}-title"' in html and 'value="Call back"' in html
    edited = _post(
        console, lead["id"], f"tasks/{task['id']}/edit",
        title="Call back about braces", due_at="2030-01-07T09:30", assignee=str(admin.id),
    )  # fmt: skip
    assert edited.status_code == 303
    now = _api(client, tenant, f"/api/leads/tasks/{task['id']}")
    assert (now["title"], now["assigned_to_id"]) == ("Call back about braces", admin.id)
    # 09:30 on the clinic's clock (New York in January: UTC-5)
    assert datetime.fromisoformat(now["due_at"]) == datetime.fromisoformat("2030-01-07T14:30:00+00:00")
    shown = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert (
        f'id="edit-task-{task["id"]}-due_at" name="due_at" type="datetime-local" value="2030-01-07T09:30"'
        in shown
    )

    emptied = _post(console, lead["id"], f"tasks/{task['id']}/edit", task_id=str(task["id"]), title="")
    said = emptied.get_data(as_text=True)
    assert emptied.status_code == 422 and 'id="err-title"' in said
    assert f'<div id="edit-task-{task["id"]}" hidden' not in said  # the task's form stays open
    assert _api(client, tenant, f"/api/leads/tasks/{task['id']}")["title"] == "Call back about braces"


@pytest.mark.parametrize(
    ("role", "on_lead", "status"), [("treatment_coordinator", "lead", 404), ("front_desk", "other", 403)]
)
def test_a_task_is_edited_only_on_its_own_leads_page_and_by_who_may(
    client, console, tenant, role, on_lead, status
):
    leads = {
        "lead": create_lead(client, tenant, phone="(415) 555-0171"),
        "other": create_lead(client, tenant, first_name="Ann", phone="(415) 555-0172"),
    }
    task = _task(client, tenant, leads["other"]["id"], "Call Ann")
    log_in(console, tenant, role)
    answer = _post(console, leads[on_lead]["id"], f"tasks/{task['id']}/edit", title="Hijacked")
    assert answer.status_code == status
    assert _api(client, tenant, f"/api/leads/tasks/{task['id']}")["title"] == "Call Ann"
