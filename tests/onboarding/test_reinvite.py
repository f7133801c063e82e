"""An admin emails an invited user a fresh link when the first expired or got lost: the old link
stops working, the new one (read from the email queued in the notifications ledger) works."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.domains.outbound.models import Notification
from tests.onboarding.kit import login, set_password, token_of

LINK = re.compile(r"\S+/set-password#token=[A-Za-z0-9_-]+")


def invitation_links(db, email: str) -> list[str]:
    # Addresses are encrypted at rest (no SQL equality on them): matched once read.
    with db.unit_of_work() as session:
        rows = session.execute(
            sa.select(Notification.to_address, Notification.body)
            .where(Notification.kind == "invitation")
            .order_by(Notification.id)
        ).all()
    return [LINK.search(body).group(0) for address, body in rows if address == email]


def test_a_fresh_link_replaces_the_first(client, db, tenant):
    invited = client.post(
        "/api/users",
        headers=tenant.headers(),
        json={"email": "late@tenant.example", "name": "Lou Late", "role": "front_desk"},
    ).json
    [first] = invitation_links(db, "late@tenant.example")
    again = client.post(f"/api/users/{invited['id']}/invitation", headers=tenant.headers())
    assert again.status_code == 204
    old, new = invitation_links(db, "late@tenant.example")
    assert old == first and new != first
    assert set_password(client, token_of(first)).status_code == 410
    assert set_password(client, token_of(new)).status_code == 204
    assert login(client, "late@tenant.example").status_code == 200
    # Once the password is set there is nothing to invite to.
    done = client.post(f"/api/users/{invited['id']}/invitation", headers=tenant.headers())
    assert done.status_code == 409


def test_only_the_clinics_own_admin_reinvites(client, make_tenant):
    ours, theirs = make_tenant("Ours"), make_tenant("Theirs")
    invited = client.post(
        "/api/users",
        headers=theirs.headers(),
        json={"email": "new@theirs.example", "name": "Nia", "role": "doctor"},
    ).json
    assert client.post(f"/api/users/{invited['id']}/invitation", headers=ours.headers()).status_code == 404
    coordinator = ours.headers("treatment_coordinator")
    assert client.post(f"/api/users/{invited['id']}/invitation", headers=coordinator).status_code == 403
