"""Helpers for the lead-domain tests: create leads over HTTP, add coordinators, sign web forms."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import sqlalchemy as sa

from app.domains.auth.models import User
from app.platform import clock
from app.platform.events.models import DomainEvent

JANE = {"first_name": "Jane", "last_name": "Doe", "phone": "(415) 555-2671"}


def create_lead(
    client, tenant, role: str = "front_desk", expect: int = 201, query: str = "", **fields
) -> dict:
    """POST /api/leads and return the answer's JSON (asserting the status)."""
    body = {"first_name": "Jane", "last_name": "Doe", **fields}
    resp = client.post(f"/api/leads{query}", json=body, headers=tenant.headers(role))
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def get_lead(client, tenant, lead_id: int, role: str = "clinic_admin"):
    return client.get(f"/api/leads/{lead_id}", headers=tenant.headers(role))


def source_ids(client, tenant) -> dict[str, int]:
    """{category: id} of the clinic's seeded sources."""
    resp = client.get("/api/lead-sources", headers=tenant.headers("clinic_admin"))
    assert resp.status_code == 200
    return {s["category"]: s["id"] for s in resp.get_json()}


def stages(client, tenant) -> list[dict]:
    resp = client.get("/api/pipeline-stages", headers=tenant.headers("clinic_admin"))
    assert resp.status_code == 200
    return resp.get_json()


def add_user(app, tenant, role: str = "treatment_coordinator", **fields) -> int:
    """Insert a user of the tenant's clinic (no password login needed) and return its id."""
    now = clock.now()
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        n = session.scalar(sa.select(sa.func.count()).select_from(User)) + 1
        user = User(
            clinic_id=tenant.clinic.id,
            email=f"{role}.{tenant.clinic.id}.extra{n}@example.com",
            name=f"{role} extra {n}",
            role=role,
            password_hash="not-a-login",
            active=fields.pop("active", True),
            out_of_office=fields.pop("out_of_office", False),
            created_at=now,
            updated_at=now,
            **fields,
        )
        session.add(user)
        session.flush()
        return user.id


def set_user(app, user_id: int, **fields) -> None:
    """Change a user's row directly (bypassing the API and its hand-over hooks)."""
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        user = session.get(User, user_id)
        for key, value in fields.items():
            setattr(user, key, value)


def events(db, type: str | None = None, lead_id: int | None = None) -> list[DomainEvent]:
    """Outbox rows, oldest first, optionally of one type and lead."""
    with db.unit_of_work() as session:
        stmt = sa.select(DomainEvent).order_by(DomainEvent.id)
        if type:
            stmt = stmt.where(DomainEvent.type == type)
        if lead_id is not None:
            stmt = stmt.where(DomainEvent.subject_type == "lead", DomainEvent.subject_id == lead_id)
        return list(session.scalars(stmt))


def count(db, table: str) -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def signed_headers(clinic, body: bytes, timestamp: int | None = None, secret: str | None = None) -> dict:
    """The three headers a clinic's website sends with a web form."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new((secret or clinic.webhook_secret).encode(), ts.encode() + b"." + body, hashlib.sha256)
    return {
        "X-Followup-Clinic": str(clinic.id),
        "X-Followup-Timestamp": ts,
        "X-Followup-Signature": digest.hexdigest(),
        "Content-Type": "application/json",
    }


def post_web_form(client, clinic, form: dict, **sign_kwargs):
    body = json.dumps(form).encode()
    return client.post(
        "/api/capture/web-form", data=body, headers=signed_headers(clinic, body, **sign_kwargs)
    )
