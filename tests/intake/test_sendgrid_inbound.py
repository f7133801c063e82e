"""Replies by email through SendGrid's Inbound Parse: a reply unenrolls and is contact; an auto-reply not."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.auth import signing
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    enrollment_row,
    lead_with,
    make_sequence,
    process_events,
    sms,
)
from tests.outbound.kit import use

SECRET = "inbound-parse-secret-0123456789"


@pytest.fixture
def parse(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, sendgrid_inbound_secret=SECRET, email_inbound_domain="reply.example")
    return settings


def reply_address(settings, lead_id: int) -> str:
    return f"reply+{signing.unsubscribe_token(settings.secret_key, lead_id, 'reply')}@reply.example"


def post_parse(client, to: str, *, headers: str, text: str = "Yes, Tuesday works", secret: str = SECRET):
    form = {
        "from": "Jane Doe <jane@example.com>",
        "to": f"Smile Ortho <{to}>",
        "subject": "Re: Your visit",
        "text": text,
        "html": f"<p>{text}</p>",
        "headers": headers,
    }
    return client.post(
        f"/api/providers/sendgrid/inbound/{secret}", data=form, content_type="multipart/form-data"
    )


def activities(db, lead_id: int) -> list[tuple[str, str | None]]:
    with db.unit_of_work() as session:
        stmt = sa.select(LeadActivity).where(LeadActivity.lead_id == lead_id).order_by(LeadActivity.id)
        return [(a.type, a.direction) for a in session.scalars(stmt)]


def test_a_reply_unenrolls_and_counts_as_contact_while_an_auto_reply_does_neither(
    app, client, db, tenant, parse
):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    made = enroll(
        client, tenant, lead["id"], make_sequence(client, tenant, [sms(amount=1, unit="days")])["id"]
    )
    to = reply_address(parse, lead["id"])
    auto = post_parse(
        client,
        to,
        headers="Message-ID: <ooo-1@example.com>\nAuto-Submitted: auto-replied\n",
        text="I am away",
    )
    assert auto.status_code == 200 and auto.get_json()["auto_reply"] is True
    process_events(app, db)
    assert enrollment_row(db, made["id"]).status == "active"
    assert ("EMAIL", "INBOUND") not in activities(db, lead["id"]) and ("NOTE", None) in activities(
        db, lead["id"]
    )
    # A wrong secret, or an address that is no lead's token: nothing.
    assert post_parse(client, to, headers="Message-ID: <x@e>\n", secret="wrong").status_code == 404
    forged = f"reply+{lead['id']}.{'0' * 32}@reply.example"
    assert post_parse(client, forged, headers="Message-ID: <y@e>\n").get_json() == {"matched": False}
    real = post_parse(client, to, headers="Message-ID: <reply-1@example.com>\nSubject: Re: Your visit\n")
    assert real.status_code == 200 and real.get_json() == {
        "matched": True,
        "lead_id": lead["id"],
        "auto_reply": False,
    }
    post_parse(client, to, headers="Message-ID: <reply-1@example.com>\n")  # SendGrid posts it again: once
    assert activities(db, lead["id"]).count(("EMAIL", "INBOUND")) == 1
    process_events(app, db)
    row = enrollment_row(db, made["id"])
    assert (row.status, row.end_reason) == ("unenrolled", "replied")
