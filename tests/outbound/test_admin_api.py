"""Admin retry API, Twilio's signed SMS status callbacks and /metrics (status codes, audit, isolation)."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.outbound.models import Notification
from app.platform.audit.models import AuditEvent
from tests.intake.test_twilio import AUTH_TOKEN, STATUS, signed_post
from tests.outbound.kit import queue_emails, queue_sms

STATUS_PATH = "/api/providers/twilio/status"


def set_status(db, ids, status, **values):
    with db.unit_of_work() as session:
        session.execute(
            sa.update(Notification).where(Notification.id.in_(ids)).values(status=status, **values)
        )


def test_list_filters_and_retry_status_codes_audit_and_isolation(app, db, client, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    failed, dead, sent = queue_emails(app, a, 3)
    (sms,) = queue_sms(app, a, 1)
    set_status(db, [failed], "failed", last_error="550 no such user")
    set_status(db, [dead], "dead")
    set_status(db, [sent], "sent")
    set_status(db, [sms], "failed")
    admin = a.headers()
    listed = client.get("/api/notifications?status=failed", headers=admin)
    assert listed.status_code == 200 and {n["id"] for n in listed.json} == {failed, sms}
    assert [
        n["id"] for n in client.get("/api/notifications?status=failed&channel=email", headers=admin).json
    ] == [failed]
    assert client.get("/api/notifications?status=bogus", headers=admin).status_code == 422
    assert "since" in client.get("/api/notifications?since=yesterday", headers=admin).json["errors"]["query"]
    assert client.get("/api/notifications", headers=b.headers()).json == []

    assert client.post(f"/api/notifications/{sent}/retry", headers=admin).status_code == 409
    assert client.post(f"/api/notifications/{failed}/retry", headers=b.headers()).status_code == 404
    assert client.post("/api/notifications/999999/retry", headers=admin).status_code == 404
    retried = client.post(f"/api/notifications/{failed}/retry", headers=admin)
    assert (
        retried.status_code == 200 and retried.json["status"] == "pending" and retried.json["attempts"] == 0
    )
    assert client.post(f"/api/notifications/{failed}/retry", headers=admin).status_code == 409

    assert client.post("/api/notifications/retry", json={"status": "sent"}, headers=admin).status_code == 422
    assert (
        client.post("/api/notifications/retry", json={"channel": "pigeon"}, headers=admin).status_code == 422
    )
    assert client.post("/api/notifications/retry", json={}, headers=b.headers()).json == {"requeued": 0}
    assert client.post("/api/notifications/retry", json={"channel": "email"}, headers=admin).json == {
        "requeued": 1  # the dead email; the SMS is another channel
    }
    with db.unit_of_work() as session:
        events = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "notification.retry")).all()
        assert sorted(int(e.subject_id) for e in events) == sorted([failed, dead])
        assert all(e.clinic_id == a.id and e.actor.startswith("user:") for e in events)
        assert {e.before["status"] for e in events} == {"failed", "dead"}


def test_twilio_status_callbacks_need_a_valid_signature(app, db, client, tenant, monkeypatch):
    """The one SMS status endpoint is Twilio's, signed as Twilio signs (X-Twilio-Signature)."""
    settings = app.config["SETTINGS"]
    (delivered, undelivered) = queue_sms(app, tenant, 2)
    set_status(db, [delivered], "sent", provider_message_id="SM1")
    set_status(db, [undelivered], "sent", provider_message_id="SM2")
    ok = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    monkeypatch.setattr(settings, "sms_token", None)
    assert client.post(STATUS_PATH, data=ok).status_code == 404  # no Twilio account configured
    monkeypatch.setattr(settings, "sms_token", AUTH_TOKEN)
    assert client.post(STATUS_PATH, data=ok).status_code == 401
    assert signed_post(client, STATUS, ok, token="other-token").status_code == 401
    good = signed_post(client, STATUS, ok)
    assert good.status_code == 200 and good.json == {"updated": True, "status": "sent"}
    failed = {
        "MessageSid": "SM2",
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "ErrorMessage": "Unreachable",
    }
    assert signed_post(client, STATUS, failed).json == {"updated": True, "status": "failed"}
    with db.unit_of_work() as session:
        first, second = session.get(Notification, delivered), session.get(Notification, undelivered)
        assert first.delivered_at is not None and first.status == "sent"
        assert second.status == "failed" and "30003" in second.last_error
    bad = signed_post(client, STATUS, {"MessageStatus": "delivered"})
    assert bad.status_code == 422 and "MessageSid" in bad.json["errors"]["json"]
    # The engine's own HMAC endpoint is gone: Twilio's replaces it.
    assert client.post("/api/notifications/sms-status", data=ok).status_code == 404


def test_a_late_undelivered_callback_cannot_fail_a_delivered_sms(app, db, client, tenant, monkeypatch):
    """Twilio's callbacks carry no timestamp: one replayed, or arriving after the delivery receipt,
    must not turn a delivered message into a failed one."""
    monkeypatch.setattr(app.config["SETTINGS"], "sms_token", AUTH_TOKEN)
    [sms] = queue_sms(app, tenant, 1)
    set_status(db, [sms], "sent", provider_message_id="SM9")
    assert signed_post(client, STATUS, {"MessageSid": "SM9", "MessageStatus": "delivered"}).status_code == 200
    late = signed_post(
        client, STATUS, {"MessageSid": "SM9", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    )
    assert late.status_code == 200 and late.json == {"updated": False, "status": "sent"}
    with db.unit_of_work() as session:
        row = session.get(Notification, sms)
        assert row.status == "sent" and row.delivered_at is not None


def test_metrics_token_and_format(app, db, client, tenant, monkeypatch):
    settings = app.config["SETTINGS"]
    queue_emails(app, tenant, 2)
    assert client.get("/metrics").status_code == 404
    monkeypatch.setattr(settings, "metrics_token", "scrape-me")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    resp = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain; version=0.0.4")
    text = resp.get_data(as_text=True)
    lines = text.splitlines()
    assert "# TYPE followup_notifications gauge" in lines
    # prometheus-client writes labels sorted by name and values as floats.
    assert 'followup_notifications{channel="email",status="pending"} 2.0' in lines
    assert any(
        # The two emails, queued by one unit of work, go as one job.
        line.startswith("followup_jobs{")
        and "status=" in line
        and 'kind="notification.deliver_together"' in line
        for line in lines
    )
    for queue in ("realtime", "notifications", "bulk"):
        assert any(line.startswith(f'followup_queue_length{{queue="{queue}"}} ') for line in lines)
    assert any(line.startswith("followup_due_job_lag_seconds ") for line in lines)
    for line in lines:  # every sample line parses as name{labels} value
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])
