"""Instagram out: a coordinator's reply through the Graph stand-in (once), Meta's windows (24 hours
for automation, 7 days with the human-agent tag for a person), a step outside the window skipped
with a task for the owner (through the API, real workers and the stand-in)."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa

from app.domains.auth.instagram.models import InstagramContact
from app.domains.automation.models import AutomationStep
from app.domains.outbound.models import Notification
from app.platform import clock
from tests.automation.outreachkit import configure_clinic, enroll, make_sequence, messages_to
from tests.instagram.kit import connect, dm, inbound_of
from tests.workers import thread_worker, wait_for

ACCOUNT = "17841400000000002"
FAMILY = "1790000000000077"
HOUR_MS = 3600 * 1000


def lead_from_dm(client, db, tenant, graph, *, hours_ago: float = 0) -> int:
    """A lead made by the family's DM, `hours_ago` (their last message, when Meta's windows start)."""
    connect(client, tenant, graph, ACCOUNT)
    graph.profiles[FAMILY] = {"username": "lopez.family", "name": "Maria Lopez"}
    at_ms = int(time.time() * 1000 - hours_ago * HOUR_MS)
    dm(client, account_id=ACCOUNT, igsid=FAMILY, text="Hi, how much is Invisalign?", at_ms=at_ms)
    [row] = inbound_of(db, tenant.id)
    return row.lead_id


def reply(client, tenant, lead_id: int, body: str, key: str = "reply-1", expect: int = 201) -> dict:
    resp = client.post(
        f"/api/leads/{lead_id}/messages",
        json={"channel": "instagram", "body": body},
        headers={**tenant.headers("treatment_coordinator"), "Idempotency-Key": key},
    )
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def sent_notification(db, notification_id: int) -> Notification:
    with db.unit_of_work() as session:
        return session.get(Notification, notification_id)


def test_a_coordinators_reply_goes_through_graph_once(app, client, db, tenant, graph):
    lead_id = lead_from_dm(client, db, tenant, graph)
    first = reply(client, tenant, lead_id, "Hi Maria! Invisalign starts at $3,500. Want to book a consult?")
    again = reply(client, tenant, lead_id, "Hi Maria! Invisalign starts at $3,500. Want to book a consult?")
    assert again["notification_id"] == first["notification_id"]  # the same Idempotency-Key: one message
    with thread_worker(app):
        wait_for(lambda: sent_notification(db, first["notification_id"]).status == "sent", timeout=60)
    [sent] = graph.sent
    assert (sent["account"], sent["recipient"]) == (ACCOUNT, FAMILY)
    assert sent["text"] == "Hi Maria! Invisalign starts at $3,500. Want to book a consult?"
    assert (sent["messaging_type"], sent["tag"]) == ("RESPONSE", None)
    assert sent_notification(db, first["notification_id"]).provider_message_id == sent["message_id"]
    timeline = client.get(f"/api/leads/{lead_id}/activities", headers=tenant.headers()).get_json()
    items = timeline["items"] if isinstance(timeline, dict) else timeline
    assert [a["direction"] for a in items if a["type"] == "DIRECT_MESSAGE"].count("OUTBOUND") == 1


def test_a_late_reply_carries_the_human_agent_tag_and_after_seven_days_is_refused(
    app, client, db, tenant, graph
):
    lead_id = lead_from_dm(client, db, tenant, graph, hours_ago=3 * 24)
    queued = reply(client, tenant, lead_id, "Sorry for the wait! Still interested?")
    with thread_worker(app):
        wait_for(lambda: sent_notification(db, queued["notification_id"]).status == "sent", timeout=60)
    [sent] = graph.sent
    assert (sent["messaging_type"], sent["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    # Eight days after the family's last DM: nobody may write on Instagram any more.
    with db.unit_of_work() as session:
        contact = session.scalar(sa.select(InstagramContact).where(InstagramContact.lead_id == lead_id))
        contact.last_inbound_at = clock.now() - timedelta(days=8)
    refused = reply(client, tenant, lead_id, "Hello?", key="reply-2", expect=409)
    assert "7-day human agent window" in refused["message"]


def test_a_step_due_30_hours_after_the_last_dm_does_not_go_and_leaves_a_task(app, client, db, tenant, graph):
    configure_clinic(client, tenant)  # open all day, midday there: no quiet hours in the way
    lead_id = lead_from_dm(client, db, tenant, graph, hours_ago=30)
    sequence = make_sequence(
        client,
        tenant,
        [{"delay": {"amount": 0, "unit": "minutes"}, "channel": "instagram", "body": "Any questions?"}],
    )
    enroll(client, tenant, lead_id, sequence["id"])
    with thread_worker(app):
        step = wait_for(lambda: _finished_step(db, lead_id), timeout=60)
    assert step.status == "skipped"
    assert "outside Instagram's 24-hour messaging window" in step.result["reason"]
    assert graph.sent == [] and [m for m in messages_to(db, lead_id) if m.channel == "instagram"] == []
    tasks = client.get(f"/api/leads/{lead_id}/tasks", headers=tenant.headers()).get_json()
    [by_hand] = [t for t in tasks if t["title"].startswith("Follow up by hand")]
    assert by_hand["assigned_to_id"] is not None and "24-hour" in by_hand["description"]


def test_a_step_within_24_hours_goes_as_a_response(app, client, db, tenant, graph):
    configure_clinic(client, tenant)
    lead_id = lead_from_dm(client, db, tenant, graph, hours_ago=2)
    sequence = make_sequence(
        client,
        tenant,
        [{"delay": {"amount": 0, "unit": "minutes"}, "channel": "instagram", "body": "Hi {{ first_name }}!"}],
    )
    enroll(client, tenant, lead_id, sequence["id"])
    with thread_worker(app):
        wait_for(lambda: graph.sent, timeout=60)
    [sent] = graph.sent
    assert (sent["text"], sent["messaging_type"]) == ("Hi Maria!", "RESPONSE")


def _finished_step(db, lead_id: int) -> AutomationStep | None:
    with db.unit_of_work() as session:
        return session.scalar(
            sa.select(AutomationStep).where(
                AutomationStep.lead_id == lead_id,
                AutomationStep.enrollment_id.is_not(None),
                AutomationStep.status.in_(("done", "skipped", "failed")),
            )
        )


def test_a_rule_answers_a_new_instagram_lead_at_once(app, client, db, tenant, graph):
    configure_clinic(client, tenant)
    rule = {
        "name": "Instant Instagram answer",
        "trigger": "lead.created",
        "conditions": [],
        "actions": [
            {
                "type": "send_instagram",
                "body": "Thanks for writing, {{ first_name }}! A coordinator will answer soon.",
            }
        ],
    }
    resp = client.post("/api/follow-up-rules", json=rule, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    bad = {**rule, "actions": [{"type": "send_instagram", "body": "  "}]}
    assert client.post("/api/follow-up-rules", json=bad, headers=tenant.headers()).status_code == 422
    with thread_worker(app):
        lead_from_dm(client, db, tenant, graph)
        wait_for(lambda: graph.sent, timeout=60)
    [sent] = graph.sent
    assert (sent["recipient"], sent["messaging_type"]) == (FAMILY, "RESPONSE")
    assert sent["text"] == "Thanks for writing, Maria! A coordinator will answer soon."


def test_graph_throttling_is_retried_and_a_revoked_token_fails_at_once(
    app, client, db, tenant, graph, monkeypatch
):
    from tests.outbound.kit import FAST_DELIVERY, use

    use(monkeypatch, app.config["SETTINGS"], **FAST_DELIVERY)
    lead_id = lead_from_dm(client, db, tenant, graph)
    graph.fail_next = [(400, 613)]  # Graph's "calls within one hour exceeded": answered 400, code 613
    throttled = reply(client, tenant, lead_id, "First", key="throttled")
    with thread_worker(app):
        wait_for(lambda: sent_notification(db, throttled["notification_id"]).status == "sent", timeout=60)
        assert sent_notification(db, throttled["notification_id"]).attempts == 2
        graph.fail_next = [(401, 190)]  # the token was revoked
        revoked = reply(client, tenant, lead_id, "Second", key="revoked")
        wait_for(lambda: sent_notification(db, revoked["notification_id"]).status == "failed", timeout=60)
    failed = sent_notification(db, revoked["notification_id"])
    assert failed.attempts == 1 and "code 190" in failed.last_error
    assert [s["text"] for s in graph.sent] == ["First"]
    listed = client.get(
        "/api/notifications?channel=instagram&status=failed", headers=tenant.headers()
    ).get_json()
    items = listed["items"] if isinstance(listed, dict) else listed
    assert [n["id"] for n in items] == [revoked["notification_id"]]
