"""The Settings section through Flask's test client (issue 77 item 2): the setup checklist a new
clinic's admin lands on until it is done or dismissed, and its steps' pages (profile and hours,
team, booking) changing the clinic through the API's schemas and use cases: each refusal a 4xx
naming the field beside it with nothing stored, another clinic's rows a 404, the lead page's warning
when the booking link would offer no time (the browser journey is in test_settings_journey.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.domains.auth.senders import identity
from app.domains.outbound.models import Notification
from app.platform import clock
from tests.availability.kit import consultation_type, provider
from tests.console.test_console_pages import csrf_of, log_in
from tests.leadkit import create_lead, set_user

GRID = {
    f"{day}_{edge}": ""
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    for edge in ("opens", "closes")
}


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def fresh(app, tenant):
    """The tenant as a clinic just created: its admin alone may log in."""
    for role, user in tenant.users.items():
        if role != "clinic_admin":
            set_user(app, user.id, active=False)
    return tenant


def verify_domain(tenant, domain: str) -> None:
    """The platform operator verifies an email domain for the tenant's clinic (as
    POST /api/platform/clinics/<id>/sender-domains does): its admin may then send from it."""
    app = tenant.app
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        identity.verify_domain(
            session=session,
            clinic_id=tenant.id,
            domain=domain,
            config=app.config["SETTINGS"],
            now=clock.now(),
        )


def _post(console, page: str, action: str, data: dict):
    token = csrf_of(console.get(page).get_data(as_text=True))
    return console.post(action, data={**data, "csrf_token": token})


def _clinic(client, tenant) -> dict:
    return client.get("/api/clinic", headers=tenant.headers()).get_json()


def test_a_new_clinics_admin_lands_on_the_checklist_which_says_what_is_missing(app, console, tenant):
    fresh(app, tenant)
    log_in(console, tenant)
    assert console.get("/console/").headers["Location"] == "/console/settings"
    html = console.get("/console/settings").get_data(as_text=True)
    assert "6 of 8 steps left" in html
    assert "Your opening hours are still our guess (Monday 08:00-17:00;" in html
    assert "Your emails go out from the platform&#39;s shared address, not your own" in html
    assert "Your texts go out from the platform&#39;s shared number" in html  # a note: texts work
    assert "Inquiries from your website&#39;s form do not reach you here yet" in html
    assert "Optional: add a webhook only if" in html  # never blocking
    for step in ("channels", "forms", "webhooks"):
        assert f'href="/console/settings/{step}"' in html
    assert "Nobody but the admins can log in yet" in html
    assert "Families cannot book yet: add a provider" in html
    assert 'href="/console/settings/booking"' in html
    assert 'href="/console/settings/cadence"' in html  # the follow-up cadence, a page of its own


def test_the_checklist_once_dismissed_no_longer_opens_first_but_stays_under_settings(console, tenant):
    log_in(console, tenant)
    assert console.get("/console/").headers["Location"] == "/console/settings"
    resp = _post(console, "/console/settings", "/console/settings/dismiss", {})
    assert resp.status_code == 303
    assert console.get("/console/").headers["Location"] == "/console/today"
    html = console.get("/console/settings").get_data(as_text=True)
    assert "Families cannot book yet" in html and 'id="dismiss"' not in html


def test_a_done_checklist_no_longer_opens_first(client, console, tenant):
    client.put("/api/clinic", json={"name": "Bright Smiles"}, headers=tenant.headers())
    (doctor,) = [provider(client, tenant)["id"]]
    consultation_type(client, tenant, [doctor])
    template = {"name": "Welcome", "channel": "sms", "body": "Hi {{ first_name }}"}
    assert client.post("/api/message-templates", json=template, headers=tenant.headers()).status_code == 201
    verify_domain(tenant, "brightsmiles.example")
    sender = {"settings": {"email_from": "hello@brightsmiles.example"}}
    assert client.put("/api/clinic", json=sender, headers=tenant.headers()).status_code == 200
    secret = {"name": "Website", "scopes": ["web_form"]}
    assert client.post("/api/signing-secrets", json=secret, headers=tenant.headers()).status_code == 201
    log_in(console, tenant)
    assert console.get("/console/").headers["Location"] == "/console/today"
    assert "Every step is done" in console.get("/console/settings").get_data(as_text=True)


@pytest.mark.parametrize("role", ["treatment_coordinator", "front_desk", "doctor"])
def test_settings_need_the_configure_permission(console, tenant, role):
    log_in(console, tenant, role)
    for path in (
        "/console/settings",
        "/console/settings/profile",
        "/console/settings/team",
        "/console/settings/booking",
        "/console/settings/channels",
        "/console/settings/forms",
        "/console/settings/webhooks",
    ):
        assert console.get(path).status_code == 403, path
    assert console.get("/console/").headers["Location"] != "/console/settings"


def test_the_week_grid_saves_the_hours_with_a_break_and_closed_days(client, console, tenant):
    log_in(console, tenant)
    week = {**GRID, "mon_opens": "09:00", "mon_closes": "12:00", "mon_opens_2": "13:00",
            "mon_closes_2": "17:00", "tue_opens": "08:30", "tue_closes": "18:00"}  # fmt: skip
    resp = _post(console, "/console/settings/profile", "/console/settings/profile",
                 {**week, "name": "Bright Smiles", "timezone": "America/Chicago", "holiday_country": "us",
                  "default_phone_region": "US"})  # fmt: skip
    assert resp.status_code == 303, resp.get_data(as_text=True)
    clinic = _clinic(client, tenant)
    assert clinic["name"] == "Bright Smiles" and clinic["timezone"] == "America/Chicago"
    assert clinic["holiday_country"] == "US"
    hours = clinic["business_hours"]
    assert hours["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]] and hours["tue"] == [["08:30", "18:00"]]
    assert hours["wed"] is None and hours["sun"] is None
    html = console.get("/console/settings/profile").get_data(as_text=True)
    assert "<legend>Monday</legend>" in html and 'name="mon_opens_2" type="time" value="13:00"' in html
    assert 'id="missing"' not in html  # the step is done


def test_refused_hours_are_said_beside_the_day_and_nothing_is_stored(client, console, tenant):
    log_in(console, tenant)
    before = _clinic(client, tenant)
    week = {**GRID, "mon_opens": "17:00", "mon_closes": "09:00"}
    resp = _post(console, "/console/settings/profile", "/console/settings/profile",
                 {**week, "name": "Renamed", "timezone": "America/Chicago"})  # fmt: skip
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="err-mon">Monday: opening 17:00 must be before closing 09:00<' in html
    assert 'value="Renamed"' in html  # what was typed stays
    after = _clinic(client, tenant)
    assert (after["name"], after["business_hours"], after["timezone"]) == (
        before["name"], before["business_hours"], before["timezone"],
    )  # fmt: skip
    bad_zone = _post(console, "/console/settings/profile", "/console/settings/profile",
                     {**GRID, "name": "Renamed", "timezone": "Mars/Olympus"})  # fmt: skip
    assert bad_zone.status_code == 422 and 'id="err-timezone"' in bad_zone.get_data(as_text=True)
    assert _clinic(client, tenant)["name"] == before["name"]


def test_a_special_day_is_added_and_removed_and_a_bad_one_refused(client, console, tenant):
    log_in(console, tenant)
    page = "/console/settings/profile"
    added = _post(
        console,
        page,
        "/console/settings/profile/special-days",
        {"date": "2030-12-24", "opens": "09:00", "closes": "12:00"},
    )
    assert added.status_code == 303
    closed = _post(console, page, "/console/settings/profile/special-days", {"date": "2030-12-25"})
    assert closed.status_code == 303
    assert _clinic(client, tenant)["business_hours"]["exceptions"] == {
        "2030-12-24": [["09:00", "12:00"]],
        "2030-12-25": [],
    }
    bad = _post(console, page, "/console/settings/profile/special-days", {"date": "2030-13-45"})
    assert bad.status_code == 422 and "not a date" in bad.get_data(as_text=True)
    none = _post(console, page, "/console/settings/profile/special-days", {"date": ""})
    assert none.status_code == 422 and 'id="err-date"' in none.get_data(as_text=True)
    removed = _post(console, page, "/console/settings/profile/special-days/remove", {"date": "2030-12-24"})
    assert removed.status_code == 303
    assert _clinic(client, tenant)["business_hours"]["exceptions"] == {"2030-12-25": []}


def _invitations(db, clinic_id: int) -> list[str]:
    with db.unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(Notification.body).where(
                    Notification.kind == "invitation", Notification.clinic_id == clinic_id
                )
            )
        )


def test_an_invitation_emails_a_set_password_link_and_the_team_step_is_done(app, client, db, console, tenant):
    fresh(app, tenant)
    log_in(console, tenant)
    resp = _post(console, "/console/settings/team", "/console/settings/team/invite",
                 {"name": "Cora Coordinator", "email": "cora@brightsmiles.example",
                  "role": "treatment_coordinator"})  # fmt: skip
    assert resp.status_code == 303, resp.get_data(as_text=True)
    users = client.get("/api/users", headers=tenant.headers()).get_json()
    (cora,) = [u for u in users if u["email"] == "cora@brightsmiles.example"]
    assert cora["role"] == "treatment_coordinator" and cora["password_set"] is False
    (body,) = _invitations(db, tenant.id)
    assert "/console/set-password#token=" in body
    html = console.get("/console/settings/team").get_data(as_text=True)
    assert "Invited, no password yet" in html and "1 invited person has not set a password yet." in html
    assert "Nobody but the admins" not in html


def test_a_refused_invitation_names_the_field_and_creates_nobody(app, client, db, console, tenant):
    log_in(console, tenant)
    count = len(client.get("/api/users", headers=tenant.headers()).get_json())
    for data, field in (
        ({"name": "Cora", "email": "not-an-email", "role": "treatment_coordinator"}, "email"),
        ({"name": "", "email": "cora@example.com", "role": "treatment_coordinator"}, "name"),
        ({"name": "Cora", "email": "cora@example.com", "role": "owner"}, "role"),
    ):
        resp = _post(console, "/console/settings/team", "/console/settings/team/invite", data)
        assert resp.status_code == 422, data
        assert f'id="err-{field}"' in resp.get_data(as_text=True), data
    taken = tenant.users["doctor"].email
    resp = _post(console, "/console/settings/team", "/console/settings/team/invite",
                 {"name": "Twin", "email": taken, "role": "doctor"})  # fmt: skip
    assert resp.status_code == 409 and 'id="err-email"' in resp.get_data(as_text=True)
    assert len(client.get("/api/users", headers=tenant.headers()).get_json()) == count
    assert _invitations(db, tenant.id) == []


def test_a_role_is_changed_and_a_user_deactivated_but_another_clinics_user_is_a_404(
    client, console, tenant, make_tenant
):
    other = make_tenant("Elsewhere")
    log_in(console, tenant)
    coordinator = tenant.users["treatment_coordinator"].id
    page = "/console/settings/team"
    assert (
        _post(
            console, page, f"/console/settings/team/users/{coordinator}", {"role": "front_desk"}
        ).status_code
        == 303
    )
    assert (
        _post(console, page, f"/console/settings/team/users/{coordinator}", {"active": "false"}).status_code
        == 303
    )
    user = client.get(f"/api/users/{coordinator}", headers=tenant.headers()).get_json()
    assert (user["role"], user["active"]) == ("front_desk", False)
    bad = _post(console, page, f"/console/settings/team/users/{coordinator}", {"role": "owner"})
    assert bad.status_code == 422 and "Role:" in bad.get_data(as_text=True)
    theirs = other.users["treatment_coordinator"].id
    assert (
        _post(console, page, f"/console/settings/team/users/{theirs}", {"active": "false"}).status_code == 404
    )
    assert _post(console, page, f"/console/settings/team/users/{theirs}/invitation", {}).status_code == 404
    assert client.get(f"/api/users/{theirs}", headers=other.headers()).get_json()["active"] is True


def test_the_assignment_policy_is_chosen_and_a_bad_one_refused(client, console, tenant):
    log_in(console, tenant)
    page = "/console/settings/team"
    assert (
        _post(
            console, page, "/console/settings/team/assignment", {"assignment_policy": "capacity"}
        ).status_code
        == 303
    )
    assert _clinic(client, tenant)["assignment_policy"] == "capacity"
    bad = _post(console, page, "/console/settings/team/assignment", {"assignment_policy": "lottery"})
    assert bad.status_code == 422 and 'id="err-assignment_policy"' in bad.get_data(as_text=True)
    assert _clinic(client, tenant)["assignment_policy"] == "capacity"


def _providers(client, tenant) -> list[dict]:
    return client.get("/api/availability/providers", headers=tenant.headers()).get_json()


def _types(client, tenant) -> list[dict]:
    return client.get("/api/availability/types", headers=tenant.headers()).get_json()


def test_a_provider_and_a_type_are_added_and_the_lead_page_warning_goes(client, console, tenant):
    lead = create_lead(client, tenant)
    log_in(console, tenant)
    warning = (
        "This family&#39;s booking link would offer no time: "
        "the clinic has no provider and no consultation type."
    )
    assert warning in console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    page = "/console/settings/booking"
    grid = {f"hours-{k}": v for k, v in GRID.items()} | {
        "hours-wed_opens": "10:00",
        "hours-wed_closes": "16:00",
    }
    resp = _post(
        console, page, "/console/settings/booking/providers", {"name": "Dr. Lee", "kind": "provider", **grid}
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    (lee,) = _providers(client, tenant)
    assert (
        lee["name"] == "Dr. Lee"
        and lee["hours"]["wed"] == [["10:00", "16:00"]]
        and lee["hours"]["mon"] is None
    )
    html = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert "would offer no time: no consultation type." in html
    resp = _post(console, page, "/console/settings/booking/types",
                 {"name": "New patient consultation", "duration_minutes": "45", "mode": "in_person",
                  "provider_ids": str(lee["id"])})  # fmt: skip
    assert resp.status_code == 303, resp.get_data(as_text=True)
    (kind,) = _types(client, tenant)
    assert (kind["duration_minutes"], kind["provider_ids"]) == (45, [lee["id"]])
    assert 'id="dead-booking-link"' not in console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    # A coordinator is warned too, and told whom to ask.
    assert (
        _post(
            console, page, f"/console/settings/booking/providers/{lee['id']}", {"active": "false"}
        ).status_code
        == 303
    )
    with client.application.test_client() as coordinator:
        log_in(coordinator, tenant, "treatment_coordinator")
        html = coordinator.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert "would offer no time: the clinic has no provider." in html and "Ask a clinic admin" in html


def test_refused_providers_and_types_name_the_field_and_store_nothing(client, console, tenant, make_tenant):
    other = make_tenant("Elsewhere")
    theirs = provider(client, other, name="Dr. Far")["id"]
    log_in(console, tenant)
    page = "/console/settings/booking"
    grid = {f"hours-{k}": v for k, v in GRID.items()}
    no_name = _post(console, page, "/console/settings/booking/providers", {"name": "", **grid})
    assert no_name.status_code == 422 and 'id="err-name"' in no_name.get_data(as_text=True)
    reversed_hours = _post(console, page, "/console/settings/booking/providers",
                           {"name": "Dr. Lee", **grid, "hours-fri_opens": "15:00",
                            "hours-fri_closes": "09:00"})  # fmt: skip
    assert reversed_hours.status_code == 422
    assert (
        'id="err-hours-fri">Friday: opening 15:00 must be before closing 09:00<'
        in reversed_hours.get_data(as_text=True)
    )
    assert _providers(client, tenant) == []
    mine = provider(client, tenant)["id"]
    for data, field in (
        ({"name": "Consult", "duration_minutes": "45"}, "provider_ids"),
        ({"name": "Consult", "duration_minutes": "2", "provider_ids": str(mine)}, "duration_minutes"),
        ({"name": "Consult", "duration_minutes": "forty", "provider_ids": str(mine)}, "duration_minutes"),
        ({"name": "Consult", "duration_minutes": "45", "provider_ids": str(theirs)}, "provider_ids"),
    ):
        resp = _post(console, page, "/console/settings/booking/types", data)
        assert resp.status_code == 422, data
        assert f'id="err-{field}"' in resp.get_data(as_text=True), data
    assert _types(client, tenant) == []
    assert (
        _post(console, page, f"/console/settings/booking/providers/{theirs}", {"active": "false"}).status_code
        == 404
    )
    their_type = consultation_type(client, other, [theirs])["id"]
    assert (
        _post(console, page, f"/console/settings/booking/types/{their_type}", {"active": "false"}).status_code
        == 404
    )
    assert _providers(client, other)[0]["active"] is True and _types(client, other)[0]["active"] is True


def test_the_booking_page_offers_its_test_link(client, console, tenant):
    log_in(console, tenant)
    html = console.get("/console/settings/booking").get_data(as_text=True)
    link = html.split('id="test-link"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert link.startswith("/book/") and client.get(link).status_code == 200


def _sources(client, tenant) -> list[dict]:
    return client.get("/api/lead-sources", headers=tenant.headers()).get_json()


def test_a_source_is_added_costed_and_deactivated_and_another_clinics_is_a_404(
    client, console, tenant, make_tenant
):
    other = make_tenant("Elsewhere")
    log_in(console, tenant)
    page = "/console/settings/sources"
    html = console.get(page).get_data(as_text=True)
    assert "No source has a monthly cost yet" in html
    added = _post(console, page, page, {"name": "Dr. Patel referrals", "category": "DOCTOR_REFERRAL",
                                        "monthly_cost": "120.50"})  # fmt: skip
    assert added.status_code == 303, added.get_data(as_text=True)
    (patel,) = [s for s in _sources(client, tenant) if s["name"] == "Dr. Patel referrals"]
    assert (patel["category"], patel["monthly_cost"], patel["is_active"]) == (
        "DOCTOR_REFERRAL",
        "120.50",
        True,
    )
    assert _post(console, page, f"{page}/{patel['id']}", {"monthly_cost": "99"}).status_code == 303
    assert _post(console, page, f"{page}/{patel['id']}", {"is_active": "false"}).status_code == 303
    (patel,) = [s for s in _sources(client, tenant) if s["id"] == patel["id"]]
    assert (patel["monthly_cost"], patel["is_active"]) == ("99.00", False)
    theirs = _sources(client, other)[0]
    assert _post(console, page, f"{page}/{theirs['id']}", {"is_active": "false"}).status_code == 404
    assert next(s for s in _sources(client, other) if s["id"] == theirs["id"])["is_active"] is True


def test_refused_sources_name_the_field_and_store_nothing(client, console, tenant):
    log_in(console, tenant)
    page = "/console/settings/sources"
    before = _sources(client, tenant)
    taken = before[0]["name"]
    for data, field, status in (
        ({"name": "", "category": "OTHER"}, "name", 422),
        ({"name": "Flyers", "category": "BILLBOARD"}, "category", 422),
        ({"name": "Flyers", "category": "PRINT_AD", "monthly_cost": "-5"}, "monthly_cost", 422),
        ({"name": "Flyers", "category": "PRINT_AD", "monthly_cost": "lots"}, "monthly_cost", 422),
        ({"name": taken, "category": "OTHER"}, "name", 409),
    ):
        resp = _post(console, page, page, data)
        assert resp.status_code == status, data
        html = resp.get_data(as_text=True)
        assert f'id="err-{field}"' in html or (status == 409 and "taken" in html), data
    bad_cost = _post(console, page, f"{page}/{before[0]['id']}", {"monthly_cost": "-1"})
    assert bad_cost.status_code == 422 and "Monthly cost:" in bad_cost.get_data(as_text=True)
    assert _sources(client, tenant) == before


def _templates(client, tenant) -> list[dict]:
    return client.get("/api/message-templates", headers=tenant.headers()).get_json()


def test_a_template_is_written_and_previewed_as_a_family_sees_it(client, console, tenant):
    log_in(console, tenant)
    page = "/console/settings/templates"
    html = console.get(page).get_data(as_text=True)
    assert "No message template yet" in html and "{{ booking_link }}" in html
    text = "Hi {{ first_name }}, book your visit with {{ clinic_name }}: {{ booking_link }}"
    resp = _post(console, page, page, {"name": "Welcome", "channel": "sms", "subject": "", "body": text})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    (welcome,) = _templates(client, tenant)
    assert (welcome["name"], welcome["channel"], welcome["body"]) == ("Welcome", "sms", text)
    html = console.get(page).get_data(as_text=True)
    assert "Hi Jane, book your visit with Smile Orthodontics:" in html
    assert "No message template yet" not in html


def test_refused_templates_name_the_field_and_store_nothing(client, console, tenant):
    log_in(console, tenant)
    page = "/console/settings/templates"
    for data, field in (
        ({"name": "Welcome", "channel": "sms", "body": "Hi {{ first_nam }}"}, "body"),
        ({"name": "Welcome", "channel": "sms", "body": "Hi {{ first_name"}, "body"),
        ({"name": "Welcome", "channel": "email", "body": "Hi"}, "subject"),
        ({"name": "", "channel": "sms", "body": "Hi"}, "name"),
        ({"name": "Welcome", "channel": "pigeon", "body": "Hi"}, "channel"),
    ):
        resp = _post(console, page, page, data)
        assert resp.status_code == 422, data
        assert f'id="err-{field}"' in resp.get_data(as_text=True), data
    assert _templates(client, tenant) == []
