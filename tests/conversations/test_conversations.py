"""A lead's conversation through the API: Twilio's and SendGrid's inbound posts, a reply by hand
delivered by a real worker to the SMS stand-in, read marks per staff member, the team inbox, an
unknown sender's thread linked to a lead, and the PHI policy on message texts."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.platform.audit.models import AuditEvent
from app.platform.stream.models import StreamEvent
from tests.automation.outreachkit import configure_clinic, enroll, lead_with, make_sequence, sms
from tests.intake.test_sendgrid_inbound import SECRET, post_parse, reply_address
from tests.intake.test_twilio import AUTH_TOKEN, CLINIC_NUMBER, INBOUND, PHONE, STATUS, signed_post, text
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import FAST_DELIVERY, sms_settings, use
from tests.workers import thread_worker, wait_for

QUOTED = (
    "Yes, Tuesday works for us.\n\n"
    "On Mon, Nov 23, 2026 at 9:00 AM Smile Ortho <x@y.com> wrote:\n> Would Tuesday work?\n"
)


@pytest.fixture
def providers(app, monkeypatch):
    settings = app.config["SETTINGS"]
    with sms_provider(token=AUTH_TOKEN) as (provider, url):
        provider.numbers.add(CLINIC_NUMBER)
        use(monkeypatch, settings, **FAST_DELIVERY, **sms_settings(url, token=AUTH_TOKEN))
        use(monkeypatch, settings, sendgrid_inbound_secret=SECRET, email_inbound_domain="reply.example")
        yield provider, settings


def thread(client, tenant, lead_id: int, role: str = "clinic_admin", **query) -> dict:
    resp = client.get(f"/api/leads/{lead_id}/conversation", query_string=query, headers=tenant.headers(role))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def inbox(client, tenant, role: str = "clinic_admin", **query) -> list[dict]:
    resp = client.get("/api/conversations", query_string=query, headers=tenant.headers(role))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


def stream_events(db, user_id: int, lead_id: int) -> list[StreamEvent]:
    with db.unit_of_work() as session:
        stmt = sa.select(StreamEvent).where(StreamEvent.user_id == user_id, StreamEvent.lead_id == lead_id)
        return list(session.scalars(stmt.order_by(StreamEvent.id)))


def test_every_message_of_a_thread_once_in_order_across_sms_and_email(app, client, db, tenant, providers):
    provider, settings = providers
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    sequence = make_sequence(client, tenant, [sms(body="Hi {{ first_name }}, any questions?")])
    with thread_worker(app):
        # An automated follow-up goes first.
        enroll(client, tenant, lead["id"], sequence["id"])
        wait_for(lambda: [m["status"] for m in thread(client, tenant, lead["id"])["items"]] == ["sent"])
        # The family texts back; Twilio delivers it twice.
        for _ in range(2):
            assert (
                signed_post(client, INBOUND, text("Do you take our insurance?", sid="SMa")).status_code == 200
            )
        # A coordinator answers from the thread, on the family's channel; the client retries it.
        headers = {**tenant.headers("treatment_coordinator"), "Idempotency-Key": "reply-1"}
        for _ in range(2):
            resp = client.post(
                f"/api/leads/{lead['id']}/conversation/messages",
                json={"body": "We do, see you soon"},
                headers=headers,
            )
            assert resp.status_code == 201, resp.get_json()
            assert resp.get_json()["channel"] == "sms"
        # The family answers by email above the quoted history.
        assert (
            post_parse(client, reply_address(settings, lead["id"]), headers="", text=QUOTED).status_code
            == 200
        )
        wait_for(lambda: thread(client, tenant, lead["id"])["items"][1]["status"] == "sent")
    items = thread(client, tenant, lead["id"])["items"]
    assert [(m["direction"], m["channel"]) for m in items] == [
        ("inbound", "email"),
        ("outbound", "sms"),
        ("inbound", "sms"),
        ("outbound", "sms"),
    ]
    assert [m["body"] for m in items] == [
        "Yes, Tuesday works for us.",
        "We do, see you soon",
        "Do you take our insurance?",
        "Hi Jane, any questions?",
    ]
    assert items[0]["full_body"] == QUOTED[:20_000] and "wrote:" in items[0]["full_body"]
    assert items[1]["automated"] is False and items[1]["sender"].startswith("user:")
    assert items[3]["automated"] is True and items[3]["sender"] == "system" and items[3]["origin"]
    assert all(
        m["Body"].endswith(text)
        for m, text in zip(provider.messages, ("questions?", "see you soon"), strict=True)
    )
    assert len(provider.messages) == 2  # the automated one and the reply, once each
    # Twilio reports the reply delivered: the thread says so, and so does the owner's live stream.
    sid = provider.messages[1]["sid"]
    assert signed_post(client, STATUS, {"MessageSid": sid, "MessageStatus": "delivered"}).status_code == 200
    assert thread(client, tenant, lead["id"])["items"][1]["status"] == "delivered"
    owner = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["assigned_to_id"]
    assert owner is not None
    stream = stream_events(db, owner, lead["id"])
    assert [e.type for e in stream].count("conversation.message") == 4
    assert [e.data["status"] for e in stream if e.type == "conversation.status"] == ["delivered"]
    assert not any("body" in e.data for e in stream)  # ids, channel and status: never the text
    # Paged newest first with an opaque cursor: the same messages, once each.
    first = thread(client, tenant, lead["id"], limit=2)
    rest = thread(client, tenant, lead["id"], limit=2, cursor=first["next_cursor"])
    assert [m["id"] for m in first["items"] + rest["items"]] == [m["id"] for m in items]
    assert rest["next_cursor"] is None
    assert client.get(
        f"/api/leads/{lead['id']}/conversation?cursor=nonsense", headers=tenant.headers()
    ).status_code in (400, 422)


def test_unread_counts_are_each_staff_members_and_follow_reads(client, db, tenant, make_tenant, providers):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    signed_post(client, INBOUND, text("Hello?", sid="SM1"))
    signed_post(client, INBOUND, text("Anyone there?", sid="SM2"))
    assert thread(client, tenant, lead["id"])["unread"] == 2
    row = inbox(client, tenant, unread="true")[0]
    assert row["lead"]["id"] == lead["id"] and row["unread"] == 2 and row["waiting_since"] is not None
    assert row["last_message"]["preview"] == "Anyone there?"
    first_id = thread(client, tenant, lead["id"])["items"][1]["id"]
    resp = client.post(
        f"/api/leads/{lead['id']}/conversation/read", json={"message_id": first_id}, headers=tenant.headers()
    )
    assert resp.status_code == 200 and resp.get_json()["unread"] == 1
    client.post(f"/api/leads/{lead['id']}/conversation/read", json={}, headers=tenant.headers())
    assert inbox(client, tenant, unread="true") == []
    reads = stream_events(db, tenant.users["clinic_admin"].id, lead["id"])
    assert [e.type for e in reads].count("conversation.read") == 2  # the reader's other screens follow
    # Another staff member has read nothing.
    assert inbox(client, tenant, "treatment_coordinator", unread="true")[0]["unread"] == 2
    # Front desk sees the thread but no text of it.
    desk = thread(client, tenant, lead["id"], role="front_desk")
    assert len(desk["items"]) == 2 and all("body" not in m for m in desk["items"])
    with db.unit_of_work() as session:  # every read of a thread is audited, with whether it carried PHI
        reads = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "lead.conversation.read"))
        by_desk = [e for e in reads if e.actor == f"user:{tenant.users['front_desk'].id}"]
        assert len(by_desk) == 1 and by_desk[0].after == {"phi": False}
    assert "preview" not in inbox(client, tenant, "front_desk")[0]["last_message"]
    # The views: the owner's, nobody's.
    owner = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["assigned_to_id"]
    owner_role = next(role for role, user in tenant.users.items() if user.id == owner) if owner else None
    if owner_role:
        assert [r["id"] for r in inbox(client, tenant, owner_role, view="mine")] == [row["id"]]
        assert inbox(client, tenant, view="unassigned") == []
    assert inbox(client, tenant, channel="email") == []
    # Another clinic's lead: its conversation is a 404.
    other = make_tenant()
    assert client.get(f"/api/leads/{lead['id']}/conversation", headers=other.headers()).status_code == 404
    assert inbox(client, other) == []
    assert (
        client.post(
            f"/api/conversations/{row['id']}/link", json={"lead_id": lead["id"]}, headers=other.headers()
        ).status_code
        == 404
    )


def test_an_unknown_senders_text_is_in_the_inbox_and_is_linked_to_a_lead(client, tenant, providers):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    stranger = "+14155559876"
    for _ in range(2):
        signed_post(client, INBOUND, text("Hi, I saw your ad", sid="SMx", sender=stranger))
    rows = inbox(client, tenant, view="unassigned")
    assert len(rows) == 1 and rows[0]["lead"] is None
    assert rows[0]["contact"] == {"channel": "sms", "address": stranger} and rows[0]["unread"] == 1
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    resp = client.post(
        f"/api/conversations/{rows[0]['id']}/link", json={"lead_id": lead["id"]}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    assert [m["body"] for m in thread(client, tenant, lead["id"])["items"]] == ["Hi, I saw your ad"]
    assert all(row["lead"] is not None for row in inbox(client, tenant))
    again = client.post(
        f"/api/conversations/{rows[0]['id']}/link", json={"lead_id": lead["id"]}, headers=tenant.headers()
    )
    assert again.status_code == 404


def test_an_unknown_senders_text_is_captured_as_a_new_lead_with_its_thread(client, tenant, providers):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    stranger = "+14155559877"
    signed_post(client, INBOUND, text("Do you do Invisalign for teens?", sid="SMc", sender=stranger))
    row = next(r for r in inbox(client, tenant, view="unassigned") if r["lead"] is None)
    resp = client.post(
        f"/api/conversations/{row['id']}/capture",
        json={"first_name": "Ana", "last_name": "Lopez"},
        headers=tenant.headers("front_desk"),
    )
    assert resp.status_code == 201, resp.get_json()
    lead = resp.get_json()
    assert lead["phone"] == stranger and lead["first_name"] == "Ana"
    assert [m["channel"] for m in thread(client, tenant, lead["id"])["items"]] == ["sms"]
    again = client.post(
        f"/api/conversations/{row['id']}/capture",
        json={"first_name": "A", "last_name": "B"},
        headers=tenant.headers(),
    )
    assert again.status_code == 404


def test_a_reply_the_provider_refuses_is_failed_in_the_thread_with_its_reason(
    app, client, db, tenant, providers
):
    provider, _ = providers
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    provider.invalid_numbers.add("+14155552671")
    resp = client.post(
        f"/api/leads/{lead['id']}/conversation/messages",
        json={"channel": "sms", "body": "Are you free Tuesday?"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert resp.status_code == 201, resp.get_json()
    with thread_worker(app):
        wait_for(lambda: thread(client, tenant, lead["id"])["items"][0]["status"] == "failed")
    message = thread(client, tenant, lead["id"])["items"][0]
    assert message["failure_reason"]
    owner = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["assigned_to_id"]
    statuses = [
        e.data["status"] for e in stream_events(db, owner, lead["id"]) if e.type == "conversation.status"
    ]
    assert statuses == ["failed"]
