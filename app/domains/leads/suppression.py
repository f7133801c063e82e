"""The suppression list: people erased on request, never to be contacted again.

An entry is a keyed digest (HMAC-SHA256) of a normalised phone or email, never the value: the
erased person's details are gone, yet a capture or import of the same phone or email is recognised.
The key is random per clinic (`clinics.suppression_key`, encrypted with the PHI key): a digest
cannot be tested against guesses without the key, and a PHI key rotation re-encrypts the key
without changing it, so entries made before a rotation keep matching.

A suppressed person captured or imported anew is stored (the clinic sees the enquiry) but marked
do-not-contact with both opt-outs set, so no automated outreach reaches them; a person may
contact the clinic again, and staff decide.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.leads.models import Suppression
from app.platform.db import UnitOfWork


def _digests(key: str, *, phones, emails) -> set[str]:
    values = [f"phone:{p}" for p in phones if p] + [f"email:{e.lower()}" for e in emails if e]
    return {hmac.new(key.encode(), v.encode(), hashlib.sha256).hexdigest() for v in values}


def _key(session: UnitOfWork, clinic_id: int, *, create: bool) -> str | None:
    key = session.scalar(sa.select(Clinic.suppression_key).where(Clinic.id == clinic_id))
    if key is not None or not create:
        return key
    # Two first erasures at once: the conditional UPDATE lets one key win, both then read it.
    session.execute(
        sa.update(Clinic)
        .where(Clinic.id == clinic_id, Clinic.suppression_key.is_(None))
        .values(suppression_key=secrets.token_urlsafe(32))
        .execution_options(synchronize_session=False)
    )
    return session.scalar(sa.select(Clinic.suppression_key).where(Clinic.id == clinic_id))


def suppress(*, session: UnitOfWork, clinic_id: int, phones, emails, now: datetime) -> int:
    """Add the person's phones and emails (normalised) to the clinic's list; returns the new entries."""
    digests = _digests(_key(session, clinic_id, create=True), phones=phones, emails=emails)
    known = set(
        session.scalars(
            sa.select(Suppression.digest).where(
                Suppression.clinic_id == clinic_id, Suppression.digest.in_(digests)
            )
        )
    )
    for digest in sorted(digests - known):
        session.add(Suppression(clinic_id=clinic_id, digest=digest, created_at=now))
    session.flush()
    return len(digests - known)


def is_suppressed(*, session: UnitOfWork, clinic: Clinic, phones, emails) -> bool:
    """Whether any of these (normalised) phones or emails is on the clinic's list."""
    key = clinic.suppression_key
    clinic_id = clinic.id
    if key is None:
        return False  # the clinic never erased anyone
    digests = _digests(key, phones=phones, emails=emails)
    if not digests:
        return False
    query = sa.select(Suppression.id).where(
        Suppression.clinic_id == clinic_id, Suppression.digest.in_(digests)
    )
    return session.connection().execute(query.limit(1)).first() is not None
