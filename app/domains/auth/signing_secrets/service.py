"""A clinic's signing secrets: one per integration, each scoped to the endpoints it may call (the
web form, inbound messages, calls, appointments), made (the secret shown once), listed, rotated with
an overlap, revoked; and the check of a signed request (`verify`).

A request names its secret by X-Followup-Key-Id, so checking it is one HMAC over
f"{timestamp}.{METHOD}.{path}.{body}" (app/domains/auth/signing.py), never a try of every secret.
The clinic's single webhook secret of before still signs web forms, with its old f"{timestamp}.{body}",
until the clinic retires it: by creating a secret with the web-form scope, or by asking.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.auth import signing
from app.domains.auth.models import Clinic, SigningSecret
from app.platform import roles
from app.platform.audit import service as audit
from app.platform.db import MAX_ID, UnitOfWork
from app.platform.errors import Forbidden, InvalidTransition, NotFound, Unauthorized
from app.platform.roles import Actor, Permission

Scope = signing.Scope

# What a secret's holder can do through each door, so that a credential never makes another that
# does more than it may itself (app/platform/roles.py, check_grant): a form or a call makes a lead;
# a message or an appointment changes one (a STOP opts a family out, a cancellation ends a visit).
SCOPE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Scope.WEB_FORM: (Permission.CREATE,),
    Scope.INBOUND: (Permission.CREATE, Permission.UPDATE),
    Scope.CALL: (Permission.CREATE,),
    Scope.APPOINTMENT: (Permission.CREATE, Permission.UPDATE),
}
# last_used_at is written at most this often: a busy form must not write the row on every submission.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _audit(session: UnitOfWork, actor: Actor, action: str, subject_id: int, now: datetime, **after) -> None:
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action=action,
            subject_type="signing_secret",
            subject_id=subject_id,
            after=after or None,
            at=now,
        ),
    )


def _new(session: UnitOfWork, actor: Actor, name: str, scopes: list[str], now: datetime) -> SigningSecret:
    row = SigningSecret(
        clinic_id=actor.clinic_id,
        name=name,
        key_id="fsk_" + secrets.token_hex(8),
        secret="fss_" + secrets.token_urlsafe(32),
        scopes=sorted(set(scopes)),
        created_by_id=actor.user_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def create(
    *, session: UnitOfWork, actor: Actor, name: str, scopes: list[str], now: datetime
) -> SigningSecret:
    """A new secret (stored encrypted: its answer shows it this once, no listing ever does). A secret
    with the web-form scope retires the clinic's single webhook secret: the clinic has rotated."""
    roles.check_grant(
        actor, grantee=roles.GRANT_KEY, permissions={p for s in scopes for p in SCOPE_PERMISSIONS[s]}
    )
    row = _new(session, actor, name, scopes, now)
    _audit(
        session, actor, "signing_secret.create", row.id, now, name=name, scopes=row.scopes, key_id=row.key_id
    )
    if Scope.WEB_FORM in row.scopes:
        retire_legacy(session=session, actor=actor, now=now)
    return row


def list_secrets(*, session: UnitOfWork, clinic_id: int) -> list[SigningSecret]:
    return list(
        session.scalars(
            sa.select(SigningSecret).where(SigningSecret.clinic_id == clinic_id).order_by(SigningSecret.id)
        )
    )


def get(*, session: UnitOfWork, clinic_id: int, secret_id: int) -> SigningSecret:
    row = session.get(SigningSecret, secret_id)
    if row is None or row.clinic_id != clinic_id:
        raise NotFound(f"signing secret {secret_id} not found")
    return row


def rotate(
    *, session: UnitOfWork, actor: Actor, secret_id: int, overlap: timedelta, now: datetime
) -> SigningSecret:
    """A successor with the same name and scopes (a new key id and secret); the old one still
    verifies until `now + overlap`, so the integration can switch without a refused request."""
    old = get(session=session, clinic_id=actor.clinic_id, secret_id=secret_id)
    if not is_live(old, now) or old.replaced_by_id is not None:
        raise InvalidTransition("only a live secret that was not rotated already can be rotated")
    new = _new(session, actor, old.name, old.scopes, now)
    old.replaced_by_id, old.expires_at = new.id, now + overlap
    _audit(
        session, actor, "signing_secret.rotate", old.id, now,
        replaced_by_id=new.id, key_id=new.key_id, expires_at=old.expires_at.isoformat(),
    )  # fmt: skip
    return new


def revoke(*, session: UnitOfWork, actor: Actor, secret_id: int, now: datetime) -> None:
    """Revoke a secret at once (again: nothing changes)."""
    row = get(session=session, clinic_id=actor.clinic_id, secret_id=secret_id)
    if row.revoked_at is None:
        row.revoked_at = now
        _audit(session, actor, "signing_secret.revoke", row.id, now)


def retire_legacy(*, session: UnitOfWork, actor: Actor, now: datetime) -> Clinic:
    """Retire the clinic's single webhook secret: it signs nothing from now on, and its value is
    replaced by one nobody holds (again: nothing changes)."""
    clinic = session.get(Clinic, actor.clinic_id)
    if clinic.webhook_secret_retired_at is None:
        clinic.webhook_secret = secrets.token_urlsafe(32)
        clinic.webhook_secret_retired_at = now
        audit.record(
            session,
            audit.AuditEntry(
                clinic_id=clinic.id, actor=actor.ref, action="clinic.webhook_secret_retire",
                subject_type="clinic", subject_id=clinic.id, at=now,
            ),
        )  # fmt: skip
    return clinic


def is_live(row: SigningSecret, now: datetime) -> bool:
    """Whether the secret still verifies: not revoked, and not past its rotation's overlap."""
    return row.revoked_at is None and (row.expires_at is None or now < row.expires_at)


# --- verifying a signed request --------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """What a signed request says of its signature: its key id, clinic, timestamp and signature
    headers (each None when missing), the method and path it was sent to, and the raw body signed."""

    key_id: str | None
    clinic_ref: str | None
    timestamp: str | None
    signature: str | None
    method: str
    path: str
    raw_body: bytes


def _replay_key(clinic_id: int, signature: str) -> str:
    return f"followup:signed-request:{clinic_id}:{signature}"


def verify(*, session: UnitOfWork, redis, signed: SignedRequest, scope: str, now: datetime) -> int:
    """The id of the clinic whose secret signed this request for `scope`, else 401 (403 when the
    signature is good but the secret may not call this endpoint).

    Every refusal before the signature is checked says the same, so a caller cannot probe which
    clinics or key ids exist. A valid signature is accepted once: it is remembered in Redis (SET NX
    with a TTL longer than the freshness window), and the same signature again is a replay."""
    refused = Unauthorized(
        f"missing, invalid, stale or replayed signature: send {signing.KEY_ID_HEADER}, "
        f"{signing.TIMESTAMP_HEADER} and {signing.SIGNATURE_HEADER}, the hex HMAC-SHA256 of "
        "f'{timestamp}.{METHOD}.{path}.{body}' under the signing secret of that key id"
    )
    if not (signed.timestamp and signed.signature and signing.timestamp_fresh(signed.timestamp, now)):
        raise refused
    if signed.key_id:
        clinic_id = _verify_named(session, signed, scope, now, refused)
    else:
        clinic_id = _verify_legacy(session, signed, scope, refused)
    digest = signing.given_digest(signed.signature)
    if not redis.set(_replay_key(clinic_id, digest), "1", nx=True, ex=signing.REPLAY_MEMORY_SECONDS):
        raise refused
    return clinic_id


def _verify_named(session: UnitOfWork, signed: SignedRequest, scope: str, now: datetime, refused) -> int:
    row = session.scalar(sa.select(SigningSecret).where(SigningSecret.key_id == signed.key_id[:40]))
    if row is None or not is_live(row, now):
        raise refused
    if signed.clinic_ref is not None and signed.clinic_ref.strip() != str(row.clinic_id):
        raise refused  # optional with a key id; when sent, it must be the key's clinic
    expected = signing.sign_request(
        row.secret,
        timestamp=signed.timestamp,
        method=signed.method,
        path=signed.path,
        raw_body=signed.raw_body,
    )
    if not signing.digests_match(expected, signed.signature):
        raise refused
    if scope not in row.scopes:
        raise Forbidden(f"this signing secret may not call {signed.path}: it needs the `{scope}` scope")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row.clinic_id


def _verify_legacy(session: UnitOfWork, signed: SignedRequest, scope: str, refused) -> int:
    """The clinic's single webhook secret, f"{timestamp}.{body}": web forms only, until retired."""
    try:
        clinic_id = int(signed.clinic_ref or "")
    except ValueError:
        raise refused from None
    if not 1 <= clinic_id <= MAX_ID:
        raise refused
    clinic = session.get(Clinic, clinic_id)
    if clinic is None or clinic.webhook_secret_retired_at is not None:
        raise refused
    if not signing.signature_matches(
        clinic.webhook_secret, signed.timestamp, signed.raw_body, signed.signature
    ):
        raise refused
    if scope != Scope.WEB_FORM:
        raise Forbidden(
            f"the clinic's single webhook secret signs web forms only: create a signing secret with the "
            f"`{scope}` scope (POST /api/signing-secrets) and send its {signing.KEY_ID_HEADER}"
        )
    return clinic_id
