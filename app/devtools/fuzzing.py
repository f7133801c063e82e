"""The app that `make fuzz` sends schemathesis to: a migrated database, a clinic admin, some data."""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa
from cryptography.fernet import Fernet

from app import create_app
from app.bootstrap import wiring_of
from app.domains.auth import service as auth
from app.domains.auth import tokens
from app.domains.auth.login.second_factor import REQUIRE_FOR_ADMINS
from app.domains.auth.models import Clinic, User
from app.platform import clock, migrate
from app.platform.app_db import unit_of_work
from app.platform.config import Settings
from app.platform.roles import Role


class KeptUser:
    """The fuzzing identity, put back as it was before each request: the fuzzer edits users too
    (PUT /api/users/:id with random small ids), and once it has deactivated or demoted its own
    admin, or made its clinic require a second factor of admins, every later request would be a
    401/403 that tests nothing."""

    def __init__(self, db, user_id: int):
        self.db, self.user_id = db, user_id
        with db.engine.connect() as conn:
            row = conn.execute(sa.select(User.__table__).where(User.id == user_id)).mappings().one()
        # token_version too: a role change or deactivation bumps it, which revokes the token.
        kept = ("email", "role", "active", "out_of_office", "clinic_id", "token_version")
        self.values = {name: row[name] for name in kept if name in row}

    def restore(self) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(sa.update(User.__table__).where(User.id == self.user_id).values(**self.values))
            # Nor may a clinic setting lock it out: a required second factor it has not enrolled.
            clinics = Clinic.__table__
            whose = clinics.c.id == self.values["clinic_id"]
            kept = conn.execute(sa.select(clinics.c.settings).where(whose)).scalar_one() or {}
            if REQUIRE_FOR_ADMINS in kept:
                unlocked = {key: value for key, value in kept.items() if key != REQUIRE_FOR_ADMINS}
                conn.execute(sa.update(clinics).where(whose).values(settings=unlocked))

    def middleware(self, wsgi_app):
        def restoring(environ, start_response):
            self.restore()
            return wsgi_app(environ, start_response)

        return restoring


def fuzz_settings(*, database_url: str, redis_url: str) -> Settings:
    return Settings(
        env="test",
        secret_key=secrets.token_urlsafe(32),
        database_url=database_url,
        redis_url=redis_url,
        phi_encryption_key=Fernet.generate_key().decode(),
        # Thousands of requests a minute from one admin: the limit is not what is under test.
        rate_limit_per_minute=0,
    )


def fuzz_app(*, database_url: str, redis_url: str):
    """The app on a fresh migrated database, and the headers of a clinic admin of a seeded clinic."""
    migrate.upgrade(database_url)
    app = create_app(fuzz_settings(database_url=database_url, redis_url=redis_url))
    now = clock.now()
    with app.app_context(), unit_of_work() as session:
        clinic = auth.create_clinic(
            session=session, name="Fuzz Orthodontics", now=now, hooks=wiring_of(app).auth
        )
        admin = User(
            clinic_id=clinic.id,
            email="admin@fuzz.example",
            name="Fuzz Admin",
            role=Role.CLINIC_ADMIN.value,
            password_hash=auth.hash_password(secrets.token_urlsafe(32)),
            active=True,
            out_of_office=False,
            created_at=now,
            updated_at=now,
        )
        session.add(admin)
        session.flush()
        token = tokens.issue(
            secret=app.config["SETTINGS"].secret_key,
            grant=tokens.TokenGrant(
                user_id=admin.id, clinic_id=clinic.id, kind="access", lifetime=timedelta(hours=12)
            ),
            now=now,
        )
    headers = {"Authorization": f"Bearer {token}"}
    seed_records(app, headers)
    kept = KeptUser(app.extensions["followup.db"], admin.id)
    app.wsgi_app = kept.middleware(app.wsgi_app)
    return app, headers


def seed_records(app, headers: dict) -> None:
    """A lead with a task and an activity, so small ids in paths reach real records."""
    client = app.test_client()
    lead = client.post(
        "/api/leads",
        json={"first_name": "Ada", "last_name": "Fuzz", "phone": "+14155552671", "email": "ada@fuzz.example"},
        headers=headers,
    ).get_json()
    due = (clock.now() + timedelta(days=1)).isoformat()
    client.post(
        f"/api/leads/{lead['id']}/tasks",
        json={"title": "Call", "type": "CALL", "due_at": due},
        headers=headers,
    )
    client.post(f"/api/leads/{lead['id']}/activities", json={"type": "NOTE", "notes": "hi"}, headers=headers)
