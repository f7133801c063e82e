"""A new clinic sets itself up in the browser alone (issue 77), in Debian's Chromium: its admin sets a
password from the setup link and lands on the setup checklist, opens Saturday mornings in the week
grid, invites a coordinator, adds a provider and a consultation type, writes a text template (the
booking link put in by the merge-field picker), makes its website's form secret (shown once); the
checklist then waits only for the email domain the platform operator verifies. The clinic's own
spreadsheet (Excel's CSV: cp1252, `;`, German headings) is mapped and imported; the template is sent
to one of the imported families, whose text's link opens the booking page with free times."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.automation.outreachkit import zone_at_local_hour
from tests.booking_page.test_browser import office  # noqa: F401 - the fixture: SMS and email stand-ins
from tests.console.test_set_password_page import NEW_PASSWORD, setup_token
from tests.console.test_settings_pages import fresh
from tests.lead_messages.kit import send
from tests.leads.test_spreadsheet_import import german_csv, leads_named
from tests.workers import thread_worker, wait_for

MIDDAY = zone_at_local_hour(12)  # the family's zone: no quiet hours hold their text, whenever this runs


def test_an_admin_sets_up_a_fresh_clinic_in_the_browser_and_families_can_then_book(
    app, client, tenant, live_server, page, request, tmp_path
):
    _mailbox, texts = request.getfixturevalue("office")
    fresh(app, tenant)
    link, _token = setup_token(app, tenant, role="clinic_admin")  # as the operator's new clinic sends it
    page.goto(live_server + re.sub(r"^https?://[^/]+", "", link))
    page.fill("#password", NEW_PASSWORD)
    page.fill("#again", NEW_PASSWORD)
    page.click("text=Set my password")
    expect(page).to_have_url(f"{live_server}/console/settings")  # a new clinic's admin: the checklist
    expect(page.locator("main")).to_contain_text("6 of 8 steps left")
    expect(page.locator("#checklist")).to_contain_text("Families cannot book yet: add a provider")

    page.get_by_role("link", name="Clinic profile, hours and holidays").click()
    page.fill("#sat_opens", "09:00")
    page.fill("#sat_closes", "13:00")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_have_text("Saved.")
    expect(page.locator("#sat_closes")).to_have_value("13:00")

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Team").click()
    page.fill("#invite-name", "Cora Coordinator")
    page.fill("#invite-email", "cora@brightsmiles.example")
    page.select_option("#invite-role", "treatment_coordinator")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.locator(".flash")).to_contain_text("Invitation sent")
    expect(page.locator("#users")).to_contain_text("Cora Coordinator")

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Booking").click()
    page.fill("#provider-name", "Dr. Lee")
    expect(page.locator("#hours-sat_opens")).to_have_value("09:00")  # the clinic's hours to start with
    page.get_by_role("button", name="Add the provider").click()
    expect(page.locator(".flash")).to_have_text("Provider added.")
    page.fill("#type-name", "New patient consultation")
    page.fill("#type-duration_minutes", "45")
    page.get_by_role("checkbox", name="Dr. Lee").check()
    page.get_by_role("button", name="Add the type").click()
    expect(page.locator(".flash")).to_have_text("Consultation type added.")
    expect(page.locator("#missing")).to_have_count(0)

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Message templates").click()
    expect(page.locator("#merge-fields")).to_contain_text("their own link to book a consultation")
    page.fill("#template-name", "Welcome")
    page.fill("#template-body", "Hi {{ first_name }}, pick a time: ")
    page.get_by_role("button", name="Insert their own link to book a consultation").click()
    expect(page.locator("#template-body")).to_have_value(
        "Hi {{ first_name }}, pick a time: {{ booking_link }}"
    )
    page.get_by_role("button", name="Save the template").click()
    expect(page.locator(".flash")).to_have_text("Template saved.")
    expect(page.locator("#template-list")).to_contain_text("Hi Jane, pick a time: http")

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Website form").click()
    page.fill("#secret-name", "Website")
    page.get_by_role("button", name="Make the secret").click()
    expect(page.locator("#new-secret")).to_contain_text("fss_")
    expect(page.locator("#relay")).to_contain_text("fsk_")

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Setup checklist").click()
    expect(page.locator("main")).to_contain_text("1 of 8 steps left")  # the operator verifies the domain
    expect(page.locator("#checklist")).to_contain_text("verify your email domain")

    spreadsheet = tmp_path / "Patienten.csv"
    spreadsheet.write_bytes(german_csv())
    page.get_by_role("link", name="Import").click()
    page.set_input_files("#file", str(spreadsheet))
    page.get_by_role("button", name="Upload and check the columns").click()
    expect(page.locator("#column-0")).to_have_value("first_name")  # Vorname, guessed from its heading
    expect(page.locator("#column-2")).to_have_value("phone")  # Telefon
    page.select_option("#column-4", label="Notes")  # Behandlung holds free text
    page.get_by_role("button", name="Preview the import").click()
    # Row 7 repeats row 2's phone (a possible duplicate, still imported); row 12 has no first name.
    expect(page.locator("main")).to_contain_text(
        "20 rows. 18 ready, 1 possible duplicate, 1 would be refused"
    )
    with thread_worker(app):
        page.get_by_role("button", name="Import 19 rows").click()
        expect(page.locator("[data-status]")).to_have_attribute("data-status", "done", timeout=60_000)
        family = next(
            lead for lead in leads_named(client, tenant, "Müller-6") if lead["last_name"] == "Müller-6"
        )
        found = client.get(f"/api/leads/{family['id']}", headers=tenant.headers())
        assert found.get_json()["notes"] == "Zahnspange, ästhetisch"  # the column the admin chose
        moved = client.put(
            f"/api/leads/{family['id']}",
            json={"timezone": MIDDAY},
            headers={**tenant.headers(), "If-Match": found.headers["ETag"]},
        )
        assert moved.status_code == 200, moved.get_json()
        templates = client.get("/api/message-templates", headers=tenant.headers()).get_json()
        welcome = next(t for t in templates if t["name"] == "Welcome")
        send(client, tenant, family["id"], role="clinic_admin", channel="sms", template_id=welcome["id"])
        [text] = wait_for(lambda: [m for m in texts.messages if m["To"] == "+14155550106"], timeout=60)

    assert "Hi Björn, pick a time: http" in text["Body"], text[
        "Body"
    ]  # the clinic named first: a shared number
    link = re.search(r"https?://\S+", text["Body"]).group(0)
    page.goto(link)  # the family's link, as their phone opens it
    expect(page.locator("label.slot").first).to_be_visible()
