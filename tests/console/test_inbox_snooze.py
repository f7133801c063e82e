"""Snoozing a conversation (issue 76 item 5): put away until a time chosen in words (later today,
tomorrow morning at the clinic's opening, next week), worked out in the clinic's zone from the clock
given; a snoozed thread leaves the inbox's Open view for the Snoozed one until its time passes or the
family writes again; Reopen ends it. The API's POST /api/leads/{id}/conversation/snooze takes an ISO
time ahead (422 naming `until` otherwise), with the same permission as resolve and reopen."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from playwright.sync_api import expect

from app.console.workspace.inbox import snoozing
from app.domains.conversations import inbox
from app.platform import clock
from tests.automation.kit import WEEKDAYS_9_TO_5, actor_of
from tests.console import test_inbox_desk
from tests.console.test_browser import log_in as browser_log_in
from tests.console.test_console_pages import csrf_of, log_in
from tests.console.test_inbox_desk import pane, two_families
from tests.conversations.test_conversations import thread
from tests.intake.test_twilio import INBOUND, signed_post, text

NEW_YORK = "America/New_York"

console, providers = test_inbox_desk.console, test_inbox_desk.providers  # its fixtures


def _snooze(client, tenant, lead_id: int, role: str = "treatment_coordinator", **body):
    return client.post(f"/api/leads/{lead_id}/conversation/snooze", json=body, headers=tenant.headers(role))


def _listed(client, tenant, status: str) -> list[str]:
    rows = client.get(f"/api/conversations?status={status}", headers=tenant.headers("treatment_coordinator"))
    assert rows.status_code == 200, rows.get_json()
    return [row["lead"]["first_name"] for row in rows.get_json()["items"]]


def test_the_choices_are_worked_out_in_the_clinics_zone_and_hours_from_the_clock_given():
    clinic = SimpleNamespace(timezone=NEW_YORK, business_hours=WEEKDAYS_9_TO_5, holiday_country=None)
    wednesday_afternoon = datetime(2030, 1, 9, 19, 0, tzinfo=UTC)  # 14:00 in New York
    until = snoozing.snooze_until(clinic, wednesday_afternoon)
    assert until["later_today"] == datetime(2030, 1, 9, 22, 0, tzinfo=UTC)  # 17:00 there
    assert until["tomorrow_morning"] == datetime(2030, 1, 10, 14, 0, tzinfo=UTC)  # Thursday 09:00
    assert until["next_week"] == datetime(2030, 1, 14, 14, 0, tzinfo=UTC)  # Monday 09:00
    friday_night = datetime(2030, 1, 12, 3, 30, tzinfo=UTC)  # Friday 22:30 there, already Saturday in UTC
    assert snoozing.snooze_until(clinic, friday_night)["tomorrow_morning"] == datetime(
        2030, 1, 14, 14, 0, tzinfo=UTC
    )  # closed at the weekend: the next opening


def test_the_api_snoozes_until_a_time_ahead_and_reopen_ends_it(app, client, tenant):
    maria, _ = two_families(app, client, tenant)
    until = (clock.now() + timedelta(days=1)).replace(microsecond=0)
    snoozed = _snooze(client, tenant, maria["id"], until=until.isoformat())
    assert snoozed.status_code == 200, snoozed.get_json()
    answer = snoozed.get_json()
    assert answer["status"] == "open" and datetime.fromisoformat(answer["snoozed_until"]) == until
    assert _listed(client, tenant, "open") == ["Ben"] and _listed(client, tenant, "snoozed") == ["Maria"]
    assert datetime.fromisoformat(thread(client, tenant, maria["id"])["snoozed_until"]) == until

    for body in ({"until": (clock.now() - timedelta(minutes=5)).isoformat()}, {}, {"until": "soon"}):
        refused = _snooze(client, tenant, maria["id"], **body)
        assert refused.status_code == 422, body
        assert "until" in str(refused.get_json()), refused.get_json()

    reopened = client.post(
        f"/api/leads/{maria['id']}/conversation/reopen", headers=tenant.headers("treatment_coordinator")
    )
    assert reopened.status_code == 200 and reopened.get_json()["snoozed_until"] is None
    assert (
        sorted(_listed(client, tenant, "open")) == ["Ben", "Maria"]
        and _listed(client, tenant, "snoozed") == []
    )


def test_who_may_snooze_as_resolve(app, client, tenant, make_tenant):
    maria, _ = two_families(app, client, tenant)
    ahead = (clock.now() + timedelta(hours=3)).isoformat()
    assert _snooze(client, tenant, maria["id"], role="front_desk", until=ahead).status_code == 403
    other = make_tenant("Other Orthodontics")
    assert _snooze(client, other, maria["id"], until=ahead).status_code == 404
    assert thread(client, tenant, maria["id"])["snoozed_until"] is None


def test_a_snooze_ends_when_its_time_passes(app, client, tenant):
    maria, _ = two_families(app, client, tenant)
    until = clock.now() + timedelta(hours=3)
    assert _snooze(client, tenant, maria["id"], until=until.isoformat()).status_code == 200
    actor = actor_of(tenant, "treatment_coordinator")
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:

        def first_names(status: str, now: datetime) -> list[str]:
            found = inbox.inbox_page(
                session=session, actor=actor, filters={"status": status}, cursor=None, limit=10, now=now
            )
            return sorted(row["lead"]["first_name"] for row in found["items"])

        assert first_names("open", clock.now()) == ["Ben"]
        later = until + timedelta(minutes=1)
        assert first_names("open", later) == ["Ben", "Maria"] and first_names("snoozed", later) == []


def test_a_coordinator_snoozes_from_the_thread_and_the_familys_message_wakes_it(
    app,
    client,
    console,
    tenant,
):
    maria, _ = two_families(app, client, tenant)
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get(f"/console/inbox/leads/{maria['id']}").get_data(as_text=True)
    form = html_lib.unescape(pane(html, "form", "snooze"))
    assert "Later today (in 3 hours)" in form and "Tomorrow morning (clinic's opening)" in form
    assert "Next week" in form

    unchosen = console.post(f"/console/inbox/leads/{maria['id']}/snooze", data={"csrf_token": csrf_of(html)})
    assert unchosen.status_code == 422 and 'id="err-until"' in unchosen.get_data(as_text=True)
    assert thread(client, tenant, maria["id"])["snoozed_until"] is None

    done = console.post(
        f"/console/inbox/leads/{maria['id']}/snooze",
        data={"csrf_token": csrf_of(html), "until": "tomorrow_morning"},
    )
    assert done.status_code == 303 and done.headers["Location"].endswith(
        f"/console/inbox/leads/{maria['id']}"
    )
    page = console.get(done.headers["Location"]).get_data(as_text=True)
    assert re.search(r"Conversation snoozed until [^<]+\.", page)
    assert 'id="snoozed-note"' in page and 'id="unsnooze"' in page
    opened = console.get("/console/inbox").get_data(as_text=True)
    assert "Maria Lopez" not in opened and "Ben Park" in opened
    snoozed = console.get("/console/inbox?status=snoozed").get_data(as_text=True)
    assert "Maria Lopez" in snoozed and "Ben Park" not in snoozed and "Snoozed until" in snoozed

    assert signed_post(client, INBOUND, text("Are you there?", sid="SMz1")).status_code == 200
    assert thread(client, tenant, maria["id"])["snoozed_until"] is None
    assert "Maria Lopez" in console.get("/console/inbox").get_data(as_text=True)


def test_snoozing_in_the_browser_with_the_keyboard(app, client, tenant, providers, live_server, page):
    maria, _ = two_families(app, client, tenant)
    browser_log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/inbox/leads/{maria['id']}")
    page.get_by_label("Snooze until").select_option(label="Next week")
    page.get_by_role("button", name="Snooze", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Conversation snoozed until")
    expect(page.locator("#snoozed-note")).to_be_visible()
    page.locator("#unsnooze").click()  # Reopen ends the snooze
    expect(page.locator(".flash")).to_have_text("Conversation reopened.")
    expect(page.locator("#snoozed-note")).to_have_count(0)
    page.goto(f"{live_server}/console/inbox")
    expect(page.locator("#inbox-rows")).to_contain_text("Maria Lopez")
