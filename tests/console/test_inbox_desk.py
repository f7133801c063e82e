"""The inbox beside its contact (issue 76 item 5), through Flask's test client: a thread between the
inbox's rows and the family's card, Resolve and Reopen (the console's and the API's) with the list's
Open / Resolved filter, a family's new message reopening a resolved thread, a saved reply filling the
reply box and going out merged, and who may do what (a role without lead:update, another clinic).
The layout at 390 and 1280 px is checked by the every-page browser tests (test_every_page.py)."""

from __future__ import annotations

import re

import pytest

from tests.automation.outreachkit import configure_clinic, lead_with
from tests.console.test_console_pages import csrf_of, log_in
from tests.conversations.test_conversations import thread
from tests.intake.test_twilio import AUTH_TOKEN, CLINIC_NUMBER, INBOUND, PHONE, signed_post, text
from tests.lead_messages.kit import make_template
from tests.leadkit import create_lead
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import FAST_DELIVERY, sms_settings, use
from tests.stream.kit import only_assignee
from tests.tasks.test_tasks_api import new_task

OTHER_PHONE = "+14155550177"


@pytest.fixture(autouse=True)
def providers(app, monkeypatch):
    """A fake Twilio that takes the clinic's texts and signs the families' (every test's inbound)."""
    settings = app.config["SETTINGS"]
    with sms_provider(token=AUTH_TOKEN) as (provider, url):
        provider.numbers.add(CLINIC_NUMBER)
        use(monkeypatch, settings, **FAST_DELIVERY, **sms_settings(url, token=AUTH_TOKEN))
        yield provider, settings


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def two_families(app, client, tenant) -> tuple[dict, dict]:
    """Maria (who wrote "Is Tuesday free?") and Ben (who wrote "Hello?"), both the coordinator's."""
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    only_assignee(app, tenant, "treatment_coordinator")
    maria = lead_with(client, tenant, phone=PHONE, first_name="Maria", last_name="Lopez")
    ben = create_lead(
        client, tenant, role="clinic_admin", phone="(415) 555-0177", email="ben@example.com",
        first_name="Ben", last_name="Park",
    )  # fmt: skip
    assert signed_post(client, INBOUND, text("Is Tuesday free?", sid="SMd1")).status_code == 200
    assert signed_post(client, INBOUND, text("Hello?", sid="SMd2", sender=OTHER_PHONE)).status_code == 200
    return maria, ben


def pane(html: str, tag: str, ident: str) -> str:
    found = re.search(rf'<{tag} [^>]*(?:id|class)="{ident}".*?</{tag}>', html, re.S)
    assert found, html
    return found.group(0)


def status_of(client, tenant, lead_id: int) -> str:
    return thread(client, tenant, lead_id)["status"]


def test_the_thread_sits_between_the_inbox_and_the_familys_card(app, client, console, tenant):
    maria, ben = two_families(app, client, tenant)
    new_task(client, tenant, maria["id"], title="Call about the Tuesday slot")
    log_in(console, tenant, role="treatment_coordinator")
    page = console.get(f"/console/inbox/leads/{maria['id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)

    listed = pane(html, "nav", "desk-list")
    assert "Maria Lopez" in listed and "Ben Park" in listed
    current = re.findall(r'<a href="/console/inbox/leads/(\d+)" class="who" aria-current="page">', listed)
    assert current == [str(maria["id"])]

    conversation = pane(html, "section", "conversation")
    assert "Is Tuesday free?" in conversation and "Hello?" not in conversation
    assert conversation.index("Is Tuesday free?") < conversation.index('name="body"')  # the box after it

    card = pane(html, "aside", "family")
    assert "About this family" in card and "Maria Lopez" in card and "Ben" not in card
    assert 'href="tel:' in card and "555" in card
    assert 'href="mailto:jane@example.com"' in card
    assert "<dd>New Lead</dd>" in card  # the stage, in words
    assert tenant.users["treatment_coordinator"].name in card  # the owner, by name
    assert "Call about the Tuesday slot" in card
    assert f'href="/console/leads/{maria["id"]}"' in card
    assert "Back to the inbox" in html and 'href="#family"' in html

    ben_card = pane(
        console.get(f"/console/inbox/leads/{ben['id']}").get_data(as_text=True), "aside", "family"
    )
    assert "Ben Park" in ben_card and "mailto:ben@example.com" in ben_card and "No open task" in ben_card
    assert console.get("/console/inbox").get_data(as_text=True).count('aria-current="page"') >= 1
    assert 'class="desk' not in console.get("/console/inbox").get_data(as_text=True)  # still the list


def test_resolve_and_reopen_and_the_open_and_resolved_filters(app, client, console, tenant):
    maria, _ = two_families(app, client, tenant)
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get(f"/console/inbox/leads/{maria['id']}").get_data(as_text=True)
    assert ">Resolve</button>" in html and ">Reopen</button>" not in html

    done = console.post(f"/console/inbox/leads/{maria['id']}/resolve", data={"csrf_token": csrf_of(html)})
    assert done.status_code == 303
    assert status_of(client, tenant, maria["id"]) == "resolved"
    opened = console.get("/console/inbox").get_data(as_text=True)
    assert "Maria Lopez" not in opened and "Ben Park" in opened  # "Open" is the default
    resolved = console.get("/console/inbox?status=resolved").get_data(as_text=True)
    assert "Maria Lopez" in resolved and "Ben Park" not in resolved
    assert re.search(r'aria-current="page" class="current">Resolved<', resolved)

    html = console.get(f"/console/inbox/leads/{maria['id']}").get_data(as_text=True)
    assert ">Reopen</button>" in html and "Resolved: nothing is left to answer" in html
    again = console.post(f"/console/inbox/leads/{maria['id']}/reopen", data={"csrf_token": csrf_of(html)})
    assert again.status_code == 303
    assert status_of(client, tenant, maria["id"]) == "open"
    assert "Maria Lopez" in console.get("/console/inbox?status=open").get_data(as_text=True)
    assert "No resolved conversations here" in console.get("/console/inbox?status=resolved").get_data(
        as_text=True
    )
    assert console.get("/console/inbox?status=closed").status_code == 422


def test_the_api_resolves_and_reopens_and_the_inbox_filters_by_status(app, client, tenant):
    maria, _ = two_families(app, client, tenant)
    headers = tenant.headers("treatment_coordinator")
    resolved = client.post(f"/api/leads/{maria['id']}/conversation/resolve", headers=headers)
    assert resolved.status_code == 200, resolved.get_json()
    assert resolved.get_json()["status"] == "resolved" and resolved.get_json()["lead_id"] == maria["id"]
    rows = client.get("/api/conversations?status=resolved", headers=headers).get_json()["items"]
    assert [row["lead"]["id"] for row in rows] == [maria["id"]]
    every = client.get("/api/conversations", headers=headers).get_json()["items"]
    assert len(every) == 2  # without `status`, both
    reopened = client.post(f"/api/leads/{maria['id']}/conversation/reopen", headers=headers)
    assert reopened.status_code == 200 and reopened.get_json()["status"] == "open"
    quiet = lead_with(client, tenant, phone="(415) 555-0199", first_name="Quiet")
    nothing = client.post(f"/api/leads/{quiet['id']}/conversation/resolve", headers=headers)
    assert nothing.status_code == 409  # no conversation yet: nothing to resolve


def test_a_familys_new_message_reopens_a_resolved_conversation(app, client, console, tenant):
    maria, _ = two_families(app, client, tenant)
    headers = tenant.headers("treatment_coordinator")
    assert client.post(f"/api/leads/{maria['id']}/conversation/resolve", headers=headers).status_code == 200
    assert status_of(client, tenant, maria["id"]) == "resolved"
    assert signed_post(client, INBOUND, text("One more question", sid="SMd3")).status_code == 200
    assert status_of(client, tenant, maria["id"]) == "open"
    log_in(console, tenant, role="treatment_coordinator")
    assert "Maria Lopez" in console.get("/console/inbox").get_data(as_text=True)


def test_a_saved_reply_fills_the_box_and_goes_out_merged(app, client, console, tenant):
    maria, _ = two_families(app, client, tenant)
    template = make_template(client, tenant, name="Tuesday", body="Hi {{ first_name }}, Tuesday at 3 works.")
    make_template(client, tenant, name="Email hello", channel="email", subject="Hello", body="Hi there")
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get(f"/console/inbox/leads/{maria['id']}").get_data(as_text=True)
    box = pane(html, "div", "saved-reply")
    assert "Tuesday (Text)" in box and "Email hello" not in box  # the chosen channel's (she wrote by text)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    form = {"csrf_token": csrf_of(html), "idempotency_key": key, "channel": "sms", "body": ""}

    filled = console.post(
        f"/console/inbox/leads/{maria['id']}/reply",
        data={**form, "template_id": str(template["id"]), "use_template": "1"},
    )
    assert filled.status_code == 200
    page = filled.get_data(as_text=True)
    assert re.search(r"<textarea[^>]*>Hi {{ first_name }}, Tuesday at 3 works.</textarea>", page), page
    assert f'name="idempotency_key" value="{key}"' in page  # still one send
    assert thread(client, tenant, maria["id"])["items"][0]["direction"] == "inbound"  # nothing sent yet

    sent = console.post(
        f"/console/inbox/leads/{maria['id']}/reply",
        data={**form, "body": "Hi {{ first_name }}, Tuesday at 3 works."},
    )
    assert sent.status_code == 303
    assert thread(client, tenant, maria["id"])["items"][0]["body"] == "Hi Maria, Tuesday at 3 works."

    unchosen = console.post(f"/console/inbox/leads/{maria['id']}/reply", data={**form, "use_template": "1"})
    assert unchosen.status_code == 422 and 'id="err-template_id"' in unchosen.get_data(as_text=True)
    assert "Choose a saved reply to use." in unchosen.get_data(as_text=True)


def test_a_role_without_lead_update_may_not_resolve(app, client, console, tenant):
    maria, _ = two_families(app, client, tenant)
    resp = client.post(f"/api/leads/{maria['id']}/conversation/resolve", headers=tenant.headers("front_desk"))
    assert resp.status_code == 403
    log_in(console, tenant, role="front_desk")
    html = console.get(f"/console/inbox/leads/{maria['id']}").get_data(as_text=True)
    assert ">Resolve</button>" not in html and "Use this reply" not in html
    refused = console.post(f"/console/inbox/leads/{maria['id']}/resolve", data={"csrf_token": csrf_of(html)})
    assert refused.status_code == 403
    assert status_of(client, tenant, maria["id"]) == "open"


def test_another_clinics_conversation_is_a_404(app, client, console, tenant, make_tenant):
    maria, _ = two_families(app, client, tenant)
    template = make_template(client, tenant, name="Tuesday")
    other = make_tenant("Other Orthodontics")
    resolve = f"/api/leads/{maria['id']}/conversation/resolve"
    assert client.post(resolve, headers=other.headers("treatment_coordinator")).status_code == 404
    log_in(console, other, role="treatment_coordinator")
    token = csrf_of(console.get("/console/inbox").get_data(as_text=True))
    assert console.get(f"/console/inbox/leads/{maria['id']}").status_code == 404
    assert (
        console.post(f"/console/inbox/leads/{maria['id']}/resolve", data={"csrf_token": token}).status_code
        == 404
    )
    fill = {"csrf_token": token, "template_id": str(template["id"]), "use_template": "1", "channel": "sms"}
    assert console.post(f"/console/inbox/leads/{maria['id']}/reply", data=fill).status_code == 404
    assert status_of(client, tenant, maria["id"]) == "open"
