"""The pipeline board and the Team page in Debian's Chromium against a real server: a card moved to
consultation_scheduled by drag and by the keyboard alone, the move dialog offering only the stages
ahead (the next one chosen) and asking lost's reason before sending, a refused move saying why beside
its card, filters surviving a reload, the front desk seeing no PHI, a manager handing two leads of a
coordinator to another (and the API showing the new owner)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.test_board_and_team_pages import coordinator
from tests.console.test_browser import log_in
from tests.leadkit import create_lead, get_lead

SCHEDULED = "consultation_scheduled"


def _stage(client, tenant, lead_id: int) -> str:
    return get_lead(client, tenant, lead_id).get_json()["pipeline_stage"]


def _column(page, stage: str):
    return page.locator(f"#board section.column[data-stage='{stage}']")


def test_a_coordinator_drags_a_card_to_consultation_scheduled(client, tenant, live_server, page):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/board")
    card = page.locator(f"#lead-{lead['id']}")
    expect(_column(page, "new_lead").locator(f"#lead-{lead['id']}")).to_be_visible()
    card.drag_to(_column(page, SCHEDULED))
    expect(_column(page, SCHEDULED).locator(f"#lead-{lead['id']}")).to_be_visible()
    expect(_column(page, SCHEDULED).locator(".count")).to_have_text("1")
    assert _stage(client, tenant, lead["id"]) == SCHEDULED


def test_a_coordinator_moves_a_card_with_the_keyboard_alone(client, tenant, live_server, page):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/board")
    page.wait_for_load_state("load")  # the dialog is the page's script's: keys after it has run
    page.focus(f"#lead-{lead['id']} a.name")
    page.keyboard.press("Tab")  # the card's "Move…" link
    assert page.evaluate("document.activeElement.textContent") == "Move Rosa Diaz…"
    page.keyboard.press("Enter")  # opens the page's move dialog for this card, focus in its first field
    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#move-title")).to_have_text("Move Rosa Diaz")
    assert page.evaluate("document.activeElement.name") == "stage"
    page.keyboard.type("Consultation S")  # a select picks the option typed
    page.keyboard.press("Tab")  # the Move button (no reason is asked for this stage)
    assert page.evaluate("document.activeElement.textContent") == "Move"
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text(f"Lead {lead['id']} moved to consultation scheduled")
    expect(_column(page, SCHEDULED).locator(f"#lead-{lead['id']}")).to_be_visible()
    assert _stage(client, tenant, lead["id"]) == SCHEDULED


def test_escape_closes_the_move_dialog_and_focus_returns_to_the_cards_link(client, tenant, live_server, page):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/board")
    page.wait_for_load_state("load")
    page.focus(f"#lead-{lead['id']} a.move-open")
    page.keyboard.press("Enter")
    expect(page.locator("#move-dialog")).to_be_visible()
    stages = page.locator("#move-dialog select[name=stage] option:not([disabled])")
    assert "new_lead" not in [stages.nth(i).get_attribute("value") for i in range(stages.count())]
    page.keyboard.press("Escape")
    expect(page.locator("#move-dialog")).to_be_hidden()
    expect(page.locator(f"#lead-{lead['id']} a.move-open")).to_be_focused()
    assert _stage(client, tenant, lead["id"]) == "new_lead"


def _to_contacted(client, tenant, lead_id: int) -> None:
    moved = client.post(
        f"/api/leads/{lead_id}/stage", json={"stage": "contacted"}, headers=tenant.headers("clinic_admin")
    )
    assert moved.status_code == 200, moved.get_json()


def _open_dialog(page, live_server, lead_id: int):
    page.goto(f"{live_server}/console/board")
    page.wait_for_load_state("load")
    page.focus(f"#lead-{lead_id} a.move-open")
    page.keyboard.press("Enter")
    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    return dialog


def test_the_dialog_offers_the_stages_ahead_the_next_one_chosen_and_never_one_behind(
    client, tenant, live_server, page
):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    _to_contacted(client, tenant, lead["id"])
    log_in(page, live_server, tenant, role="treatment_coordinator")
    dialog = _open_dialog(page, live_server, lead["id"])
    select = dialog.locator("select[name=stage]")
    expect(select).to_have_value(SCHEDULED)  # the next stage, not New Lead
    offered = select.locator("option:not([disabled])")
    expect(offered).to_have_text(
        ["Consultation Scheduled", "Consultation Completed", "Pending Decision", "Treatment Accepted", "Lost"]
    )
    page.keyboard.type("New")  # typing a stage behind it picks nothing behind it
    expect(select).to_have_value(SCHEDULED)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text(f"Lead {lead['id']} moved to consultation scheduled")
    assert _stage(client, tenant, lead["id"]) == SCHEDULED


def test_lost_without_a_reason_is_said_in_the_dialog_and_nothing_is_sent(client, tenant, live_server, page):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    _to_contacted(client, tenant, lead["id"])
    log_in(page, live_server, tenant, role="treatment_coordinator")
    dialog = _open_dialog(page, live_server, lead["id"])
    dialog.get_by_label("Move to…").select_option("lost")
    expect(dialog.get_by_label("Why lost")).to_be_visible()
    dialog.get_by_role("button", name="Move").click()
    expect(dialog.locator(".why-missing[data-for=lost]")).to_have_text(
        "Choose why the lead was lost: a lead moves to Lost only with a reason."
    )
    expect(dialog.get_by_label("Why lost")).to_be_focused()
    expect(dialog).to_be_visible()
    assert _stage(client, tenant, lead["id"]) == "contacted"  # nothing sent
    dialog.get_by_label("Why lost").select_option("NO_RESPONSE")
    dialog.get_by_role("button", name="Move").click()
    expect(_column(page, "lost").locator(f"#lead-{lead['id']}")).to_be_visible()
    answer = get_lead(client, tenant, lead["id"]).get_json()
    assert (answer["pipeline_stage"], answer["lost_reason"]) == ("lost", "NO_RESPONSE")


def test_without_the_script_a_cards_move_link_opens_its_move_page(client, tenant, live_server, chromium):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    context = chromium.new_context(java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, live_server, tenant, role="treatment_coordinator")
        page.goto(f"{live_server}/console/board?age=day")
        page.locator(f"#lead-{lead['id']} a.move-open").click()
        expect(page.locator("h1")).to_have_text("Move Rosa Diaz")
        page.get_by_label("Move to…").select_option(SCHEDULED)
        page.get_by_role("button", name="Move").click()
        expect(page.locator(".flash")).to_contain_text(f"Lead {lead['id']} moved to consultation scheduled")
        assert page.url.endswith("/console/board?age=day")
    finally:
        context.close()
    assert _stage(client, tenant, lead["id"]) == SCHEDULED


def test_a_refused_move_says_why_beside_the_card(client, tenant, live_server, page):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    moved = client.post(
        f"/api/leads/{lead['id']}/stage", json={"stage": "contacted"}, headers=tenant.headers("clinic_admin")
    )
    assert moved.status_code == 200
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/board")
    page.locator(f"#lead-{lead['id']}").drag_to(_column(page, "new_lead"))
    expect(page.locator(f"#lead-{lead['id']} .refusal")).to_have_text(
        "moving backwards from contacted to new_lead is not allowed (only to lost)"
    )
    page.reload()
    expect(_column(page, "contacted").locator(f"#lead-{lead['id']}")).to_be_visible()
    assert _stage(client, tenant, lead["id"]) == "contacted"


def test_the_filters_are_kept_in_the_url_and_survive_a_reload(app, client, tenant, live_server, page):
    mine = coordinator(app, tenant, "Carla Coordinator")
    ours = create_lead(client, tenant, first_name="Ours")
    theirs = create_lead(client, tenant, first_name="Theirs")
    for lead, owner in ((ours, mine), (theirs, tenant.users["treatment_coordinator"].id)):
        assigned = client.post(
            f"/api/leads/{lead['id']}/assign", json={"user_id": owner}, headers=tenant.headers("clinic_admin")
        )
        assert assigned.status_code == 200
    log_in(page, live_server, tenant, role="clinic_admin")
    page.goto(f"{live_server}/console/board")
    page.select_option("#board-filters select[name=owner]", str(mine))
    page.select_option("#board-filters select[name=age]", "day")
    page.click("#board-filters button[type=submit]")
    expect(page.locator("#board .card")).to_have_count(1)
    page.reload()
    assert f"owner={mine}" in page.url and "age=day" in page.url
    expect(page.locator("#board-filters select[name=owner]")).to_have_value(str(mine))
    expect(page.locator("#board-filters select[name=age]")).to_have_value("day")
    expect(page.locator("#board .card .name")).to_have_text(["Ours Doe"])


def test_front_desk_sees_no_phi_on_the_board(client, tenant, live_server, page):
    create_lead(
        client, tenant, first_name="Rosa", last_name="Diaz", patient_first_name="Mia",
        patient_last_name="Lopez", treatment_interest=["INVISALIGN"], notes="crowded teeth",
    )  # fmt: skip
    log_in(page, live_server, tenant, role="front_desk")
    page.goto(f"{live_server}/console/board")
    expect(page.locator("#board .card .name")).to_have_text(["Rosa Diaz"])
    text = page.locator("body").inner_text()
    for phi in ("Mia", "Lopez", "Invisalign", "crowded teeth"):
        assert phi not in text
    expect(page.locator("#board-filters select[name=interest]")).to_have_count(0)
    expect(page.locator("form.move")).to_have_count(0)
    expect(page.locator("#board a.move-open")).to_have_count(0)


def test_a_manager_hands_two_leads_of_a_coordinator_to_another(app, client, tenant, live_server, page):
    sick = coordinator(app, tenant, "Sam Sick")
    well = coordinator(app, tenant, "Wendy Well")
    leads = [create_lead(client, tenant, first_name=name) for name in ("Ana", "Bea", "Cid")]
    for lead in leads:
        resp = client.post(
            f"/api/leads/{lead['id']}/assign", json={"user_id": sick}, headers=tenant.headers("clinic_admin")
        )
        assert resp.status_code == 200
    log_in(page, live_server, tenant, role="clinic_admin")
    page.goto(f"{live_server}/console/team")
    row = page.locator(f"#workload tr[data-user-id='{sick}']")
    expect(row.locator(".open-leads")).to_have_text("3")
    row.get_by_role("link").click()
    page.get_by_label("Ana Doe").check()
    page.get_by_label("Bea Doe").check()
    page.select_option("#reassign-form select[name=to_user_id]", str(well))
    page.fill("#reassign-form input[name=reason]", "out sick")
    page.click("#reassign-form button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("2 leads reassigned")
    expect(page.locator(f"#workload tr[data-user-id='{well}'] .open-leads")).to_have_text("2")
    expect(page.locator(f"#workload tr[data-user-id='{sick}'] .open-leads")).to_have_text("1")
    owners = [get_lead(client, tenant, lead["id"]).get_json()["assigned_to_id"] for lead in leads]
    assert owners == [well, well, sick]


def test_a_move_to_lost_asks_why_and_takes_the_reason(client, tenant, live_server, page):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/board")
    page.locator(f"#lead-{lead['id']} a.move-open").click()
    dialog = page.locator("#move-dialog")
    expect(dialog.get_by_label("Why lost")).to_be_hidden()
    dialog.get_by_label("Move to…").select_option("lost")
    dialog.get_by_label("Why lost").select_option("CHOSE_COMPETITOR")
    dialog.get_by_role("button", name="Move").click()
    expect(page.locator(".flash")).to_contain_text(f"Lead {lead['id']} moved to lost")
    answer = get_lead(client, tenant, lead["id"]).get_json()
    assert (answer["pipeline_stage"], answer["lost_reason"]) == ("lost", "CHOSE_COMPETITOR")


def test_a_card_dropped_on_lost_asks_why_before_moving(client, tenant, live_server, page):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/board")
    card = page.locator(f"#lead-{lead['id']}")
    card.drag_to(_column(page, "lost"))
    dialog = page.locator("#move-dialog")
    expect(card.locator(".refusal")).to_have_text("Choose why, then Move.")
    expect(dialog.get_by_label("Why lost")).to_be_focused()
    assert _stage(client, tenant, lead["id"]) == "new_lead"  # nothing sent yet
    dialog.get_by_label("Why lost").select_option("NO_RESPONSE")
    dialog.get_by_role("button", name="Move").click()
    expect(_column(page, "lost").locator(f"#lead-{lead['id']}")).to_be_visible()
    assert get_lead(client, tenant, lead["id"]).get_json()["lost_reason"] == "NO_RESPONSE"
