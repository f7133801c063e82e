"""No blind re-sends: an SMS or email whose answer never came is `unknown`, reconciled or decided by an
admin one by one (no bulk retry, the API's or the console's, takes it)."""

from __future__ import annotations

import time

from app.domains.outbound.worker import reconcile
from app.platform import clock
from tests.intake.test_twilio import AUTH_TOKEN, STATUS, signed_post
from tests.outbound.fakes import sms_provider, smtp_server
from tests.outbound.kit import (
    FAST_DELIVERY,
    queue_emails,
    queue_sms,
    rows,
    sms_settings,
    smtp_settings,
    use,
)
from tests.workers import thread_worker, wait_for

CALLBACK = "https://engine.example/api/providers/twilio/status"


def test_a_timeout_after_the_send_is_unknown_not_a_second_sms(app, client, db, tenant, monkeypatch):
    settings = app.config["SETTINGS"]
    with sms_provider(token=AUTH_TOKEN) as (provider, url):
        provider.stall = 4  # it takes the message, then answers after the send timeout (2 s)
        use(monkeypatch, settings, **FAST_DELIVERY, **sms_settings(url, token=AUTH_TOKEN))
        use(monkeypatch, settings, sms_status_callback_url=CALLBACK)
        ids = queue_sms(app, tenant, 2)
        with thread_worker(app):
            wait_for(lambda: {r.status for r in rows(db, ids)} == {"unknown"}, timeout=60)
            time.sleep(3)  # a retry would land now
        assert provider.requests == 2 and provider.deliveries() == 2  # one request each, never again
        first, second = rows(db, ids)
        assert "may already have reached the lead" in first.last_error and first.provider_message_id is None
        # Twilio's status callback names the notification in its URL: the first is reconciled as sent.
        [at_twilio] = [m for m in provider.messages if m["StatusCallback"].endswith(f"?n={first.id}")]
        callback = {"MessageSid": at_twilio["sid"], "MessageStatus": "delivered", "AccountSid": "AC123"}
        use(monkeypatch, settings, public_base_url="https://engine.example")
        assert (
            signed_post(
                client, f"{STATUS}?n={first.id}", callback, public=at_twilio["StatusCallback"]
            ).status_code
            == 200
        )
        first, second = rows(db, ids)
        assert first.status == "sent" and first.provider_message_id == at_twilio["sid"]
        assert first.delivered_at is not None
        # The second stays held for an admin: a plain retry is refused, a bulk retry skips it.
        plain = client.post(f"/api/notifications/{second.id}/retry", json={}, headers=tenant.headers())
        assert plain.status_code == 409 and "may already have reached the lead" in plain.get_json()["message"]
        bulk = client.post("/api/notifications/retry", json={"channel": "sms"}, headers=tenant.headers())
        assert bulk.get_json() == {"requeued": 0}
        provider.stall = 0
        confirmed = client.post(
            f"/api/notifications/{second.id}/retry",
            json={"confirm_may_duplicate": True},
            headers=tenant.headers(),
        )
        assert confirmed.status_code == 200, confirmed.get_json()
        with thread_worker(app):
            wait_for(lambda: rows(db, [second.id])[0].status == "sent", timeout=30)
        assert provider.requests == 3


def test_the_reconciliation_sweep_finds_an_unknown_sms_in_twilios_list(app, db, tenant, monkeypatch):
    settings = app.config["SETTINGS"]
    with sms_provider(token=AUTH_TOKEN) as (provider, url):
        provider.stall = 4
        use(monkeypatch, settings, **FAST_DELIVERY, **sms_settings(url, token=AUTH_TOKEN))
        ids = queue_sms(app, tenant, 1)
        with thread_worker(app):
            wait_for(lambda: rows(db, ids)[0].status == "unknown", timeout=60)
        assert reconcile.reconcile_unknown_sms(db=db, now=clock.now(), settings=settings) == 1
        [row] = rows(db, ids)
        assert row.status == "sent" and row.provider_message_id == provider.messages[0]["sid"]
        assert provider.lookups == 1 and provider.requests == 1  # looked up, never sent again


def test_an_email_whose_answer_never_came_is_unknown_left_out_of_bulk_retries_and_resent_once_confirmed(
    app, client, db, tenant, monkeypatch
):
    from tests.console.test_console_pages import csrf_of, log_in

    settings = app.config["SETTINGS"]
    with smtp_server() as (server, port):
        server.stall_after_data = 4  # the server takes the message, then answers after the timeout (2 s)
        use(monkeypatch, settings, **FAST_DELIVERY, **smtp_settings(port))
        [email] = queue_emails(app, tenant, 1)
        with thread_worker(app):
            wait_for(lambda: rows(db, [email])[0].status == "unknown", timeout=60)
            time.sleep(3)  # a retry would land now
        assert server.accepted == {"m:0": 1}
        assert "may already have reached the lead" in rows(db, [email])[0].last_error
        server.stall_after_data = 0
        # Neither bulk retry touches it: the API's (every failed and dead one) nor the console's.
        bulk = client.post("/api/notifications/retry", json={}, headers=tenant.headers())
        assert bulk.get_json() == {"requeued": 0}
        with app.test_client() as console:
            log_in(console, tenant)
            preview = console.get("/console/failures/retry").get_data(as_text=True)
            assert "This will retry <strong>0</strong>" in preview and "1 matching message(s)" in preview
            pressed = console.post("/console/failures/retry", data={"csrf_token": csrf_of(preview)})
            assert pressed.status_code == 302
        assert rows(db, [email])[0].status == "unknown"
        # One by one: refused without the confirmation (naming it), sent once more with it.
        plain = client.post(f"/api/notifications/{email}/retry", json={}, headers=tenant.headers())
        assert plain.status_code == 409 and plain.get_json()["code"] == "confirm_may_duplicate"
        assert "confirm_may_duplicate" in plain.get_json()["message"]
        confirmed = client.post(
            f"/api/notifications/{email}/retry",
            json={"confirm_may_duplicate": True},
            headers=tenant.headers(),
        )
        assert confirmed.status_code == 200, confirmed.get_json()
        with thread_worker(app):
            wait_for(lambda: rows(db, [email])[0].status == "sent", timeout=30)
            time.sleep(1)
    assert server.accepted == {"m:0": 2}  # the first (unknown) and the one confirmed re-send
