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
    """The three headers a clinic's website sends with a web form, signed by the clinic's single
    webhook secret of before (f"{timestamp}.{body}": web forms only, until the clinic retires it)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new((secret or clinic.webhook_secret).encode(), ts.encode() + b"." + body, hashlib.sha256)
    return {
        "X-Followup-Clinic": str(clinic.id),
        "X-Followup-Timestamp": ts,
        "X-Followup-Signature": digest.hexdigest(),
        "Content-Type": "application/json",
    }


def key_signed_headers(
    key: dict, path: str, body: bytes, *, method: str = "POST", timestamp: int | None = None
) -> dict:
    """The headers of a request signed by a signing secret (`key`: its key_id and secret), computed
    here as an integrator would, independently of the engine's code: the hex HMAC-SHA256 of
    f"{timestamp}.{METHOD}.{path}.{body}"."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signed = f"{ts}.{method}.{path}.".encode() + body
    return {
        "X-Followup-Key-Id": key["key_id"],
        "X-Followup-Timestamp": ts,
        "X-Followup-Signature": hmac.new(key["secret"].encode(), signed, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }


def scoped_secret(app, clinic_id: int, scope: str) -> dict:
    """A live signing secret of the clinic with just `scope` (made the first time, as a clinic admin
    would through POST /api/signing-secrets): its key_id and secret, for the kits that post to the
    inbound, call and appointment endpoints."""
    from app.domains.auth.models import SigningSecret
    from app.domains.auth.signing_secrets import service as signing_secrets
    from app.platform.roles import Actor, Permission

    name = f"tests: {scope}"
    with app.extensions["followup.db"].unit_of_work() as session:
        row = session.scalar(
            sa.select(SigningSecret).where(
                SigningSecret.clinic_id == clinic_id,
                SigningSecret.name == name,
                SigningSecret.revoked_at.is_(None),
                SigningSecret.expires_at.is_(None),
            )
        )
        if row is None:
            admin = Actor(clinic_id=clinic_id, permissions=frozenset(Permission), extra={"ref": "tests"})
            row = signing_secrets.create(
                session=session, actor=admin, name=name, scopes=[scope], now=clock.now()
            )
        return {"key_id": row.key_id, "secret": row.secret}


def post_signed(client, clinic, path: str, payload: dict, scope: str, **sign_kwargs):
    """POST `payload` to a capture endpoint, signed by the clinic's secret with `scope`."""
    body = json.dumps(payload).encode()
    key = sign_kwargs.pop("key", None) or scoped_secret(client.application, clinic.id, scope)
    return client.post(path, data=body, headers=key_signed_headers(key, path, body, **sign_kwargs))


def post_web_form(client, clinic, form: dict, **sign_kwargs):
    body = json.dumps(form).encode()
    return client.post(
        "/api/capture/web-form", data=body, headers=signed_headers(clinic, body, **sign_kwargs)
    )
