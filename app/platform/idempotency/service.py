"""Idempotency keys: reserve, complete, replay (the `idempotent` view decorator in web.py uses them).

The same key with the same request (method, path, body) within KEY_LIFETIME answers the first
response and writes nothing; the same key with another request is a 422 naming the header. The
reservation is a row under a unique (clinic, actor, key) constraint, inserted in its own transaction
before the view runs: of two concurrent duplicates only one gets it; the other is told to retry (409).
The view's writes and the answer stored under the key are one transaction (the decorator hands the
view the unit of work it then stores the answer in): a request that dies or loses its connection in
between has written nothing, so its reservation, left unfinished, is taken over once it is older
than the lease (settings.idempotency_lease_seconds) and the retry makes the thing once. A request
still running when taken over stores nothing: its answer is stored only under its own reservation,
else its transaction rolls back (409). Expired keys are purged in batches
by a beat sweep.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, ValidationFailed
from app.platform.idempotency.models import IdempotencyKey
from app.platform.roles import Actor

HEADER = "Idempotency-Key"
KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 200
REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class KeyedRequest:
    """A request that carries an Idempotency-Key: whose key it is (`actor`), the key, and what was
    asked (method, path, and the `request_hash` digest)."""

    actor: Actor
    key: str
    method: str
    path: str
    digest: str


@dataclass(frozen=True)
class Reservation:
    """The key `actor` reserved at `reserved_at` for a request, until its answer is stored under it
    (`complete`) or the key is freed (`release`)."""

    actor: Actor
    key: str
    reserved_at: datetime


def _header_error(message: str) -> ValidationFailed:
    error = ValidationFailed(HEADER, message)
    error.errors = {"headers": {HEADER: [message]}}
    return error


def request_hash(*, method: str, path: str, body: bytes, query: bytes = b"") -> str:
    """A digest of the request: method, path, query string (it changes what a POST does, e.g.
    `?reject_duplicates=true`) and body; JSON bodies are canonicalised (key order and spacing do
    not matter)."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    target = path.encode() + (b"?" + query if query else b"")
    return hashlib.sha256(method.encode() + b" " + target + b"\n" + canonical).hexdigest()


def reserve(
    *, session: UnitOfWork, request: KeyedRequest, lease: timedelta, now: datetime
) -> IdempotencyKey | None:
    """Take the key for this request (None), or return the stored row of the first request with it;
    an unanswered reservation older than `lease` is taken over (its request died)."""
    actor, key = request.actor, request.key
    if not key or len(key) > MAX_KEY_LENGTH:
        raise _header_error(f"give 1 to {MAX_KEY_LENGTH} characters")
    where = (
        IdempotencyKey.clinic_id == actor.clinic_id,
        IdempotencyKey.actor == actor.ref,
        IdempotencyKey.key == key,
    )
    existing = session.scalar(sa.select(IdempotencyKey).where(*where))
    if existing is not None and existing.created_at <= now - KEY_LIFETIME:
        session.delete(existing)  # expired: the key is free again
        session.flush()
        existing = None
    if existing is not None and existing.response_status is None and existing.created_at <= now - lease:
        return _take_over(session, existing, request=request, now=now)
    if existing is not None:
        if existing.request_hash != request.digest:
            raise _header_error("this key was used with a different request")
        if existing.response_status is None:
            raise Conflict(
                f"a request with this {HEADER} is still in progress; retry later",
                code="idempotency_in_progress",
            )
        return existing
    try:
        with session.begin_nested():
            session.add(
                IdempotencyKey(
                    clinic_id=actor.clinic_id,
                    actor=actor.ref,
                    key=key,
                    method=request.method,
                    path=request.path[:500],
                    request_hash=request.digest,
                    created_at=now,
                )
            )
    except sa.exc.IntegrityError:
        raise Conflict(
            f"a request with this {HEADER} is still in progress; retry later", code="idempotency_in_progress"
        ) from None
    return None


def _take_over(session: UnitOfWork, stale: IdempotencyKey, *, request: KeyedRequest, now: datetime) -> None:
    """Claim an unfinished reservation whose request crashed before answering (it wrote nothing:
    its writes commit with its answer, see `idempotent`). Compare-and-set on the
    old reservation time, so of two retries racing for it only one wins; the other gets the 409."""
    taken = session.execute(
        sa.update(IdempotencyKey)
        .where(
            IdempotencyKey.id == stale.id,
            IdempotencyKey.response_status.is_(None),
            IdempotencyKey.created_at == stale.created_at,
        )
        .values(method=request.method, path=request.path[:500], request_hash=request.digest, created_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise Conflict(
            f"a request with this {HEADER} is still in progress; retry later", code="idempotency_in_progress"
        )
    return None


def _still_reserved(reservation: Reservation) -> tuple:
    """The reservation this request took, unless a retry took it over since (a request still
    running past the lease: the retry answers instead)."""
    return (
        IdempotencyKey.clinic_id == reservation.actor.clinic_id,
        IdempotencyKey.actor == reservation.actor.ref,
        IdempotencyKey.key == reservation.key,
        IdempotencyKey.response_status.is_(None),
        IdempotencyKey.created_at == reservation.reserved_at,
    )


def complete(
    *,
    session: UnitOfWork,
    reservation: Reservation,
    status: int,
    body: str,
    content_type: str,
    now: datetime,
) -> None:
    """Store the first answer under the key, in the transaction of the request's writes; Conflict
    (and so none of them) if a retry took the reservation over meanwhile."""
    stored = session.execute(
        sa.update(IdempotencyKey)
        .where(*_still_reserved(reservation))
        .values(
            response_status=status, response_body=body, response_content_type=content_type, completed_at=now
        )
        .execution_options(synchronize_session=False)
    )
    if stored.rowcount != 1:
        raise Conflict(
            f"a retry with this {HEADER} took this request over; retry to read its answer",
            code="idempotency_in_progress",
        )


def release(*, session: UnitOfWork, reservation: Reservation) -> None:
    """Free the key after a failure (a 5xx, an exception), whose writes were rolled back: the client
    may retry. A reservation taken over by a retry is the retry's, and stays."""
    session.execute(sa.delete(IdempotencyKey).where(*_still_reserved(reservation)))


def purge_expired(*, session: UnitOfWork, now: datetime, limit: int) -> int:
    """Delete up to `limit` keys older than KEY_LIFETIME (oldest first); returns how many."""
    oldest = (
        sa.select(IdempotencyKey.id)
        .where(IdempotencyKey.created_at <= now - KEY_LIFETIME)
        .order_by(IdempotencyKey.created_at)
        .limit(limit)
    )
    result = session.execute(
        sa.delete(IdempotencyKey)
        .where(IdempotencyKey.id.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def purge_expired_keys(*, db, now: datetime) -> int:
    """The beat sweep: purge expired keys one short transaction of `db` (the app's Database) per
    batch (no long lock, no bloat of one huge DELETE), until a batch comes back short."""
    batch, purged = db.settings.idempotency_purge_batch, 0
    while True:
        with db.unit_of_work() as session:
            deleted = purge_expired(session=session, now=now, limit=batch)
        purged += deleted
        if deleted < batch:
            return purged
