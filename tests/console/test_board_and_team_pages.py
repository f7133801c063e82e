"""The pipeline board and the Team page through Flask's test client: who may open them (the console's
login and page permissions apply to the workspace's nested blueprints), a move through the pipeline's
rules, the filters, the board's cap per column, the PHI policy, a reassignment through the API's
assignment (the browser journeys are in test_board_and_team_journeys.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.console.test_console_pages import csrf_of, log_in
from tests.leadkit import add_user, create_lead, get_lead, set_user


def coordinator(app, tenant, name: str, **fields) -> int:
    """A treatment coordinator of the tenant's clinic, by name."""
    user_id = add_user(app, tenant, **fields)
    set_user(app, user_id, name=name)
    return user_id


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _move(console, lead_id: int, stage: str, **extra):
    token = csrf_of(console.get("/console/board").get_data(as_text=True))
    return console.post(
        f"/console/board/leads/{lead_id}/stage",
        data={"stage": stage, "csrf_token": token, **extra},
        headers={"Accept": "application/json"},
    )


def test_an_anonymous_visitor_is_sent_to_log_in(console):
    for path in ("/console/board", "/console/team"):
        resp = console.get(path)
        assert resp.status_code == 302 and "/console/login" in resp.headers["Location"]


def test_front_desk_sees_the_board_but_may_not_move_a_card_nor_open_team(console, client, tenant):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz", phone="(415) 555-0134")
    log_in(console, tenant, role="front_desk")
    html = console.get("/console/board").get_data(as_text=True)
    assert "Rosa Diaz" in html and 'class="move"' not in html and 'draggable="true"' not in html
    assert console.get("/console/team").status_code == 403
    token = csrf_of(html)
    resp = console.post(
        f"/console/board/leads/{lead['id']}/stage", data={"stage": "contacted", "csrf_token": token}
    )
    assert resp.status_code == 403
    assert get_lead(client, tenant, lead["id"]).get_json()["pipeline_stage"] == "new_lead"


def test_a_doctor_may_open_neither_page(console, tenant):
    log_in(console, tenant, role="doctor")
    assert console.get("/console/board").status_code == 403
    assert console.get("/console/team").status_code == 403


def test_a_move_goes_through_the_pipeline_and_a_refused_one_says_why(console, client, tenant):
    lead = create_lead(client, tenant)
    log_in(console, tenant, role="treatment_coordinator")
    assert _move(console, lead["id"], "contacted").get_json() == {"lead_id": lead["id"], "stage": "contacted"}
    assert get_lead(client, tenant, lead["id"]).get_json()["pipeline_stage"] == "contacted"
    refused = _move(console, lead["id"], "new_lead")
    assert refused.status_code == 409
    assert (
        refused.get_json()["error"]
        == "moving backwards from contacted to new_lead is not allowed (only to lost)"
    )
    lost = _move(console, lead["id"], "lost")
    assert lost.status_code == 422 and "reason" in lost.get_json()["error"]
    assert get_lead(client, tenant, lead["id"]).get_json()["pipeline_stage"] == "contacted"


def test_a_refused_move_by_the_form_is_said_beside_its_card_and_the_filters_kept(console, client, tenant):
    lead = create_lead(client, tenant)
    log_in(console, tenant, role="treatment_coordinator")
    token = csrf_of(console.get("/console/board").get_data(as_text=True))
    resp = console.post(
        f"/console/board/leads/{lead['id']}/stage?age=day",
        data={"stage": "pending_decision", "csrf_token": token},
    )
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/console/board?age=day")
    html = console.get(resp.headers["Location"]).get_data(as_text=True)
    assert "entering pending_decision needs the reason the family hesitates" in html
    assert 'value="day" selected' in html


def test_the_board_has_one_move_form_and_each_card_only_a_link_to_it(console, client, tenant):
    leads = [create_lead(client, tenant, first_name=name) for name in ("Ana", "Bea", "Cid", "Dov")]
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/board?age=day").get_data(as_text=True)
    assert html.count('<form class="move"') == 1 and html.count('<select name="stage"') == 1
    cards = html.split('<li class="card"')[1:]
    assert len(cards) == len(leads)
    for lead, card in zip(leads, cards, strict=True):
        card = card.split("</li>\n", 1)[0]
        assert "<form" not in card and "<select" not in card and "csrf_token" not in card
        assert f'href="/console/board/leads/{lead["id"]}/stage?age=day"' in card


def test_a_cards_move_page_holds_the_form_and_moves_it_keeping_the_filters(console, client, tenant):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    log_in(console, tenant, role="treatment_coordinator")
    page = console.get(f"/console/board/leads/{lead['id']}/stage?age=day")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>Move Rosa Diaz</h1>" in html and "Now in New Lead." in html
    assert f'action="/console/board/leads/{lead["id"]}/stage?age=day"' in html
    assert 'value="new_lead"' not in html  # where it is already
    moved = console.post(
        f"/console/board/leads/{lead['id']}/stage?age=day",
        data={"stage": "contacted", "csrf_token": csrf_of(html)},
    )
    assert moved.status_code == 303 and moved.headers["Location"].endswith("/console/board?age=day")
    assert get_lead(client, tenant, lead["id"]).get_json()["pipeline_stage"] == "contacted"


def _options(html: str) -> list[str]:
    """The stage select's options, in order, as (value, selected)."""
    select = html.split('<select name="stage">', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option value="(\w+)"( selected)?>', select)


def test_the_move_page_offers_only_the_stages_ahead_the_next_chosen_and_lost_last(console, client, tenant):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    log_in(console, tenant, role="treatment_coordinator")
    assert _move(console, lead["id"], "contacted").status_code == 200
    html = console.get(f"/console/board/leads/{lead['id']}/stage").get_data(as_text=True)
    assert _options(html) == [
        ("consultation_scheduled", " selected"),  # the next stage, chosen
        ("consultation_completed", ""),
        ("pending_decision", ""),
        ("treatment_accepted", ""),
        ("lost", ""),
    ]  # nothing behind it (new_lead), not where it is, no conversion (its own action)
    assert "Why lost" in html  # lost asks its reason


def test_a_closed_lead_is_offered_no_move(console, client, tenant):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    log_in(console, tenant, role="treatment_coordinator")
    assert _move(console, lead["id"], "lost", reason="NO_RESPONSE").status_code == 200
    html = console.get(f"/console/board/leads/{lead['id']}/stage").get_data(as_text=True)
    assert '<form class="move"' not in html and "there is no stage to move it to" in html
    board = console.get("/console/board").get_data(as_text=True)
    card = board.split(f'id="lead-{lead["id"]}"', 1)[1].split("</li>", 1)[0]
    assert "move-open" not in card and "draggable" not in card


def test_each_column_tells_the_dialog_where_its_cards_may_go(console, client, tenant):
    create_lead(client, tenant)
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/board").get_data(as_text=True)
    ahead = "consultation_completed pending_decision treatment_accepted lost"
    assert f'data-stage="contacted" data-targets="consultation_scheduled {ahead}"' in html
    assert 'data-stage="treatment_accepted" data-targets="lost"' in html
    assert 'data-stage="lost" data-targets=""' in html


def test_the_move_page_is_for_those_who_may_move_and_their_clinics_leads(
    console, client, tenant, make_tenant
):
    ours, theirs = create_lead(client, tenant), create_lead(client, make_tenant("Elsewhere"))
    log_in(console, tenant, role="front_desk")
    assert console.get(f"/console/board/leads/{ours['id']}/stage").status_code == 403
    log_in(console, tenant, role="clinic_admin")
    assert console.get(f"/console/board/leads/{theirs['id']}/stage").status_code == 404


def test_another_clinics_lead_is_not_found(console, client, tenant, make_tenant):
    theirs = create_lead(client, make_tenant("Elsewhere"))
    log_in(console, tenant, role="clinic_admin")
    assert _move(console, theirs["id"], "contacted").status_code == 404


def test_filters_narrow_the_board_and_a_bad_one_names_its_field(console, client, tenant):
    create_lead(client, tenant, first_name="Ana", treatment_interest=["INVISALIGN"])
    create_lead(client, tenant, first_name="Bea", treatment_interest=["RETAINER"])
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/board?interest=INVISALIGN").get_data(as_text=True)
    assert "Ana Doe" in html and "Bea Doe" not in html
    html = console.get("/console/board?age=older").get_data(as_text=True)
    assert "Ana Doe" not in html and "Bea Doe" not in html
    bad = console.get("/console/board?source=abc")
    assert bad.status_code == 422 and "source" in bad.get_data(as_text=True)


def test_front_desk_sees_no_phi_on_the_board_and_may_not_filter_by_it(console, client, tenant):
    create_lead(
        client, tenant, first_name="Rosa", patient_first_name="Mia", patient_last_name="Diaz",
        treatment_interest=["INVISALIGN"], notes="overbite",
    )  # fmt: skip
    log_in(console, tenant, role="front_desk")
    html = console.get("/console/board").get_data(as_text=True)
    assert "Rosa Doe" in html
    for phi in ("Mia", "Invisalign", "INVISALIGN", "overbite"):
        assert phi not in html
    refused = console.get("/console/board?interest=INVISALIGN")
    assert refused.status_code == 422 and "treatment_interest" in refused.get_data(as_text=True)


def test_a_coordinator_sees_the_patient_on_the_card(console, client, tenant):
    create_lead(client, tenant, first_name="Rosa", patient_first_name="Mia", patient_last_name="Diaz")
    log_in(console, tenant, role="treatment_coordinator")
    assert "for Mia Diaz" in console.get("/console/board").get_data(as_text=True)


def test_a_column_shows_its_first_cards_and_counts_the_rest(app, console, client, tenant, monkeypatch):
    from app.domains.pipeline import board

    monkeypatch.setattr(board, "CARDS_PER_COLUMN", 2)
    for name in ("First", "Second", "Third"):
        create_lead(client, tenant, first_name=name, phone=None)
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/board").get_data(as_text=True)
    assert "First Doe" in html and "Second Doe" in html and "Third Doe" not in html
    assert "and 1 more" in html


def test_a_card_says_its_next_step(console, client, tenant):
    lead = create_lead(client, tenant, first_name="Rosa")
    task = {"title": "Ask about the consultation", "type": "CALL", "due_in_minutes": 60}
    made = client.post(f"/api/leads/{lead['id']}/tasks", json=task, headers=tenant.headers("clinic_admin"))
    assert made.status_code == 201, made.get_json()
    log_in(console, tenant, role="front_desk")
    card = console.get("/console/board").get_data(as_text=True).split(f'id="lead-{lead["id"]}"')[1]
    assert '<dd class="next">Ask about the consultation, due ' in card


def test_badges_say_a_possible_duplicate(console, client, tenant):
    create_lead(client, tenant, first_name="Rosa", phone="(415) 555-0134")
    create_lead(client, tenant, first_name="Rosalind", phone="(415) 555-0134")
    create_lead(client, tenant, first_name="Other", phone="(415) 555-0199")
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/board").get_data(as_text=True)
    assert html.count("Possible duplicate") == 2


def test_a_pair_dismissed_as_not_the_same_family_loses_its_badge(console, client, tenant):
    rosa = create_lead(client, tenant, first_name="Rosa", phone="(415) 555-0134")
    rosalind = create_lead(client, tenant, first_name="Rosalind", phone="(415) 555-0134")
    dismissed = client.post(
        f"/api/leads/{rosalind['id']}/duplicates/{rosa['id']}/dismiss", headers=tenant.headers("clinic_admin")
    )
    assert dismissed.status_code == 200, dismissed.get_json()
    log_in(console, tenant, role="treatment_coordinator")
    assert "Possible duplicate" not in console.get("/console/board").get_data(as_text=True)


def test_a_manager_reassigns_two_leads_through_the_assignment(app, console, client, tenant):
    sick = coordinator(app, tenant, "Sam Sick")
    well = coordinator(app, tenant, "Wendy Well")
    leads = [create_lead(client, tenant, first_name=f"L{i}") for i in range(3)]
    for lead in leads:
        resp = client.post(
            f"/api/leads/{lead['id']}/assign", json={"user_id": sick}, headers=tenant.headers("clinic_admin")
        )
        assert resp.status_code == 200
    log_in(console, tenant, role="clinic_admin")
    html = console.get(f"/console/team?from={sick}").get_data(as_text=True)
    assert "Sam Sick" in html and "L0 Doe" in html
    resp = console.post(
        "/console/team/reassign",
        data={"csrf_token": csrf_of(html), "lead_ids": [leads[0]["id"], leads[1]["id"]],
              "to_user_id": well, "from": sick, "reason": "out sick"},
    )  # fmt: skip
    assert resp.status_code == 303
    owners = [get_lead(client, tenant, lead["id"]).get_json()["assigned_to_id"] for lead in leads]
    assert owners == [well, well, sick]
    assert "2 leads reassigned" in console.get(resp.headers["Location"]).get_data(as_text=True)


def test_reassigning_to_someone_out_of_office_is_refused_naming_the_field(app, console, client, tenant):
    away = coordinator(app, tenant, "Away", out_of_office=True)
    lead = create_lead(client, tenant)
    log_in(console, tenant, role="clinic_admin")
    token = csrf_of(console.get("/console/team").get_data(as_text=True))
    resp = console.post(
        "/console/team/reassign", data={"csrf_token": token, "lead_ids": [lead["id"]], "to_user_id": away}
    )
    assert resp.status_code == 422 and "out of office" in resp.get_data(as_text=True)


def test_the_team_page_shows_workload_and_who_is_available(app, console, client, tenant):
    busy = coordinator(app, tenant, "Busy Bee")
    coordinator(app, tenant, "Gone Fishing", out_of_office=True)
    for _ in range(2):
        lead = create_lead(client, tenant)
        client.post(
            f"/api/leads/{lead['id']}/assign", json={"user_id": busy}, headers=tenant.headers("clinic_admin")
        )
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    task = {"title": "Call back", "type": "CALL", "assigned_to_id": busy, "due_at": hour_ago}
    made = client.post(f"/api/leads/{lead['id']}/tasks", json=task, headers=tenant.headers("clinic_admin"))
    assert made.status_code == 201, made.get_json()
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/team").get_data(as_text=True)
    row = html.split(f'data-user-id="{busy}"')[1].split("</tr>")[0]
    assert '<td class="open-leads">2</td>' in row and "available" in row
    assert '<td class="overdue">1</td>' in row
    assert "out of office" in html


def test_a_columns_value_is_the_recorded_value_else_the_average(console, client, tenant):
    won = create_lead(client, tenant, first_name="Won")
    create_lead(client, tenant, first_name="Open")
    resp = client.post(
        f"/api/leads/{won['id']}/convert",
        json={"treatment_value": "5200.00"},
        headers=tenant.headers("clinic_admin"),
    )
    assert resp.status_code == 200, resp.get_json()
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/board").get_data(as_text=True)

    def figures(stage: str) -> str:
        return html.split(f'data-stage="{stage}"')[1].split("</p>")[0]

    assert '<span class="count">1</span>' in figures("treatment_started")
    assert '<span class="value">5,200</span>' in figures("treatment_started")
    assert '<span class="value">5,200</span>' in figures("new_lead")  # one open lead at the average
    assert '<span class="value">0</span>' in figures("contacted")  # no lead there


def test_badges_say_in_sequence_and_sla_breached(app, db, console, client, tenant):
    from app.domains.tasks.sla.models import SlaClock
    from app.platform import clock
    from tests.automation.outreachkit import call, enroll, make_sequence

    in_sequence, breached, plain = (
        create_lead(client, tenant, first_name=n) for n in ("Seq", "Late", "Plain")
    )
    enroll(
        client, tenant, in_sequence["id"], make_sequence(client, tenant, [call(amount=2, unit="days")])["id"]
    )
    now = clock.now()
    with db.unit_of_work() as session:  # a clock the breach job has marked (its job is tested in tests/sla)
        session.add(
            SlaClock(
                clinic_id=tenant.clinic.id, lead_id=breached["id"], kind="speed_to_lead", status="breached",
                started_at=now, warn_at=now, due_at=now, target_minutes=5, breached_at=now,
            )
        )  # fmt: skip
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/board").get_data(as_text=True)

    def badges(lead) -> str:
        card = html.split(f'id="lead-{lead["id"]}"')[1].split("</li>\n")[0]
        return card.split('class="badges"')[1] if 'class="badges"' in card else ""

    assert "In sequence" in badges(in_sequence) and "SLA breached" not in badges(in_sequence)
    assert "SLA breached" in badges(breached) and "In sequence" not in badges(breached)
    assert badges(plain) == ""


def test_a_cards_name_opens_the_lead_page(console, client, tenant):
    lead = create_lead(client, tenant, first_name="Rosa")
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/board").get_data(as_text=True)
    assert f'<a class="name" href="/console/leads/{lead["id"]}">Rosa Doe</a>' in html
    assert console.get(f"/console/leads/{lead['id']}").status_code == 200


def test_a_move_with_a_reason_not_in_the_list_is_refused_naming_it(console, client, tenant):
    lead = create_lead(client, tenant)
    log_in(console, tenant, role="treatment_coordinator")
    refused = _move(console, lead["id"], "lost", reason="BORED")
    assert refused.status_code == 422 and refused.get_json()["error"].startswith("reason:")
    assert get_lead(client, tenant, lead["id"]).get_json()["pipeline_stage"] == "new_lead"
    moved = _move(console, lead["id"], "lost", reason="NO_RESPONSE")
    assert moved.get_json() == {"lead_id": lead["id"], "stage": "lost"}
