"""Twilio as it really calls: form-encoded, X-Twilio-Signature, routed by the clinic's own number."""

from __future__ import annotations

import urllib.parse

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from app.domains.activities.models import LeadActivity
from app.platform.errors import Conflict
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    enrollment_row,
    lead_with,
    make_sequence,
    process_events,
    sms,
)
from tests.leadkit import create_lead
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import FAST_DELIVERY, all_in, assign_sms_senders, queue_sms, rows, sms_settings, use
from tests.workers import thread_worker, wait_for

AUTH_TOKEN = "secret-token"  # the fake provider's account token: Twilio signs with the same one
CLINIC_NUMBER = "+14155550100"
PHONE, E164 = "(415) 555-2671", "+14155552671"
INBOUND = "http://localhost/api/providers/twilio/sms"
STATUS = "http://localhost/api/providers/twilio/status"


@pytest.fixture
def twilio(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, sms_token=AUTH_TOKEN)
    return settings


def signed_post(
    client,
    url: str,
    form: dict,
    *,
    tamper: dict | None = None,
    token: str = AUTH_TOKEN,
    public: str | None = None,
):
    """Post `form` as Twilio does to `url`, signed over `public` (the URL Twilio was given, behind a
    proxy) or `url` and the form; `tamper` changes fields after signing."""
    signature = RequestValidator(token).compute_signature(public or url, form)
    sent = {**form, **(tamper or {})}
    parts = urllib.parse.urlsplit(url)
    return client.post(
        parts.path + (f"?{parts.query}" if parts.query else ""),
        data=sent,
        headers={"X-Twilio-Signature": signature},
        content_type="application/x-www-form-urlencoded",
    )


def text(body: str, sid: str = "SM1", sender: str = E164, to: str = CLINIC_NUMBER) -> dict:
    return {"MessageSid": sid, "AccountSid": "AC123", "From": sender, "To": to, "Body": body, "NumMedia": "0"}


def inbound_notes(db, lead_id: int) -> list[str]:
    with db.unit_of_work() as session:
        stmt = sa.select(LeadActivity).where(
            LeadActivity.lead_id == lead_id, LeadActivity.direction == "INBOUND"
        )
        return [a.notes for a in session.scalars(stmt.order_by(LeadActivity.id))]


def lead_of(client, tenant, lead_id: int) -> dict:
    return client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()


def test_a_twilio_signed_inbound_sms_is_accepted_and_a_tampered_one_is_401(client, db, tenant, twilio):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    resp = signed_post(client, INBOUND, text("Yes, please call me"))
    assert resp.status_code == 200 and resp.mimetype == "text/xml"
    assert b"<Response" in resp.data and b"<Message" not in resp.data  # empty TwiML: nothing sent back
    assert inbound_notes(db, lead["id"]) == ["Yes, please call me"]
    # Body changed on the way, wrong token, no signature: refused and nothing stored.
    assert signed_post(client, INBOUND, text("hi", sid="SM2"), tamper={"Body": "STOP"}).status_code == 401
    assert signed_post(client, INBOUND, text("hi", sid="SM3"), token="other-token").status_code == 401
    assert client.post("/api/providers/twilio/sms", data=text("hi", sid="SM4")).status_code == 401
    assert inbound_notes(db, lead["id"]) == ["Yes, please call me"]
    # Twilio retries the same message: recorded once.
    assert signed_post(client, INBOUND, text("Yes, please call me")).status_code == 200
    assert inbound_notes(db, lead["id"]) == ["Yes, please call me"]


def test_inbound_sms_is_routed_by_the_number_it_was_sent_to(client, db, tenant, make_tenant, twilio):
    other = make_tenant()
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    configure_clinic(client, other, sms_number="+14155550199")
    mine = lead_with(client, tenant, phone=PHONE)
    theirs = lead_with(client, other, phone=PHONE)
    assert signed_post(client, INBOUND, text("for the other clinic", to="+14155550199")).status_code == 200
    assert inbound_notes(db, theirs["id"]) == ["for the other clinic"] and inbound_notes(db, mine["id"]) == []
    # A number that is no clinic's: answered (so Twilio stops) and nothing stored.
    assert signed_post(client, INBOUND, text("lost", sid="SM9", to="+14155550188")).status_code == 200
    assert inbound_notes(db, mine["id"]) == [] and len(inbound_notes(db, theirs["id"])) == 1
    # Two clinics cannot text from one number: replies could not be routed. It is not the other's
    # to choose, and the operator cannot assign it to both.
    resp = client.put(
        "/api/clinic", json={"settings": {"sms_number": CLINIC_NUMBER}}, headers=other.headers()
    )
    assert resp.status_code == 422 and "sms_number" in resp.get_json()["message"]
    with pytest.raises(Conflict):
        assign_sms_senders(other, CLINIC_NUMBER)
    bad = client.put(
        "/api/clinic", json={"settings": {"sms_number": "415-555-0100"}}, headers=tenant.headers()
    )
    assert bad.status_code == 422 and "sms_number" in str(bad.get_json())


def test_stop_from_a_closed_leads_number_stops_a_sibling_leads_sequence(app, client, db, tenant, twilio):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    closed = lead_with(client, tenant, phone=PHONE, first_name="Old")
    lost = client.post(
        f"/api/leads/{closed['id']}/lost", json={"reason": "RELOCATED"}, headers=tenant.headers()
    )
    assert lost.status_code == 200, lost.get_json()
    sibling = create_lead(
        client, tenant, role="clinic_admin", phone=PHONE, first_name="Sam", email="sam@example.com"
    )
    made = enroll(
        client, tenant, sibling["id"], make_sequence(client, tenant, [sms(amount=1, unit="days")])["id"]
    )
    assert signed_post(client, INBOUND, text("Stop", sid="SM-stop")).status_code == 200
    assert lead_of(client, tenant, closed["id"])["sms_opt_out"] is True
    assert lead_of(client, tenant, sibling["id"])["sms_opt_out"] is True
    process_events(app, db)
    row = enrollment_row(db, made["id"])
    assert (row.status, row.end_reason) == ("unenrolled", "opted_out")
    # START opts the number back in, for every lead with it.
    assert signed_post(client, INBOUND, text("start", sid="SM-start")).status_code == 200
    assert not lead_of(client, tenant, closed["id"])["sms_opt_out"]
    assert not lead_of(client, tenant, sibling["id"])["sms_opt_out"]


def test_help_is_answered_with_the_clinics_help_text(client, db, tenant, twilio):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    default = signed_post(client, INBOUND, text("HELP", sid="SM-h1"))
    assert default.status_code == 200 and b"reply STOP" in default.data
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER, sms_help_text="Smile Ortho: call 415 555 0100")
    custom = signed_post(client, INBOUND, text("help", sid="SM-h2"))
    assert b"<Message>Smile Ortho: call 415 555 0100</Message>" in custom.data
    assert not lead_of(client, tenant, lead["id"])["sms_opt_out"]


def test_sms_goes_from_the_clinics_number_and_status_callbacks_update_it(
    app, client, db, tenant, monkeypatch
):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    with sms_provider(token=AUTH_TOKEN) as (provider, url):
        use(
            monkeypatch,
            app.config["SETTINGS"],
            **FAST_DELIVERY,
            **sms_settings(url, token=AUTH_TOKEN),
        )
        ids = queue_sms(app, tenant, 2)
        with thread_worker(app):
            wait_for(lambda: all_in(db, ids, {"sent"}), timeout=60)
    assert {m["From"] for m in provider.messages} == {CLINIC_NUMBER}
    delivered, undelivered = rows(db, ids)
    ok = {"MessageSid": delivered.provider_message_id, "MessageStatus": "delivered", "AccountSid": "AC123"}
    assert signed_post(client, STATUS, ok).status_code == 200
    failed = {
        "MessageSid": undelivered.provider_message_id,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "AccountSid": "AC123",
    }
    assert signed_post(client, STATUS, failed, tamper={"MessageStatus": "delivered"}).status_code == 401
    assert signed_post(client, STATUS, failed).status_code == 200
    delivered, undelivered = rows(db, ids)
    assert delivered.status == "sent" and delivered.delivered_at is not None
    assert undelivered.status == "failed" and "30003" in undelivered.last_error


def test_a_replayed_start_after_a_stop_leaves_the_number_opted_out(client, db, tenant, twilio):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    assert signed_post(client, INBOUND, text("START", sid="SM-start-1")).status_code == 200
    assert signed_post(client, INBOUND, text("STOP", sid="SM-stop-1")).status_code == 200
    assert lead_of(client, tenant, lead["id"])["sms_opt_out"] is True
    # The earlier START, captured and sent again exactly as Twilio signed it: answered, and ignored.
    replay = signed_post(client, INBOUND, text("START", sid="SM-start-1"))
    assert replay.status_code == 200 and b"<Message" not in replay.data
    assert lead_of(client, tenant, lead["id"])["sms_opt_out"] is True
    # A new START (a new MessageSid) still opts the number back in.
    assert signed_post(client, INBOUND, text("START", sid="SM-start-2")).status_code == 200
    assert lead_of(client, tenant, lead["id"])["sms_opt_out"] is False


def test_a_replayed_stop_after_a_start_leaves_the_number_opted_in(client, db, tenant, twilio):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    assert signed_post(client, INBOUND, text("STOP", sid="SM-stop-1")).status_code == 200
    assert signed_post(client, INBOUND, text("START", sid="SM-start-1")).status_code == 200
    assert signed_post(client, INBOUND, text("STOP", sid="SM-stop-1")).status_code == 200
    assert lead_of(client, tenant, lead["id"])["sms_opt_out"] is False


def each_keyword_acts_once(post, opted_out, prefix: str) -> None:
    """Every keyword branch delivered twice (Twilio's retry, or a captured request replayed as it was
    signed): the second delivery changes nothing. `post(body, sid)` answers Twilio's request;
    `opted_out()` is what the lead's page shows."""
    assert b"<Message" in post("HELP", f"{prefix}-help").data
    assert b"<Message" not in post("HELP", f"{prefix}-help").data  # not answered twice
    for body, sid in [("START", "start-1"), ("STOP", "stop-1"), ("START", "start-1")]:
        assert post(body, f"{prefix}-{sid}").status_code == 200
    assert opted_out() is True  # the START replayed did not undo the later STOP
    for body, sid in [("START", "start-2"), ("STOP", "stop-1")]:
        assert post(body, f"{prefix}-{sid}").status_code == 200
    assert opted_out() is False  # nor the STOP replayed the later START


def test_each_keyword_to_a_clinics_number_or_the_shared_one_acts_once(
    client, db, tenant, make_tenant, twilio, monkeypatch
):
    use(monkeypatch, twilio, sms_from=SHARED)
    on_shared = make_tenant()
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    mine, theirs = lead_with(client, tenant, phone=PHONE), lead_with(client, on_shared, phone=PHONE)
    for to, who, lead, prefix in [(CLINIC_NUMBER, tenant, mine, "SMo"), (SHARED, on_shared, theirs, "SMs")]:
        each_keyword_acts_once(
            lambda body, sid, to=to: signed_post(client, INBOUND, text(body, sid=sid, to=to)),
            lambda who=who, lead=lead: lead_of(client, who, lead["id"])["sms_opt_out"],
            prefix,
        )
    notes = inbound_notes(db, mine["id"])
    assert signed_post(client, INBOUND, text("See you", sid="SMo-reply")).status_code == 200
    assert signed_post(client, INBOUND, text("See you", sid="SMo-reply")).status_code == 200
    assert inbound_notes(db, mine["id"]) == [*notes, "See you"]


SHARED = "+15550000000"  # SMS_FROM: the sender of every clinic without its own


def test_stop_and_start_to_the_shared_number_apply_in_every_clinic_sending_from_it(
    client, db, tenant, make_tenant, twilio, monkeypatch
):
    use(monkeypatch, twilio, sms_from=SHARED)
    also_shared, own_number = make_tenant(), make_tenant()
    configure_clinic(client, own_number, sms_number=CLINIC_NUMBER)
    mine = lead_with(client, tenant, phone=PHONE)
    theirs = lead_with(client, also_shared, phone=PHONE)
    separate = lead_with(client, own_number, phone=PHONE)  # texted from its own number, not SHARED
    stop = signed_post(client, INBOUND, text("STOP", sid="SM-shared-stop", to=SHARED))
    assert stop.status_code == 200
    assert lead_of(client, tenant, mine["id"])["sms_opt_out"] is True
    assert lead_of(client, also_shared, theirs["id"])["sms_opt_out"] is True
    assert lead_of(client, own_number, separate["id"])["sms_opt_out"] is False
    # A reply that is no keyword, to a phone no clinic texted from the shared number: not a lead's,
    # it waits in the operator's queue (test_shared_sender_replies.py).
    assert signed_post(client, INBOUND, text("who is this?", sid="SM-shared-q", to=SHARED)).status_code == 200
    assert inbound_notes(db, mine["id"]) == [] and inbound_notes(db, theirs["id"]) == []
    help_ = signed_post(client, INBOUND, text("HELP", sid="SM-shared-h", to=SHARED))
    assert b"Reply STOP" in help_.data
    assert signed_post(client, INBOUND, text("unstop", sid="SM-shared-start", to=SHARED)).status_code == 200
    assert lead_of(client, tenant, mine["id"])["sms_opt_out"] is False
    assert lead_of(client, also_shared, theirs["id"])["sms_opt_out"] is False


SHARED_NUMBER = "+14155550123"  # SMS_FROM as a real number, one the schema takes as a clinic's
PLATFORM_TOKEN = "platform-operator-token-0123456789abcdef"


def test_a_stop_to_the_shared_number_opts_the_family_out_in_every_clinic_whatever_one_claimed(
    client, db, tenant, make_tenant, twilio, monkeypatch
):
    """Two clinics send from the shared SMS_FROM and a family enquired at both. One clinic's admin
    tries to make the shared number its own: refused. Even a claim a database holds from before
    (recorded as assigned, as the 0045 migration records what clinics held) routes nothing to it:
    a STOP to the shared number opts the family out in both, START back in both, and a reply is
    stored in neither (neither texted the family from it: the operator's queue keeps it)."""
    use(monkeypatch, twilio, sms_from=SHARED_NUMBER)
    claimer, other = tenant, make_tenant()
    claim = client.put(
        "/api/clinic", json={"settings": {"sms_number": SHARED_NUMBER}}, headers=claimer.headers()
    )
    assert claim.status_code == 422 and "sms_number" in claim.get_json()["errors"]["json"]["settings"]
    with db.unit_of_work() as session:
        session.execute(
            sa.text("UPDATE clinics SET sms_number = :n WHERE id = :c"), {"n": SHARED_NUMBER, "c": claimer.id}
        )
        session.execute(
            sa.text(
                "INSERT INTO assigned_sms_senders (clinic_id, kind, sender, assigned_at) "
                "VALUES (:c, 'number', :n, CURRENT_TIMESTAMP)"
            ),
            {"n": SHARED_NUMBER, "c": claimer.id},
        )
    mine = lead_with(client, claimer, phone=PHONE)
    theirs = lead_with(client, other, phone=PHONE)
    assert signed_post(client, INBOUND, text("STOP", sid="SM-c-stop", to=SHARED_NUMBER)).status_code == 200
    assert lead_of(client, claimer, mine["id"])["sms_opt_out"] is True
    assert lead_of(client, other, theirs["id"])["sms_opt_out"] is True
    reply = text("Is Tuesday OK for my son?", sid="SM-c-reply", to=SHARED_NUMBER)
    assert signed_post(client, INBOUND, reply).status_code == 200
    assert inbound_notes(db, mine["id"]) == [] and inbound_notes(db, theirs["id"]) == []
    assert signed_post(client, INBOUND, text("START", sid="SM-c-start", to=SHARED_NUMBER)).status_code == 200
    assert lead_of(client, claimer, mine["id"])["sms_opt_out"] is False
    assert lead_of(client, other, theirs["id"])["sms_opt_out"] is False


def test_the_operator_assigns_a_number_the_admin_chooses_it_and_texts_to_it_go_to_that_clinic(
    client, db, tenant, make_tenant, twilio, monkeypatch
):
    use(monkeypatch, twilio, platform_token=PLATFORM_TOKEN)
    operator = {"Authorization": f"Bearer {PLATFORM_TOKEN}"}
    other = make_tenant()
    senders = f"/api/platform/clinics/{tenant.id}/sms-senders"
    assert client.post(senders, json={"sender": CLINIC_NUMBER}, headers=operator).status_code == 201
    chosen = client.put(
        "/api/clinic", json={"settings": {"sms_number": CLINIC_NUMBER}}, headers=tenant.headers()
    )
    assert chosen.status_code == 200, chosen.get_json()
    mine = lead_with(client, tenant, phone=PHONE)
    theirs = lead_with(client, other, phone=PHONE)
    assert signed_post(client, INBOUND, text("See you Tuesday", sid="SM-a1")).status_code == 200
    assert inbound_notes(db, mine["id"]) == ["See you Tuesday"] and inbound_notes(db, theirs["id"]) == []
    # Taken back by the operator: the number is no clinic's, and a text to it is stored nowhere.
    assert client.delete(f"{senders}/{CLINIC_NUMBER}", headers=operator).status_code == 204
    assert signed_post(client, INBOUND, text("Hello?", sid="SM-a2")).status_code == 200
    assert inbound_notes(db, mine["id"]) == ["See you Tuesday"] and inbound_notes(db, theirs["id"]) == []


def test_a_text_to_a_messaging_service_pool_goes_to_the_clinic_holding_the_service(
    client, db, tenant, make_tenant, twilio
):
    pool = "MG" + "c" * 32
    other = make_tenant()
    configure_clinic(client, other, sms_number="+14155550199")
    configure_clinic(client, tenant, sms_messaging_service_sid=pool)
    mine = lead_with(client, tenant, phone=PHONE)
    theirs = lead_with(client, other, phone=PHONE)
    # A pool number the clinic never named: Twilio says which Service it belongs to.
    stop = {**text("STOP", sid="SM-pool", to="+14155550142"), "MessagingServiceSid": pool}
    assert signed_post(client, INBOUND, stop).status_code == 200
    assert lead_of(client, tenant, mine["id"])["sms_opt_out"] is True
    assert lead_of(client, other, theirs["id"])["sms_opt_out"] is False
