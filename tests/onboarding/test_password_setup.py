"""Password-setup links: one use, an expiry (the clock passed in, no sleeping), a clear error naming
`token` or `password`, and a weak password leaves the link usable."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from app.bootstrap import wiring_of
from app.domains.auth import onboarding, passwords
from app.domains.auth.models import User
from app.platform import clock
from tests.onboarding.kit import bearer, login, set_password


def onboard(app, *, now=None, email="admin@setup.example") -> dict:
    db = app.extensions["followup.db"]
    with db.unit_of_work() as session:
        return onboarding.onboard_clinic(
            session=session,
            new=onboarding.NewClinic(name="Setup Dental", timezone="UTC", admin_email=email, admin_name=None),
            settings=app.config["SETTINGS"],
            now=now or clock.now(),
            hooks=wiring_of(app).auth,
        )


def test_an_expired_link_is_refused_naming_the_token(app, client):
    hours = app.config["SETTINGS"].password_setup_hours
    created = onboard(app, now=clock.now() - timedelta(hours=hours, minutes=1))
    answer = set_password(client, created["setup_token"])
    assert answer.status_code == 410 and answer.json["errors"]["json"]["token"] == ["expired"]
    assert login(client, "admin@setup.example").status_code == 401


def test_a_link_just_inside_its_lifetime_works(app, client):
    hours = app.config["SETTINGS"].password_setup_hours
    created = onboard(app, now=clock.now() - timedelta(hours=hours, minutes=-1))
    assert set_password(client, created["setup_token"]).status_code == 204


def test_unknown_and_malformed_tokens_name_the_field(client):
    unknown = set_password(client, "x" * 43)
    assert unknown.status_code == 400 and "token" in unknown.json["errors"]["json"]
    assert set_password(client, "").status_code == 422
    assert client.post("/api/auth/password-setup", json={"password": "long enough pw"}).status_code == 422


def test_a_weak_password_is_422_and_the_link_still_works(app, client):
    created = onboard(app)
    for weak in ("short", "aaaaaaaaaaaa", "admin@setup.example", "ADMIN@setup.example"):
        answer = set_password(client, created["setup_token"], weak)
        assert answer.status_code == 422 and "password" in answer.json["errors"]["json"], weak
    assert set_password(client, created["setup_token"]).status_code == 204


def test_a_disabled_users_link_is_refused(app, client, db):
    created = onboard(app)
    with db.unit_of_work() as session:
        session.execute(sa.update(User).where(User.id == created["admin_user_id"]).values(active=False))
    assert set_password(client, created["setup_token"]).status_code == 410


def test_a_newer_link_or_a_password_set_by_the_admin_retires_the_old_link(app, client, db, tenant):
    created = onboard(app)
    with db.unit_of_work() as session:
        user = session.get(User, created["admin_user_id"])
        newer = onboarding.issue_setup_token(
            session=session,
            user=user,
            purpose="invitation",
            settings=app.config["SETTINGS"],
            now=clock.now(),
        )
    assert set_password(client, created["setup_token"]).status_code == 410
    # An admin who sets an invited user's password themselves closes the pending link too.
    invited = client.post(
        "/api/users",
        headers=tenant.headers(),
        json={"email": "fd@tenant.example", "name": "Frankie", "role": "front_desk"},
    ).json
    with db.unit_of_work() as session:
        link = onboarding.issue_setup_token(
            session=session,
            user=session.get(User, invited["id"]),
            purpose="invitation",
            settings=app.config["SETTINGS"],
            now=clock.now(),
        )
    current = client.get(f"/api/users/{invited['id']}", headers=tenant.headers())
    put = client.put(
        f"/api/users/{invited['id']}",
        headers={**tenant.headers(), "If-Match": current.headers["ETag"]},
        json={"password": "set by the admin"},
    )
    assert put.status_code == 200
    assert set_password(client, link["token"]).status_code == 410
    assert set_password(client, newer["token"]).status_code == 204


def test_two_racing_uses_of_one_link_set_the_password_once(app):
    created = onboard(app)
    start, statuses = threading.Barrier(4), []

    def use(password):
        client = app.test_client()
        start.wait()
        statuses.append(set_password(client, created["setup_token"], password).status_code)

    threads = [threading.Thread(target=use, args=(f"racing passphrase {n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [204, 410, 410, 410]
    with app.extensions["followup.db"].unit_of_work() as session:
        stored = session.get(User, created["admin_user_id"]).password_hash
    winners = [n for n in range(4) if passwords.verify_password(stored, f"racing passphrase {n}")]
    assert len(winners) == 1


def test_a_user_created_with_a_password_is_not_invited(client, tenant):
    made = client.post(
        "/api/users",
        headers=tenant.headers(),
        json={"email": "pw@tenant.example", "name": "Pat", "role": "doctor", "password": "chosen by admin"},
    )
    assert made.status_code == 201 and made.json["password_set"] is True
    me = client.get(
        "/api/me", headers=bearer(login(client, "pw@tenant.example", "chosen by admin").json["access_token"])
    )
    assert me.json["role"] == "doctor"
