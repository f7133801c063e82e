"""The Instagram tests' kit: the Graph stand-in wired into the app's settings, a connected clinic,
and DMs posted to the engine's webhook as Meta posts them (through the test client)."""

from __future__ import annotations

import itertools
import time

import sqlalchemy as sa

from app.devtools.instagram import GraphStandIn, signature, webhook_body
from app.domains.intake.inbound.models import InboundMessage

APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "verify-me"
WEBHOOK = "/api/webhooks/instagram"
_mids = itertools.count(1)


def connect(
    client, tenant, graph: GraphStandIn, account_id: str, token: str | None = None, expect: int = 200
):
    token = token or f"IGQWR-token-of-{account_id}"
    graph.accounts[account_id] = token
    resp = client.put(
        "/api/integrations/instagram",
        json={"account_id": account_id, "access_token": token},
        headers=tenant.headers(),
    )
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def dm(client, *, account_id: str, igsid: str, text: str = "Hi! How much are braces?", **options):
    """Post one DM notification as Meta does; `secret` signs it (another secret: a forgery)."""
    mid = options.get("mid") or f"m_{next(_mids)}_{time.time_ns()}"
    at_ms = options.get("at_ms")
    attachments = options.get("attachments")
    body = webhook_body(
        account_id=account_id, igsid=igsid, text=text, mid=mid, at_ms=at_ms, attachments=attachments
    )
    headers = {"X-Hub-Signature-256": signature(options.get("secret", APP_SECRET), body)}
    resp = client.post(WEBHOOK, data=body, headers=headers, content_type="application/json")
    assert resp.status_code == options.get("expect", 200), resp.get_data(as_text=True)
    return mid


def inbound_of(db, clinic_id: int) -> list[InboundMessage]:
    with db.unit_of_work() as session:
        stmt = sa.select(InboundMessage).where(
            InboundMessage.clinic_id == clinic_id, InboundMessage.channel == "instagram"
        )
        return list(session.scalars(stmt.order_by(InboundMessage.id)))
