"""A clinic's API keys: made (the raw key shown once), listed, changed, revoked."""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa

from app.domains.auth.models import DEFAULT_API_KEY_RATE_LIMIT, ApiKey
from app.domains.auth.service import hash_api_key
from app.platform import roles
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound, ValidationFailed
from app.platform.roles import Actor, Permission


def create_api_key(
    *,
    session: UnitOfWork,
    actor: Actor,
    name: str,
    permissions: list[str],
    now: datetime,
    rate_limit_per_minute: int | None = None,
):
    """A new key; the raw key is returned once and only its hash is stored."""
    unknown = sorted(set(permissions) - {p.value for p in Permission})
    if unknown:
        raise ValidationFailed("permissions", f"unknown permissions: {', '.join(unknown)}")
    roles.check_grant(actor, grantee=roles.GRANT_KEY, permissions=permissions)
    raw = "fk_" + secrets.token_urlsafe(32)
    key = ApiKey(
        clinic_id=actor.clinic_id,
        name=name,
        prefix=raw[:10],
        key_hash=hash_api_key(raw),
        permissions=sorted(set(permissions)),
        created_by_id=actor.user_id,
        created_at=now,
        rate_limit_per_minute=rate_limit_per_minute or DEFAULT_API_KEY_RATE_LIMIT,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="api_key.create",
            subject_type="api_key",
            subject_id=key.id,
            after={
                "name": name,
                "permissions": key.permissions,
                "rate_limit_per_minute": key.rate_limit_per_minute,
            },
            at=now,
        ),
    )
    return key, raw


def list_api_keys(*, session: UnitOfWork, clinic_id: int) -> list[ApiKey]:
    return list(session.scalars(sa.select(ApiKey).where(ApiKey.clinic_id == clinic_id).order_by(ApiKey.id)))


def get_api_key(*, session: UnitOfWork, clinic_id: int, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or key.clinic_id != clinic_id:
        raise NotFound(f"API key {key_id} not found")
    return key


def update_api_key(*, session: UnitOfWork, actor: Actor, key_id: int, changes: dict, now: datetime) -> ApiKey:
    """Rename a key or set its rate limit (requests per minute); audited with before and after."""
    key = get_api_key(session=session, clinic_id=actor.clinic_id, key_id=key_id)
    before = {name: getattr(key, name) for name in changes}
    for name, value in changes.items():
        setattr(key, name, value)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="api_key.update",
            subject_type="api_key",
            subject_id=key.id,
            before=before,
            after=dict(changes),
            at=now,
        ),
    )
    return key


def revoke_api_key(*, session: UnitOfWork, actor: Actor, key_id: int, now: datetime) -> None:
    key = session.get(ApiKey, key_id)
    if key is None or key.clinic_id != actor.clinic_id:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = now
        audit.record(
            session,
            audit.AuditEntry(
                clinic_id=actor.clinic_id,
                actor=actor.ref,
                action="api_key.revoke",
                subject_type="api_key",
                subject_id=key.id,
                at=now,
            ),
        )
