"""Provider errors name no recipient (issue 42): Twilio's "The 'To' number +1… is not a valid phone
number" and SMTP's "550 5.1.1 <ann@…>: Recipient address rejected" are stored, logged and copied
into the retry's audit event without the number or address, through a real worker and the local
fake providers."""

from __future__ import annotations

import json
import logging

import pytest

from app.platform.audit.models import AuditEvent
from app.platform.delivery.redaction import redacted
from tests.outbound.fakes import sms_provider, smtp_server
from tests.outbound.kit import (
    FAST_DELIVERY,
    all_in,
    queue_emails,
    queue_sms,
    rows,
    sms_settings,
    smtp_settings,
    use,
)
from tests.reliability.conftest import sweeping
from tests.workers import thread_worker, wait_for

REFUSED_EMAIL = "zeb.quillfeather@example.org"
BAD_NUMBER = "+15551230000"  # queue_sms's first number


@pytest.fixture
def fast_delivery(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, **FAST_DELIVERY)
    return settings


def _retry_audits(db) -> str:
    with db.unit_of_work() as session:
        found = session.query(AuditEvent).filter_by(action="notification.retry").all()
        return json.dumps([(a.before, a.after) for a in found])


def test_a_refused_number_is_stored_logged_and_audited_without_it(
    app, client, db, tenant, fast_delivery, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    with sms_provider() as (provider, url):
        use(monkeypatch, fast_delivery, **sms_settings(url))
        provider.invalid_numbers = {BAD_NUMBER}
        ids = queue_sms(app, tenant, 1)
        with thread_worker(app), sweeping(app):
            wait_for(lambda: all_in(db, ids, {"failed"}), timeout=30)
    [row] = rows(db, ids)
    assert "400" in row.last_error and "not a valid phone number" in row.last_error  # still useful
    assert BAD_NUMBER not in row.last_error and "5551230000" not in row.last_error
    assert (
        client.post(f"/api/notifications/{row.id}/retry", json={}, headers=tenant.headers()).status_code
        == 200
    )
    assert "not a valid phone number" in _retry_audits(db) and BAD_NUMBER not in _retry_audits(db)
    assert "5551230000" not in caplog.text


def test_a_refused_address_is_stored_logged_and_audited_without_it(
    app, client, db, tenant, fast_delivery, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, **smtp_settings(port))
        server.refuse = {REFUSED_EMAIL}
        ids = queue_emails(app, tenant, 1, to=lambda i: REFUSED_EMAIL)
        with thread_worker(app), sweeping(app):
            wait_for(lambda: all_in(db, ids, {"failed"}), timeout=30)
    [row] = rows(db, ids)
    assert "550" in row.last_error and "Recipient address rejected" in row.last_error
    assert "quillfeather" not in row.last_error.lower()
    assert (
        client.post(f"/api/notifications/{row.id}/retry", json={}, headers=tenant.headers()).status_code
        == 200
    )
    assert "Recipient address rejected" in _retry_audits(db) and "quillfeather" not in _retry_audits(db)
    assert "quillfeather" not in caplog.text.lower()


def test_redaction_takes_numbers_and_addresses_and_leaves_codes():
    text = "SMTP 550 while RCPT TO: 5.1.1 <ann@example.org>: rejected; call (415) 555-0123, error 30003"
    assert redacted(text, "ann@example.org") == (
        "SMTP 550 while RCPT TO: 5.1.1 <[recipient]>: rejected; call [phone], error 30003"
    )
    assert redacted("invalid phone number '+14155550123'", None) == "invalid phone number '[phone]'"
    assert redacted("SMTP connection to 127.0.0.1:2525 at 2026-01-01 12:00: refused") == (
        "SMTP connection to 127.0.0.1:2525 at 2026-01-01 12:00: refused"
    )
