"""The Settings pages of what a clinic connects (issue 77 item 2), through Flask's test client: its
channels (the SMS number and email domain the platform operator set up, read only; which of them
the clinic sends from; WhatsApp; Instagram, whose token Meta is asked about), its website's form
(the snippet, a signing secret shown once), its webhooks (a secret shown once, deliveries in words)
and the message templates' editing, deleting and preview as typed. Every change goes through the
API's schemas and use cases: a refusal is said beside its field with nothing stored, another
clinic's record is a 404, and a role without lead:configure is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

import pytest

from app.devtools.instagram import GraphStandIn
from app.domains.auth.signing import KEY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.console.test_console_pages import csrf_of, log_in
from tests.console.test_settings_pages import _post, verify_domain
from tests.leadkit import create_lead
from tests.outbound.kit import assign_sms_senders, use
from tests.webhooks.test_webhooks import Receiver, deliveries, process_events, run_attempts

CHANNELS, FORMS, WEBHOOKS, TEMPLATES = (
    f"/console/settings/{page}" for page in ("channels", "forms", "webhooks", "templates")
)
OURS, POOL, STRANGER = "+14155550100", "MG" + "a" * 32, "+14155550177"
ACCOUNT = "17841400000000001"


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _clinic_settings(client, tenant) -> dict:
    return client.get("/api/clinic", headers=tenant.headers()).get_json()["settings"]


def _html(resp) -> str:
    return resp.get_data(as_text=True)


# --- channels -----------------------------------------------------------------------------------------


def test_the_channels_page_says_what_the_clinic_sends_from_and_whom_to_ask(console, tenant):
    log_in(console, tenant)
    html = _html(console.get(CHANNELS))
    assert 'id="missing"' in html and "ask the company that runs your Follow-up Engine to verify" in html
    assert "Your texts go out from the platform&#39;s shared number" in html
    assert 'id="sms_sender"' not in html  # nothing assigned: nothing to choose
    assert "No email domain of yours is verified yet" in html
    assert "No Instagram account is connected" in html
    assert "WhatsApp is not set up for your clinic yet" in html  # no shared WhatsApp sender either


def test_an_assigned_number_is_chosen_and_one_not_assigned_is_refused_beside_the_field(
    client, console, tenant, make_tenant
):
    other = make_tenant("Elsewhere")
    assign_sms_senders(tenant, OURS, POOL)
    assign_sms_senders(other, STRANGER)
    log_in(console, tenant)
    html = _html(console.get(CHANNELS))
    assert f'<option value="{OURS}">' in html and "A pool of numbers" in html
    chosen = _post(console, CHANNELS, f"{CHANNELS}/sms", {"sms_sender": OURS})
    assert chosen.status_code == 303, _html(chosen)
    assert _clinic_settings(client, tenant)["sms_number"] == OURS
    html = _html(console.get(CHANNELS))
    assert "Yes: your texts go from it" in html and f'<option value="{OURS}" selected>' in html
    assert "Your texts go out from the platform&#39;s shared number" not in html  # the note is gone
    for refused in (STRANGER, "+1415"):  # another clinic's number; no number at all
        resp = _post(console, CHANNELS, f"{CHANNELS}/sms", {"sms_sender": refused})
        assert resp.status_code == 422, refused
        assert 'id="err-sms_sender"' in _html(resp), refused
    assert _clinic_settings(client, tenant)["sms_number"] == OURS
    assert _post(console, CHANNELS, f"{CHANNELS}/sms", {"sms_sender": POOL}).status_code == 303
    settings = _clinic_settings(client, tenant)
    assert (settings["sms_messaging_service_sid"], settings["sms_number"]) == (POOL, None)
    assert _post(console, CHANNELS, f"{CHANNELS}/sms", {"sms_sender": ""}).status_code == 303
    settings = _clinic_settings(client, tenant)
    assert (settings["sms_messaging_service_sid"], settings["sms_number"]) == (None, None)


def test_the_email_address_is_on_a_verified_domain_and_the_step_is_then_done(
    client, console, tenant, make_tenant
):
    other = make_tenant("Elsewhere")
    verify_domain(other, "elsewhere.example")
    log_in(console, tenant)
    for address, why in (
        ("hello@brightsmiles.example", "not verified for this clinic"),
        ("hello@elsewhere.example", "not verified for this clinic"),  # another clinic's domain
        ("not an address", "email"),
    ):
        resp = _post(console, CHANNELS, f"{CHANNELS}/email", {"email_from": address})
        assert resp.status_code == 422, address
        said = re.search(r'id="err-email_from">([^<]*)<', _html(resp))
        assert said and why in said.group(1).lower(), (address, said)
        assert f'value="{address}"' in _html(resp)  # what was typed stays
    assert "email_from" not in _clinic_settings(client, tenant)
    verify_domain(tenant, "brightsmiles.example")
    html = _html(console.get(CHANNELS))
    assert "brightsmiles.example" in html and "choose the address they go from" in html
    saved = _post(
        console,
        CHANNELS,
        f"{CHANNELS}/email",
        {"email_from": "hello@brightsmiles.example", "email_from_name": "Bright Smiles"},
    )
    assert saved.status_code == 303, _html(saved)
    settings = _clinic_settings(client, tenant)
    assert (settings["email_from"], settings["email_from_name"]) == (
        "hello@brightsmiles.example",
        "Bright Smiles",
    )
    html = _html(console.get(CHANNELS))
    assert 'id="missing"' not in html and "your emails go from it" in html
    checklist = _html(console.get("/console/settings"))
    assert 'data-step="channels" class="done"' in checklist


def test_whatsapp_goes_from_an_assigned_number_or_the_shared_sender(client, console, tenant):
    assign_sms_senders(tenant, OURS, POOL)
    log_in(console, tenant)
    page = _html(console.get(CHANNELS))
    assert f'<option value="{POOL}"' not in page.split('id="whatsapp_number"')[1]  # a pool is no sender
    assert _post(console, CHANNELS, f"{CHANNELS}/whatsapp", {"whatsapp_number": OURS}).status_code == 303
    assert _clinic_settings(client, tenant)["whatsapp_number"] == OURS
    assert f"Your WhatsApp messages go from your number {OURS}." in _html(console.get(CHANNELS))
    refused = _post(console, CHANNELS, f"{CHANNELS}/whatsapp", {"whatsapp_number": STRANGER})
    assert refused.status_code == 422 and 'id="err-whatsapp_number"' in _html(refused)
    assert _clinic_settings(client, tenant)["whatsapp_number"] == OURS


@pytest.fixture
def graph(app, monkeypatch):
    """Meta's Graph API, as the local stand-in: whose account each token is."""
    stand_in = GraphStandIn().start()
    use(monkeypatch, app.config["SETTINGS"], instagram_graph_url=stand_in.url)
    yield stand_in
    stand_in.stop()


def test_instagram_connects_with_the_accounts_own_token_and_meta_s_refusal_is_beside_it(
    client, console, tenant, make_tenant, graph
):
    other = make_tenant("Elsewhere")
    graph.accounts[ACCOUNT] = "IGQWR-secret-abcd"
    graph.accounts["17841400000000777"] = "IGQWR-token-of-another-account"
    log_in(console, tenant)
    for token, why in (
        ("not-a-real-token", "Meta does not accept this token"),
        ("IGQWR-token-of-another-account", f"this token is not account {ACCOUNT}&#39;s"),
    ):
        resp = _post(
            console, CHANNELS, f"{CHANNELS}/instagram", {"account_id": ACCOUNT, "access_token": token}
        )
        assert resp.status_code == 422, token
        assert f'id="err-access_token">{why}<' in _html(resp)
        assert token not in _html(resp)  # a token typed is never drawn back
    bad_id = _post(console, CHANNELS, f"{CHANNELS}/instagram", {"account_id": "x1", "access_token": "t" * 10})
    assert bad_id.status_code == 422 and 'id="err-account_id"' in _html(bad_id)
    assert client.get("/api/integrations/instagram", headers=tenant.headers()).status_code == 404
    graph.fail_token_checks = [(500, 1)]
    down = _post(
        console,
        CHANNELS,
        f"{CHANNELS}/instagram",
        {"account_id": ACCOUNT, "access_token": "IGQWR-secret-abcd"},
    )
    assert down.status_code == 503 and "Instagram could not be asked" in _html(down)
    connected = _post(
        console,
        CHANNELS,
        f"{CHANNELS}/instagram",
        {"account_id": ACCOUNT, "access_token": "IGQWR-secret-abcd"},
    )
    assert connected.status_code == 303, _html(connected)
    html = _html(console.get(CHANNELS))
    assert ACCOUNT in html and "****abcd" in html and "IGQWR-secret-abcd" not in html
    assert _post(console, CHANNELS, f"{CHANNELS}/instagram/disconnect", {}).status_code == 303
    assert client.get("/api/integrations/instagram", headers=tenant.headers()).status_code == 404
    graph.accounts["17841400000000999"] = "IGQWR-their-own"  # another clinic's account: not to be taken
    theirs = {"account_id": "17841400000000999", "access_token": "IGQWR-their-own"}
    assert client.put("/api/integrations/instagram", json=theirs, headers=other.headers()).status_code == 200
    taken = _post(console, CHANNELS, f"{CHANNELS}/instagram", theirs)
    assert taken.status_code == 409
    assert 'id="err-account_id">17841400000000999 is connected to another clinic<' in _html(taken)


# --- the website's form -----------------------------------------------------------------------------------


def _signed_form(client, key_id: str, secret: str, submission: str):
    """An inquiry signed as the snippet's relay signs it: HMAC-SHA256 of "{ts}.POST.{path}.{body}"."""
    path, ts = "/api/capture/web-form", str(int(time.time()))
    body = json.dumps({"submission_id": submission, "name": "Jane Doe", "phone": "(415) 555-2671"}).encode()
    signature = hmac.new(secret.encode(), f"{ts}.POST.{path}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {KEY_ID_HEADER: key_id, TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature}
    return client.post(path, data=body, headers=headers, content_type="application/json")


def test_a_form_secret_is_shown_once_and_signs_the_websites_inquiries(client, console, tenant):
    log_in(console, tenant)
    html = _html(console.get(FORMS))
    assert "do not reach you here yet" in html and 'id="legacy"' in html
    assert "&lt;form method=&#34;post&#34; action=&#34;/followup-inquiry.php&#34;&gt;" in html
    assert "http://localhost" in html and "/api/capture/web-form" in html  # where the relay sends it
    made = _post(console, FORMS, f"{FORMS}/secrets", {"name": "Website"})
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    shown = _html(made)
    secret = re.search(r'id="new-secret">(fss_[^<]+)<', shown).group(1)
    key_id = re.search(r"<code>(fsk_\w+)</code>", shown).group(1)
    assert f"$keyId  = &#39;{key_id}&#39;;" in shown  # the snippet names the key id, never the secret
    assert shown.count(secret) == 1
    again = _html(console.get(FORMS))
    assert secret not in again and key_id in again and 'id="missing"' not in again
    assert 'id="legacy"' not in again  # the old single secret is retired with the first one
    assert _signed_form(client, key_id, secret, "f-1").status_code == 201
    refused = _post(console, FORMS, f"{FORMS}/secrets", {"name": ""})
    assert refused.status_code == 422 and 'id="err-name"' in _html(refused)
    listed = client.get("/api/signing-secrets", headers=tenant.headers()).get_json()
    assert [s["name"] for s in listed] == ["Website"]


def test_a_form_secret_is_replaced_and_stopped_but_not_another_clinics(client, console, tenant, make_tenant):
    other = make_tenant("Elsewhere")
    mine = {"name": "Website", "scopes": ["web_form"]}
    first = client.post("/api/signing-secrets", json=mine, headers=tenant.headers()).get_json()
    phone = client.post(
        "/api/signing-secrets", json={"name": "Phones", "scopes": ["call"]}, headers=tenant.headers()
    ).get_json()
    theirs = client.post("/api/signing-secrets", json=mine, headers=other.headers()).get_json()
    log_in(console, tenant)
    replaced = _post(console, FORMS, f"{FORMS}/secrets/{first['id']}/replace", {})
    assert replaced.status_code == 200, _html(replaced)
    new_secret = re.search(r'id="new-secret">(fss_[^<]+)<', _html(replaced)).group(1)
    assert new_secret != first["secret"] and "(replaced: works until" in _html(replaced)
    assert _signed_form(client, first["key_id"], first["secret"], "f-old").status_code == 201  # a day more
    for secret_id in (theirs["id"], phone["id"]):  # another clinic's; another integration's
        for action in ("replace", "revoke"):
            assert _post(console, FORMS, f"{FORMS}/secrets/{secret_id}/{action}", {}).status_code == 404
    assert _signed_form(client, theirs["key_id"], theirs["secret"], "f-theirs").status_code == 201
    listed = client.get("/api/signing-secrets", headers=tenant.headers()).get_json()
    successor = next(s for s in listed if s["replaced_by_id"] is None and s["name"] == "Website")
    assert _post(console, FORMS, f"{FORMS}/secrets/{successor['id']}/revoke", {}).status_code == 303
    assert _signed_form(client, successor["key_id"], new_secret, "f-new").status_code == 401
    assert "do not reach you here yet" in _html(console.get(FORMS))


# --- webhooks -------------------------------------------------------------------------------------------


@pytest.fixture
def receiver():
    r = Receiver(failures=1)
    yield r
    r.close()


def test_a_webhook_is_added_with_its_secret_shown_once_and_its_deliveries_said_in_words(
    app, client, db, console, tenant, receiver
):
    log_in(console, tenant)
    html = _html(console.get(WEBHOOKS))
    assert "Optional: add a webhook only if" in html and "A lead becomes a patient (converted)" in html
    added = _post(
        console, WEBHOOKS, WEBHOOKS, {"url": receiver.url, "event_types": ["lead.created", "lead.lost"]}
    )
    assert added.status_code == 200 and added.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-secret">(whsec_[^<]+)<', _html(added)).group(1)
    (hook,) = client.get("/api/webhooks", headers=tenant.headers()).get_json()
    assert (hook["url"], hook["event_types"]) == (receiver.url, ["lead.created", "lead.lost"])
    page = _html(console.get(WEBHOOKS))
    assert secret not in page and "Told when: A new lead arrives; A lead is marked lost." in page
    assert "Nothing sent to it yet." in page
    create_lead(client, tenant)
    process_events(app, db)
    assert "Waiting to be sent" in _html(console.get(WEBHOOKS))
    [job] = deliveries(db)
    run_attempts(app, db, job, limit=1)
    assert "Not delivered yet: tried 1 time; their server answered 500, trying again" in _html(
        console.get(WEBHOOKS)
    )
    run_attempts(app, db, job)
    assert "Delivered (answered 204)" in _html(console.get(WEBHOOKS))
    assert receiver.accepted  # signed with the secret shown once
    headers, body = receiver.accepted[0]
    stamp, signature = (part.split("=", 1)[1] for part in headers["X-Followup-Signature"].split(","))
    assert signature == hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_a_refused_webhook_names_the_field_and_another_clinics_is_a_404(client, console, tenant, make_tenant):
    other = make_tenant("Elsewhere")
    theirs = client.post(
        "/api/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["lead.created"]},
        headers=other.headers(),
    ).get_json()
    log_in(console, tenant)
    for data, field in (
        ({"url": "ftp://example.com/hook", "event_types": ["lead.created"]}, "url"),
        ({"url": "http://127.0.0.1:9/hook"}, "event_types"),
        ({"url": "http://127.0.0.1:9/hook", "event_types": ["lead.sneezed"]}, "event_types"),
    ):
        resp = _post(console, WEBHOOKS, WEBHOOKS, data)
        assert resp.status_code == 422, data
        assert f'id="err-{field}"' in _html(resp), data
    kept = _post(console, WEBHOOKS, WEBHOOKS, {"url": "ftp://x", "event_types": ["lead.lost"]})
    assert 'name="event_types" value="lead.lost" checked' in _html(kept)  # what was ticked stays
    assert client.get("/api/webhooks", headers=tenant.headers()).get_json() == []
    assert _post(console, WEBHOOKS, f"{WEBHOOKS}/{theirs['id']}/remove", {}).status_code == 404
    assert len(client.get("/api/webhooks", headers=other.headers()).get_json()) == 1
    mine = client.post(
        "/api/webhooks",
        json={"url": "http://127.0.0.1:9/mine", "event_types": ["lead.lost"]},
        headers=tenant.headers(),
    ).get_json()
    assert _post(console, WEBHOOKS, f"{WEBHOOKS}/{mine['id']}/remove", {}).status_code == 303
    assert client.get("/api/webhooks", headers=tenant.headers()).get_json() == []


def test_every_webhook_event_has_words():
    from app.console import wording
    from app.domains.webhooks.schemas import EVENT_TYPES

    assert set(EVENT_TYPES) <= set(wording.WEBHOOK_EVENTS)


# --- message templates ----------------------------------------------------------------------------------


def _templates(client, tenant) -> list[dict]:
    return client.get("/api/message-templates", headers=tenant.headers()).get_json()


def _template(client, tenant, **fields) -> dict:
    body = {"name": "Welcome", "channel": "sms", "body": "Hi {{ first_name }}"} | fields
    resp = client.post("/api/message-templates", json=body, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_a_draft_is_previewed_as_a_family_will_read_it_and_nothing_is_saved(console, client, tenant):
    log_in(console, tenant)
    html = _html(console.get(TEMPLATES))
    assert 'data-insert="{{ booking_link }}" hidden' in html  # the picker: shown by its script
    assert "settings/merge_fields.js" in html and "their own link to book a consultation" in html
    text = "Hi {{ first_name }}, pick a time: {{ booking_link }}"
    shown = _post(console, TEMPLATES, f"{TEMPLATES}/preview", {"name": "", "channel": "sms", "body": text})
    assert shown.status_code == 200, _html(shown)
    said = _html(shown).split('id="draft-preview"')[1]
    assert "Hi Jane, pick a time: http://localhost" in said and "/book/l/sample-link" in said
    assert f">{text}</textarea>" in _html(shown)  # what was typed stays, to be saved
    assert _templates(client, tenant) == []
    no_subject = _post(console, TEMPLATES, f"{TEMPLATES}/preview", {"channel": "email", "body": "Hi"})
    assert no_subject.status_code == 422 and 'id="err-subject"' in _html(no_subject)


def test_a_template_is_edited_and_deleted_and_a_bad_edit_is_refused_beside_its_field(
    client, console, tenant, make_tenant
):
    other = make_tenant("Elsewhere")
    mine, theirs = _template(client, tenant), _template(client, other)
    log_in(console, tenant)
    page = f"{TEMPLATES}/{mine['id']}"
    html = _html(console.get(TEMPLATES))
    assert f'href="{page}"' in html
    edit = _html(console.get(page))
    assert 'id="template-subject"' not in edit and "Hi Jane" in edit  # a text: no subject
    bad = _post(console, page, page, {"name": "Welcome", "body": "Hi {{ first_nam }}"})
    assert bad.status_code == 422 and 'id="err-body"' in _html(bad) and "first_nam" in _html(bad)
    assert _post(console, page, page, {"name": "", "body": "Hi"}).status_code == 422
    previewed = _post(
        console, page, f"{page}/preview", {"name": "Welcome", "body": "Hello {{ clinic_name }}"}
    )
    assert previewed.status_code == 200 and "Hello Smile Orthodontics" in _html(previewed)
    assert _templates(client, tenant)[0]["body"] == "Hi {{ first_name }}"
    saved = _post(console, page, page, {"name": "Welcome back", "body": "Hello {{ first_name }}"})
    assert saved.status_code == 303, _html(saved)
    (changed,) = _templates(client, tenant)
    assert (changed["name"], changed["body"], changed["channel"]) == (
        "Welcome back",
        "Hello {{ first_name }}",
        "sms",
    )
    there = f"{TEMPLATES}/{theirs['id']}"
    assert console.get(there).status_code == 404
    for action in (there, f"{there}/preview", f"{there}/delete"):
        assert _post(console, page, action, {"name": "Mine now", "body": "x"}).status_code == 404, action
    assert _templates(client, other)[0]["name"] == "Welcome"
    assert console.get(f"{there}/delete").status_code == 404
    # Delete asks first: the list and the edit page link to a page saying what deleting does.
    assert f'href="{page}/delete"' in _html(console.get(TEMPLATES)) and f'href="{page}/delete"' in edit
    asked = _html(console.get(f"{page}/delete"))
    assert "Delete the template Welcome back?" in asked and "skip that message" in asked
    assert _templates(client, tenant) != []  # asking deleted nothing
    deleted = _post(console, f"{page}/delete", f"{page}/delete", {})
    assert deleted.status_code == 303 and _templates(client, tenant) == []
    assert "Template deleted" in _html(console.get(TEMPLATES))


def test_an_email_templates_subject_is_edited_and_cannot_be_emptied(client, console, tenant):
    made = _template(client, tenant, name="Visit", channel="email", subject="Your visit", body="Hi")
    log_in(console, tenant)
    page = f"{TEMPLATES}/{made['id']}"
    emptied = _post(console, page, page, {"name": "Visit", "subject": "", "body": "Hi"})
    assert emptied.status_code == 422 and 'id="err-subject"' in _html(emptied)
    saved = _post(console, page, page, {"name": "Visit", "subject": "See you {{ first_name }}", "body": "Hi"})
    assert saved.status_code == 303
    assert _templates(client, tenant)[0]["subject"] == "See you {{ first_name }}"


# --- who may -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["treatment_coordinator", "front_desk", "doctor"])
def test_the_connection_pages_and_their_forms_need_the_configure_permission(client, app, tenant, role):
    made = _template(client, tenant)
    with app.test_client() as console:
        log_in(console, tenant, role)
        for path in (CHANNELS, FORMS, WEBHOOKS, f"{TEMPLATES}/{made['id']}"):
            assert console.get(path).status_code == 403, path
        token = csrf_of(_html(console.get(console.get("/console/").headers["Location"])))  # their home's
        for action, data in (
            (f"{CHANNELS}/email", {"email_from": "a@b.example"}),
            (f"{CHANNELS}/instagram", {"account_id": ACCOUNT, "access_token": "x" * 10}),
            (f"{FORMS}/secrets", {"name": "Website"}),
            (WEBHOOKS, {"url": "http://127.0.0.1:9/x", "event_types": ["lead.created"]}),
            (f"{TEMPLATES}/{made['id']}", {"name": "Mine", "body": "x"}),
            (f"{TEMPLATES}/{made['id']}/delete", {}),
        ):
            assert console.post(action, data={**data, "csrf_token": token}).status_code == 403, action
    assert client.get("/api/signing-secrets", headers=tenant.headers()).get_json() == []
    assert client.get("/api/webhooks", headers=tenant.headers()).get_json() == []
    assert _templates(client, tenant)[0]["name"] == "Welcome"
