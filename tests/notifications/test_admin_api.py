"""Admin retry API, the signed SMS status webhook and /metrics (status codes, audit, tenant isolation)."""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from datetime import timedelta

import sqlalchemy as sa

from app import clock
from app.audit.models import AuditEvent
from app.notifications.models import Notification
from tests.notifications.kit import queue_emails, queue_sms


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


def sign(secret: str, body: bytes, at=None) -> dict:
    """The receipt's signing headers: X-Followup-Timestamp and the HMAC of f"{timestamp}.{body}"."""
    timestamp = str(int((at or clock.now()).timestamp()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Followup-Timestamp": timestamp, "X-Followup-Signature": "sha256=" + digest}


def test_sms_status_webhook_needs_a_valid_signature(app, db, client, tenant, monkeypatch):
    settings = app.config["SETTINGS"]
    (delivered, undelivered) = queue_sms(app, tenant, 2)
    set_status(db, [delivered], "sent", provider_message_id="SM1")
    set_status(db, [undelivered], "sent", provider_message_id="SM2")
    body = urllib.parse.urlencode({"MessageSid": "SM1", "MessageStatus": "delivered"}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    url = "/api/notifications/sms-status"
    assert client.post(url, data=body, headers=form).status_code == 404  # no secret configured
    monkeypatch.setattr(settings, "sms_webhook_secret", "hook-secret")
    assert client.post(url, data=body, headers=form).status_code == 401
    wrong = {**form, **sign("other", body)}
    assert client.post(url, data=body, headers=wrong).status_code == 401
    good = client.post(url, data=body, headers={**form, **sign("hook-secret", body)})
    assert good.status_code == 200 and good.json == {"updated": True, "status": "sent"}
    body2 = urllib.parse.urlencode(
        {
            "MessageSid": "SM2",
            "MessageStatus": "undelivered",
            "ErrorCode": "30003",
            "ErrorMessage": "Unreachable",
        }
    ).encode()
    resp = client.post(url, data=body2, headers={**form, **sign("hook-secret", body2)})
    assert resp.json == {"updated": True, "status": "failed"}
    with db.unit_of_work() as session:
        first, second = session.get(Notification, delivered), session.get(Notification, undelivered)
        assert first.delivered_at is not None and first.status == "sent"
        assert second.status == "failed" and "30003" in second.last_error
    missing = urllib.parse.urlencode({"MessageStatus": "delivered"}).encode()
    bad = client.post(url, data=missing, headers={**form, **sign("hook-secret", missing)})
    assert bad.status_code == 422 and "MessageSid" in bad.json["errors"]["json"]


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
        line.startswith("followup_jobs{") and "status=" in line and 'kind="notification.deliver"' in line
        for line in lines
    )
    for queue in ("realtime", "notifications", "bulk"):
        assert any(line.startswith(f'followup_queue_length{{queue="{queue}"}} ') for line in lines)
    assert any(line.startswith("followup_due_job_lag_seconds ") for line in lines)
    for line in lines:  # every sample line parses as name{labels} value
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_a_replayed_or_stale_undelivered_receipt_cannot_fail_a_sent_sms(app, db, client, tenant, monkeypatch):
    monkeypatch.setattr(app.config["SETTINGS"], "sms_webhook_secret", "hook-secret")
    [sms] = queue_sms(app, tenant, 1)
    set_status(db, [sms], "sent", provider_message_id="SM9")
    url, form = "/api/notifications/sms-status", {"Content-Type": "application/x-www-form-urlencoded"}
    undelivered = urllib.parse.urlencode({"MessageSid": "SM9", "MessageStatus": "undelivered"}).encode()
    # Captured a while ago: its timestamp is outside the 5-minute window.
    stale = sign("hook-secret", undelivered, at=clock.now() - timedelta(minutes=10))
    assert client.post(url, data=undelivered, headers={**form, **stale}).status_code == 401
    # Unsigned by time (the old scheme: HMAC of the body alone) is refused too.
    body_only = "sha256=" + hmac.new(b"hook-secret", undelivered, hashlib.sha256).hexdigest()
    assert (
        client.post(url, data=undelivered, headers={**form, "X-Followup-Signature": body_only}).status_code
        == 401
    )
    with db.unit_of_work() as session:
        assert session.get(Notification, sms).status == "sent"
    # A fresh delivered receipt is applied once; sent again (replayed), it is refused.
    delivered = urllib.parse.urlencode({"MessageSid": "SM9", "MessageStatus": "delivered"}).encode()
    headers = {**form, **sign("hook-secret", delivered)}
    assert client.post(url, data=delivered, headers=headers).status_code == 200
    assert client.post(url, data=delivered, headers=headers).status_code == 401
