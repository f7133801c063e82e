"""The navigation's search box: its matches (the API's search, through the console's login and
permission checks; a front desk user sees what the API shows it), and in Debian's Chromium, found and
opened with the keyboard alone: type, arrow down, Enter lands on the lead page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from app.platform.roles import ROLE_PERMISSIONS, Permission, Role
from tests.browser import serious_violations
from tests.console.test_browser import log_in as log_in_browser
from tests.console.test_console_pages import log_in
from tests.console.test_every_page import DESK, PHONE, _wider_than_the_screen
from tests.leadkit import create_lead


def _option_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'id="nav-search-option-(\d+)"', html)]


def _family(client, tenant, **fields) -> dict:
    return create_lead(
        client,
        tenant,
        first_name="Thanh",
        last_name="Nguyen",
        phone="212-555-0199",
        patient_first_name="Kim",
        patient_last_name="Pham",
        patient_relationship="CHILD",
        **fields,
    )


def test_anonymous_users_are_sent_to_login_and_roles_that_may_not_read_leads_are_refused(app, tenant):
    with app.test_client() as anonymous:
        answer = anonymous.get("/console/search?q=nguyen")
        assert answer.status_code == 302 and "/console/login" in answer.headers["Location"]
    for role in tenant.users:
        with app.test_client() as console:
            log_in(console, tenant, role)
            may_read = Permission.READ in ROLE_PERMISSIONS[Role(role)]
            assert console.get("/console/search?q=nguyen").status_code == (200 if may_read else 403), role
            has_box = (
                'id="nav-search"'
                in console.get("/console/bulk-jobs" if may_read else "/console/analytics").text
            )
            assert has_box == may_read, role


def test_the_matches_are_the_apis_and_a_patients_name_only_for_who_may_see_it(
    app, client, tenant, make_tenant
):
    family = _family(client, tenant)
    other = make_tenant("Other Orthodontics")
    _family(client, other)  # the same family at another clinic: never shown here
    with app.test_client() as console:
        log_in(console, tenant, "treatment_coordinator")
        html = console.get("/console/search?q=(212) 555").text
        assert _option_ids(html) == [family["id"]]
        assert "Kim Pham" in html and "Thanh Nguyen" in html
        assert _option_ids(console.get("/console/search?q=pham").text) == [family["id"]]
        assert _option_ids(console.get("/console/search?q=n").text) == []  # too little to search
    with app.test_client() as console:
        log_in(console, tenant, "front_desk")
        html = console.get("/console/search?q=nguyen").text
        assert _option_ids(html) == [family["id"]]
        assert "+12125550199" in html and "Kim" not in html and "Pham" not in html
        assert _option_ids(console.get("/console/search?q=pham").text) == []


def test_a_family_found_and_opened_with_the_keyboard_alone(client, tenant, live_server, page):
    create_lead(client, tenant, first_name="Maria", last_name="Garcia", phone="(415) 555-0134")
    family = _family(client, tenant)
    log_in_browser(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/today")
    page.locator("main").click(position={"x": 1, "y": 1})  # nowhere in particular
    page.keyboard.press("/")
    box = page.locator("#nav-search")
    expect(box).to_be_focused()
    page.keyboard.type("555 0")  # both families' phones
    options = page.locator("#nav-search-results [role=option]")
    expect(options).to_have_count(2)
    expect(box).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")  # the newest: the Nguyens
    expect(box).to_have_attribute("aria-activedescendant", f"nav-search-option-{family['id']}")
    page.keyboard.press("Escape")
    expect(box).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("ArrowDown")  # opens the list again on the first match
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/console/leads/{family['id']}$"))
    expect(page.locator("main")).to_contain_text("Nguyen")


def test_the_open_list_fits_a_phone_and_axe_finds_nothing_serious(client, tenant, live_server, page):
    _family(client, tenant)
    log_in_browser(page, live_server, tenant, role="front_desk")
    for size in (PHONE, DESK):
        page.set_viewport_size(size)
        page.goto(f"{live_server}/console/today")
        page.locator("#nav-search").fill("nguyen")
        expect(page.locator("#nav-search-results [role=option]")).to_have_count(1)
        expect(page.locator("#nav-search-results")).to_be_visible()
        assert serious_violations(page) == []
        assert not _wider_than_the_screen(page)
        page.locator("#nav-search").fill("zzzz-nobody")
        expect(page.locator("#nav-search-status")).to_have_text("No lead matches “zzzz-nobody”")
        expect(page.locator("#nav-search-results")).to_be_hidden()
