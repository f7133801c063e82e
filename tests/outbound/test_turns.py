"""Clinics take turns on the messages queue, transactional messages before a campaign's: through the
API, a real worker and a local SMTP relay that takes its time over each message, as real relays do
(app/platform/scheduling/turns.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from app.domains.outbound import outgoing
from app.platform import clock
from tests.automation.outreachkit import configure_clinic, email, enroll, make_sequence
from tests.leadkit import create_lead
from tests.outbound.fakes import smtp_server
from tests.outbound.kit import FAST_DELIVERY, smtp_settings, use
from tests.workers import thread_worker, wait_for

RELAY_SECONDS = 0.1  # what the relay takes over each message before it answers
CAMPAIGN = 40


@pytest.fixture
def relay(app, monkeypatch):
    settings = app.config["SETTINGS"]
    with smtp_server() as (server, port):
        server.stall_after_data = RELAY_SECONDS
        use(monkeypatch, settings, **FAST_DELIVERY, **smtp_settings(port))
        yield server


def _arrivals(server) -> list[str]:
    """The relay's messages in the order they arrived, by recipient."""
    return [message["To"] for message in server.messages]


def _hand_sent(client, tenant, lead_id: int, subject: str) -> None:
    body = {"channel": "email", "subject": subject, "body": "Shall we book your visit?"}
    resp = client.post(
        f"/api/leads/{lead_id}/messages", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert resp.status_code == 201, resp.get_json()


def _enrol(client, tenant, sequence_id: int, lead_ids: list[int]) -> None:
    resp = client.post(
        f"/api/sequences/{sequence_id}/enrollments",
        json={"lead_ids": lead_ids},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert resp.status_code == 202, resp.get_json()


def _leads(client, tenant, prefix: str, n: int) -> list[int]:
    return [
        create_lead(client, tenant, role="clinic_admin", email=f"{prefix}{i}@example.com")["id"]
        for i in range(n)
    ]


def test_another_clinic_and_a_new_message_wait_about_one_send_while_a_campaign_drains(
    app, client, make_tenant, relay
):
    clinic_a, clinic_b = make_tenant("Campaigning Clinic"), make_tenant("Quiet Clinic")
    for tenant in (clinic_a, clinic_b):
        configure_clinic(client, tenant)
    campaign_leads = _leads(client, clinic_a, "a", CAMPAIGN)
    [a_new] = _leads(client, clinic_a, "a-new", 1)
    b_reply, b_enrolled = _leads(client, clinic_b, "b", 2)
    a_sequence = make_sequence(client, clinic_a, [email()], name="Spring campaign")
    b_sequence = make_sequence(client, clinic_b, [email()], name="Welcome")

    with thread_worker(app, concurrency=1):
        _enrol(client, clinic_a, a_sequence["id"], campaign_leads)
        wait_for(lambda: len(relay.raw_messages) >= 3, timeout=60)
        # While the campaign drains: clinic B replies to a lead by hand and enrols another in its
        # own one-email sequence; clinic A writes to a lead of its own by hand.
        sent_at = {}
        _hand_sent(client, clinic_b, b_reply, "About your visit")
        sent_at["b0@example.com"] = len(relay.raw_messages)
        _hand_sent(client, clinic_a, a_new, "Welcome")
        sent_at["a-new0@example.com"] = len(relay.raw_messages)
        enroll(client, clinic_b, b_enrolled, b_sequence["id"])  # its first step runs in the request
        sent_at["b1@example.com"] = len(relay.raw_messages)
        wait_for(lambda: len(relay.raw_messages) >= CAMPAIGN + 3, timeout=120)

    arrivals = _arrivals(relay)
    assert max(sent_at.values()) <= CAMPAIGN // 2, "the campaign was over before the others were sent"
    # Each waited for about one send (the one in flight, the turn already taken), not for the
    # campaign's remaining messages.
    waited = {to: arrivals.index(to) - before for to, before in sent_at.items()}
    assert all(sends <= 3 for sends in waited.values()), waited
    # The campaign still completes, each message once.
    assert len(arrivals) == CAMPAIGN + 3
    assert set(relay.accepted.values()) == {1} and len(relay.accepted) == CAMPAIGN + 3
    assert Counter(to.startswith("a") and not to.startswith("a-new") for to in arrivals)[True] == CAMPAIGN


def test_a_flood_of_transactional_messages_leaves_the_bulk_lane_its_share(app, db, tenant, relay):
    """Bulk never starves: while transactional messages keep the lane busy, one turn in five goes
    to the campaign's messages."""
    for i in range(20):
        _send_alone(app, db, _message(tenant, f"urgent{i}", bulk=False))
    for i in range(10):
        _send_alone(app, db, _message(tenant, f"bulk{i}", bulk=True))
    with thread_worker(app, concurrency=1):
        wait_for(lambda: len(relay.raw_messages) >= 30, timeout=60)
    first_ten = _arrivals(relay)[:10]
    bulk_early = sum(to.startswith("bulk") for to in first_ten)
    assert 1 <= bulk_early <= 3, first_ten  # its share, and no more while transactional ones wait
    assert set(relay.accepted.values()) == {1} and len(relay.accepted) == 30


def test_a_clinics_backlog_of_slow_sends_leaves_the_other_clinics_a_thread(
    app, db, make_tenant, relay, monkeypatch
):
    """Four sending threads, a clinic's share two: clinic A's backlog of sends the relay takes half a
    second over each never holds more than two of them, and clinic B's message goes at once."""
    monkeypatch.setattr(app.config["SETTINGS"], "threads_per_clinic", 2)
    relay.stall_after_data = 0.5
    clinic_a, clinic_b = make_tenant("Busy Clinic"), make_tenant("Quiet Clinic")
    for i in range(12):
        _send_alone(app, db, _message(clinic_a, f"a{i}", bulk=False, domain="a.example"))
    with thread_worker(app, concurrency=4):
        wait_for(lambda: len(relay.raw_messages) >= 2, timeout=60)
        _send_alone(app, db, _message(clinic_b, "b0", bulk=False, domain="b.example"))
        sent_at = len(relay.raw_messages)
        wait_for(lambda: len(relay.raw_messages) >= 13, timeout=60)
    assert relay.most_at_once["a.example"] == 2  # its share, used, and no more
    assert _arrivals(relay).index("b0@b.example") - sent_at <= 1  # a thread was free for it
    assert set(relay.accepted.values()) == {1} and len(relay.accepted) == 13


def _send_alone(app, db, message: outgoing.OutgoingMessage) -> None:
    """A message queued by a use case of its own (a reply sent by hand, a new lead's text): its own job."""
    with app.app_context(), db.unit_of_work() as session:
        outgoing.send(session=session, message=message, now=clock.now())


def _message(tenant, name: str, *, bulk: bool, domain: str = "example.com") -> outgoing.OutgoingMessage:
    return outgoing.OutgoingMessage(
        clinic_id=tenant.id,
        channel="email",
        to_address=f"{name}@{domain}",
        template="lead_message",
        context={"subject": "Hello", "body": "We would love to see you."},
        dedupe_key=f"turns:{name}",
        bulk=bulk,
    )
