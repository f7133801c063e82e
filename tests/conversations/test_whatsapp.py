"""WhatsApp through Twilio, through the API with a real worker and the Twilio stand-in: a family's
WhatsApp message lands in the lead's thread and opens the 24-hour window; inside it a free-form
reply goes, outside it only an approved template (ContentSid + ContentVariables) or a 422 naming
content_sid; a sequence step outside the window goes as its template, or is skipped with the
reason and a task for the owner, or falls back to SMS when WhatsApp refuses it; Twilio's status
callbacks (read, failed with its code) reach the message; a STOP on WhatsApp opts out of WhatsApp."""

from __future__ import annotations

import json
import urllib.parse
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.conversations.models import ConversationMessage
from app.platform import clock
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    lead_with,
    make_sequence,
    messages_to,
    process_events,
    steps_of,
)
from tests.conversations.files import file_server
from tests.intake.test_twilio import AUTH_TOKEN, CLINIC_NUMBER, E164, PHONE, each_keyword_acts_once
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import FAST_DELIVERY, assign_sms_senders, sms_settings, use
from tests.workers import thread_worker, wait_for

INBOUND = "http://localhost/api/providers/twilio/sms"
STATUS = "http://localhost/api/providers/twilio/status"
TEMPLATE = "HX" + "0123456789abcdef" * 2
ON_WHATSAPP = f"whatsapp:{E164}"


@pytest.fixture
def twilio(app, monkeypatch):
    settings = app.config["SETTINGS"]
    with sms_provider(token=AUTH_TOKEN) as (provider, url):
        provider.numbers.add(CLINIC_NUMBER)
        use(monkeypatch, settings, **FAST_DELIVERY, **sms_settings(url, token=AUTH_TOKEN))
        yield provider


@pytest.fixture
def lead(client, tenant, twilio) -> dict:
    """A clinic open all day, texting and on WhatsApp from its own number; a lead with a phone."""
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER, whatsapp_number=CLINIC_NUMBER)
    return lead_with(client, tenant, phone=PHONE)


def post_as_twilio(client, twilio, url: str, form: dict):
    """What Twilio posts to `url`, signed by the stand-in as Twilio signs."""
    return client.post(
        urllib.parse.urlsplit(url).path,
        data=form,
        headers={"X-Twilio-Signature": twilio.signature(url, form)},
        content_type="application/x-www-form-urlencoded",
    )


def whatsapp_from_family(client, twilio, body: str, sid: str):
    form = {
        "MessageSid": sid,
        "AccountSid": "AC123",
        "From": ON_WHATSAPP,
        "To": f"whatsapp:{CLINIC_NUMBER}",
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "Jane",
        "WaId": E164.removeprefix("+"),
    }
    resp = post_as_twilio(client, twilio, INBOUND, form)
    assert resp.status_code == 200, resp.get_data(as_text=True)


def thread(client, tenant, lead_id: int) -> list[dict]:
    resp = client.get(f"/api/leads/{lead_id}/conversation", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


def reply(client, tenant, lead_id: int, **body):
    return client.post(
        f"/api/leads/{lead_id}/conversation/messages",
        json={"channel": "whatsapp", **body},
        headers=tenant.headers("treatment_coordinator"),
    )


def age_family_messages(db, lead_id: int, hours: int) -> None:
    """The family's messages were written `hours` ago (as if the test had waited that long)."""
    with db.unit_of_work() as session:
        for message in session.scalars(sa.select(ConversationMessage)):
            if message.direction == "inbound":
                message.occurred_at = clock.now() - timedelta(hours=hours)


def test_a_whatsapp_message_lands_in_the_thread_a_reply_goes_and_twilio_reports_it_read(
    app, client, db, tenant, twilio, lead
):
    whatsapp_from_family(client, twilio, "Can we come on Saturday?", sid="SMw1")
    [received] = thread(client, tenant, lead["id"])
    assert (received["channel"], received["direction"]) == ("whatsapp", "inbound")
    assert received["body"] == "Can we come on Saturday?"
    with thread_worker(app):
        resp = reply(client, tenant, lead["id"], body="Saturday at 10 works")  # inside the window
        assert resp.status_code == 201, resp.get_json()
        wait_for(lambda: twilio.whatsapp())
        wait_for(lambda: thread(client, tenant, lead["id"])[0]["status"] == "sent")
    [sent] = twilio.whatsapp()
    assert sent["To"] == ON_WHATSAPP and sent["From"] == f"whatsapp:{CLINIC_NUMBER}"
    assert sent["Body"] == "Saturday at 10 works" and "ContentSid" not in sent
    # WhatsApp's blue ticks: Twilio reports it delivered, then read.
    for state in ("delivered", "read"):
        form = {"MessageSid": sent["sid"], "MessageStatus": state, "ChannelPrefix": "whatsapp"}
        assert post_as_twilio(client, twilio, STATUS, form).status_code == 200
    items = thread(client, tenant, lead["id"])
    assert [(m["channel"], m["direction"], m["status"]) for m in items] == [
        ("whatsapp", "outbound", "read"),
        ("whatsapp", "inbound", "received"),
    ]


def test_twilio_reporting_a_whatsapp_message_failed_shows_its_error_code(app, client, tenant, twilio, lead):
    whatsapp_from_family(client, twilio, "Hi", sid="SMw1")
    with thread_worker(app):
        assert reply(client, tenant, lead["id"], body="Hello").status_code == 201
        wait_for(lambda: thread(client, tenant, lead["id"])[0]["status"] == "sent")
    [sent] = twilio.whatsapp()
    form = {"MessageSid": sent["sid"], "MessageStatus": "failed", "ErrorCode": "63016"}
    assert post_as_twilio(client, twilio, STATUS, form).status_code == 200
    shown = thread(client, tenant, lead["id"])[0]
    assert shown["status"] == "failed" and "63016" in shown["failure_reason"]
    assert inbox_channels(client, tenant, "whatsapp") == [lead["id"]]
    assert inbox_channels(client, tenant, "sms") == []


def inbox_channels(client, tenant, channel: str) -> list[int]:
    resp = client.get("/api/conversations", query_string={"channel": channel}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return [row["lead"]["id"] for row in resp.get_json()["items"]]


def test_a_reply_outside_the_window_is_a_422_naming_content_sid_unless_a_template_goes(
    app, client, db, tenant, twilio, lead
):
    # The family never wrote on WhatsApp: no window.
    refused = reply(client, tenant, lead["id"], body="Hello!")
    assert refused.status_code == 422, refused.get_json()
    assert "content_sid" in json.dumps(refused.get_json())
    bad = reply(client, tenant, lead["id"], content_sid="HX123")
    assert bad.status_code == 422 and "content_sid" in json.dumps(bad.get_json())
    with thread_worker(app):
        resp = reply(client, tenant, lead["id"], content_sid=TEMPLATE, content_variables={"1": "Jane"})
        assert resp.status_code == 201, resp.get_json()
        wait_for(lambda: twilio.whatsapp())
    [sent] = twilio.whatsapp()
    assert sent["ContentSid"] == TEMPLATE and json.loads(sent["ContentVariables"]) == {"1": "Jane"}
    assert "Body" not in sent
    assert thread(client, tenant, lead["id"])[0]["body"] == f"WhatsApp template {TEMPLATE} (1=Jane)"


def test_a_new_whatsapp_message_reopens_a_closed_window(client, db, tenant, twilio, lead):
    whatsapp_from_family(client, twilio, "Hi", sid="SMw1")
    age_family_messages(db, lead["id"], hours=30)
    closed = reply(client, tenant, lead["id"], body="Sorry for the delay")
    assert closed.status_code == 422 and "24-hour window" in json.dumps(closed.get_json())
    whatsapp_from_family(client, twilio, "Are you there?", sid="SMw2")
    assert reply(client, tenant, lead["id"], body="Yes, here").status_code == 201


def whatsapp_step(**extra) -> dict:
    return {"delay": {"amount": 0, "unit": "minutes"}, "channel": "whatsapp", **extra}


def test_a_step_outside_the_window_goes_as_its_template(app, client, db, tenant, twilio, lead):
    step = whatsapp_step(
        body="Hi {{ first_name }}!", content_sid=TEMPLATE, content_variables={"1": "Jane", "2": "Tuesday"}
    )
    sequence = make_sequence(client, tenant, [step])
    with thread_worker(app):
        enroll(client, tenant, lead["id"], sequence["id"])
        wait_for(lambda: twilio.whatsapp())
    [sent] = twilio.whatsapp()
    assert sent["To"] == ON_WHATSAPP and sent["ContentSid"] == TEMPLATE and "Body" not in sent
    assert json.loads(sent["ContentVariables"]) == {"1": "Jane", "2": "Tuesday"}
    assert [m.channel for m in messages_to(db, lead["id"])] == ["whatsapp"]


def test_a_step_inside_the_window_goes_free_form(app, client, db, tenant, twilio, lead):
    whatsapp_from_family(client, twilio, "Tell me more", sid="SMw1")
    sequence = make_sequence(
        client, tenant, [whatsapp_step(body="Hi {{ first_name }}, here it is", content_sid=TEMPLATE)]
    )
    with thread_worker(app):
        enroll(client, tenant, lead["id"], sequence["id"])
        wait_for(lambda: twilio.whatsapp())
    [sent] = twilio.whatsapp()
    assert sent["Body"] == "Hi Jane, here it is" and "ContentSid" not in sent


def test_a_step_outside_the_window_without_a_template_is_skipped_with_a_task(
    app, client, db, tenant, twilio, lead
):
    sequence = make_sequence(client, tenant, [whatsapp_step(body="Hi {{ first_name }}")])
    with thread_worker(app):
        enroll(client, tenant, lead["id"], sequence["id"])
        wait_for(lambda: steps_of(db, lead["id"])[0].status == "skipped")
    assert twilio.whatsapp() == []
    shown = client.get(f"/api/leads/{lead['id']}/automation", headers=tenant.headers())
    assert shown.status_code == 200
    assert "outside WhatsApp's 24-hour window" in shown.get_data(as_text=True)
    tasks = client.get(f"/api/leads/{lead['id']}/tasks", headers=tenant.headers()).get_json()
    [by_hand] = [t for t in tasks if t["title"].startswith("Follow up by hand")]
    assert "WhatsApp" in by_hand["title"]


def test_a_step_whatsapp_cannot_deliver_falls_back_to_sms(app, client, db, tenant, twilio, lead):
    twilio.not_on_whatsapp.add(E164)
    whatsapp_from_family(client, twilio, "Hi", sid="SMw1")  # inside the window: free-form
    step = whatsapp_step(body="Hi {{ first_name }}, any questions?", fallback_channel="sms")
    sequence = make_sequence(client, tenant, [step])
    with thread_worker(app):
        enroll(client, tenant, lead["id"], sequence["id"])
        wait_for(lambda: steps_of(db, lead["id"])[0].status != "scheduled")
        wait_for(lambda: process_events(app, db) == 0 and any(m["To"] == E164 for m in twilio.messages))
    [text] = [m for m in twilio.messages if m["To"] == E164]
    assert text["Body"].endswith("Hi Jane, any questions?")
    assert twilio.whatsapp() == []
    step_row = steps_of(db, lead["id"])[0]
    assert step_row.result["fallback_channel"] == "sms"
    assert step_row.result["fallback"] == "sent by sms after WhatsApp could not reach the family"


def test_a_stop_on_whatsapp_opts_out_of_whatsapp_only(client, db, tenant, twilio, lead):
    whatsapp_from_family(client, twilio, "STOP", sid="SMw1")
    shown = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert shown["whatsapp_opt_out"] is True and shown["sms_opt_out"] is False
    refused = reply(client, tenant, lead["id"], body="Noted")
    assert refused.status_code == 409 and "opted out of whatsapp" in refused.get_json()["message"]
    sms_reply = client.post(
        f"/api/leads/{lead['id']}/conversation/messages",
        json={"channel": "sms", "body": "Noted"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert sms_reply.status_code == 201, sms_reply.get_json()


def test_a_step_names_a_well_formed_template_only_on_whatsapp(client, tenant, twilio, lead):
    bad = make_sequence(client, tenant, [whatsapp_step(content_sid="HXnot-hex")], expect=422)
    assert "content_sid" in json.dumps(bad)
    wrong_channel = {"delay": {"amount": 0, "unit": "minutes"}, "channel": "sms", "body": "Hi"}
    other = make_sequence(client, tenant, [{**wrong_channel, "content_sid": TEMPLATE}], expect=422)
    assert "content_sid" in json.dumps(other)
    empty = make_sequence(client, tenant, [whatsapp_step()], expect=422)
    assert "body" in json.dumps(empty)


def test_a_rule_greets_a_new_lead_on_whatsapp_with_its_template(app, client, db, tenant, twilio):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER, whatsapp_number=CLINIC_NUMBER)
    action = {
        "type": "send_whatsapp",
        "body": "Thanks {{ first_name }}!",
        "content_sid": TEMPLATE,
        "content_variables": {"1": "{{ first_name }}", "2": "{{ clinic_name }}"},
    }
    rule = {"name": "WhatsApp hello", "trigger": "lead.created", "conditions": [], "actions": [action]}
    for wrong in ({"content_sid": "HX12"}, {"content_variables": ["Jane"]}):
        bad = {**rule, "actions": [{**action, **wrong}]}
        resp = client.post("/api/follow-up-rules", json=bad, headers=tenant.headers())
        assert resp.status_code == 422 and next(iter(wrong)) in json.dumps(resp.get_json())
    resp = client.post("/api/follow-up-rules", json=rule, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    with thread_worker(app):
        lead = lead_with(client, tenant, phone=PHONE)
        wait_for(lambda: twilio.whatsapp(), timeout=60)
    [sent] = twilio.whatsapp()  # a new lead never wrote on WhatsApp: its template, not the body
    assert sent["To"] == ON_WHATSAPP and sent["ContentSid"] == TEMPLATE and "Body" not in sent
    clinic = client.get("/api/clinic", headers=tenant.headers()).get_json()["name"]
    assert json.loads(sent["ContentVariables"]) == {"1": "Jane", "2": clinic}  # merge fields filled
    assert thread(client, tenant, lead["id"])[0]["channel"] == "whatsapp"


def test_an_unknown_whatsapp_sender_is_in_the_inbox_and_captured_with_its_phone(client, tenant, twilio):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER, whatsapp_number=CLINIC_NUMBER)
    whatsapp_from_family(client, twilio, "Do you treat adults?", sid="SMu1")  # no lead has this phone
    resp = client.get("/api/conversations", query_string={"view": "unassigned"}, headers=tenant.headers())
    [row] = [r for r in resp.get_json()["items"] if r["lead"] is None]
    assert row["contact"] == {"channel": "whatsapp", "address": E164}
    made = client.post(
        f"/api/conversations/{row['id']}/capture",
        json={"first_name": "Ana", "last_name": "Lopez"},
        headers=tenant.headers("front_desk"),
    )
    assert made.status_code == 201, made.get_json()
    lead = made.get_json()
    assert lead["phone"] == E164
    [message] = thread(client, tenant, lead["id"])
    assert (message["channel"], message["body"]) == ("whatsapp", "Do you treat adults?")


def test_an_image_goes_on_whatsapp_with_its_media_url_and_a_large_video_is_a_422(
    app, client, db, tenant, twilio, lead
):
    whatsapp_from_family(client, twilio, "Can you send the before and after?", sid="SMw9")
    with file_server() as files, thread_worker(app):
        photo = files.add("/smiles/before-after.png", "image/png", size=800_000)
        big = files.add("/smiles/tour.mp4", "video/mp4", size=20 * 1024 * 1024)  # over WhatsApp's 16 MB
        refused = reply(client, tenant, lead["id"], body="Our tour", media_url=big, message_type="video")
        assert refused.status_code == 422 and "media_url" in str(refused.get_json()["errors"])
        resp = reply(client, tenant, lead["id"], body="Like this", media_url=photo, message_type="image")
        assert resp.status_code == 201, resp.get_json()
        wait_for(lambda: twilio.whatsapp())
    [sent] = twilio.whatsapp()
    assert sent["To"] == ON_WHATSAPP and sent["MediaUrl"] == photo and sent["Body"] == "Like this"
    outbound = thread(client, tenant, lead["id"])[0]
    assert outbound["channel"] == "whatsapp" and outbound["media"][0]["url"] == photo


def test_a_stop_to_the_shared_whatsapp_sender_holds_in_every_clinic_that_sends_from_it(
    app, client, tenant, make_tenant, twilio, monkeypatch
):
    shared = "+14155550177"
    use(monkeypatch, app.config["SETTINGS"], whatsapp_from=shared)
    other, own = make_tenant("Other Clinic"), make_tenant("Own Number Clinic")
    configure_clinic(client, tenant)  # both on the shared WhatsApp sender
    configure_clinic(client, other)
    twilio.numbers.add("+14155550188")  # in the account the engine sends with
    assign_sms_senders(own, "+14155550188")
    configure_clinic(client, own, whatsapp_number="+14155550188")  # its own WhatsApp number
    leads = {t.id: lead_with(client, t, phone=PHONE) for t in (tenant, other, own)}

    def opted_out(t) -> bool:
        return client.get(f"/api/leads/{leads[t.id]['id']}", headers=t.headers()).get_json()[
            "whatsapp_opt_out"
        ]

    def to_shared(body: str, sid: str) -> None:
        form = {"MessageSid": sid, "AccountSid": "AC123", "From": ON_WHATSAPP, "To": f"whatsapp:{shared}",
                "Body": body, "NumMedia": "0"}  # fmt: skip
        assert post_as_twilio(client, twilio, INBOUND, form).status_code == 200

    to_shared("Hello, which clinic is this?", "SMs0")  # any other message: no clinic's, not stored
    assert all(thread(client, t, leads[t.id]["id"]) == [] for t in (tenant, other, own))
    to_shared("STOP", "SMs1")
    assert (opted_out(tenant), opted_out(other), opted_out(own)) == (True, True, False)
    to_shared("START", "SMs2")
    assert (opted_out(tenant), opted_out(other)) == (False, False)


def test_each_keyword_on_whatsapp_acts_once_on_the_clinics_number_and_the_shared_sender(
    app, client, tenant, make_tenant, twilio, lead, monkeypatch
):
    """Issue 73: a START to the shared WhatsApp sender, replayed after the family's STOP, opted them
    back in (that branch acted before its MessageSid was remembered)."""
    shared = "+14155550177"
    use(monkeypatch, app.config["SETTINGS"], whatsapp_from=shared)
    on_shared = make_tenant("Other Clinic")
    configure_clinic(client, on_shared)
    theirs = lead_with(client, on_shared, phone=PHONE)

    def to(number: str):
        def post(body: str, sid: str):
            form = {"MessageSid": sid, "AccountSid": "AC123", "From": ON_WHATSAPP, "To": f"whatsapp:{number}",
                    "Body": body, "NumMedia": "0", "WaId": E164.removeprefix("+")}  # fmt: skip
            return post_as_twilio(client, twilio, INBOUND, form)

        return post

    def opted_out(who, lead_id: int):
        return lambda: client.get(f"/api/leads/{lead_id}", headers=who.headers()).get_json()[
            "whatsapp_opt_out"
        ]

    each_keyword_acts_once(to(shared), opted_out(on_shared, theirs["id"]), "SMws")
    each_keyword_acts_once(to(CLINIC_NUMBER), opted_out(tenant, lead["id"]), "SMwo")
    before = len(thread(client, tenant, lead["id"]))
    for _ in range(2):
        assert to(CLINIC_NUMBER)("Thanks!", "SMwo-reply").status_code == 200
    assert len(thread(client, tenant, lead["id"])) == before + 1
