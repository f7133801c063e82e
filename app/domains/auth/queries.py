"""Auth's hot statements, compiled once (`Frozen`)."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.auth.models import Clinic, SecondFactor, User
from app.platform.db import Frozen

# The user behind a bearer token, looked up on every request: a cached Core statement of the
# columns an Actor needs (no ORM object, no session).
_USERS = User.__table__
_ACTOR_OF_USER = Frozen(  # every authenticated request runs it
    sa.select(
        _USERS.c.id,
        _USERS.c.clinic_id,
        _USERS.c.role,
        _USERS.c.email,
        _USERS.c.active,
        _USERS.c.token_version,
    ).where(_USERS.c.id == sa.bindparam("user_id"))
)


def actor_of_user(db, user_id: int) -> list[tuple]:
    """[(id, clinic_id, role, email, active, token_version)] of the user (none if unknown)."""
    with db.single_statement() as conn:
        return _ACTOR_OF_USER.execute(conn, {"user_id": user_id})


# A clinic admin's clinic settings and second factor, read on each of their requests: a clinic that
# requires a factor refuses its admins' sessions opened before it did (login/second_factor.py).
_CLINICS, _FACTORS = Clinic.__table__, SecondFactor.__table__
_FACTOR_OF_USER = Frozen(
    sa.select(_CLINICS.c.settings, _FACTORS.c.confirmed_at)
    .select_from(_USERS.join(_CLINICS, _CLINICS.c.id == _USERS.c.clinic_id).outerjoin(_FACTORS))
    .where(_USERS.c.id == sa.bindparam("user_id"))
)


def factor_of_user(db, user_id: int) -> list[tuple]:
    """[(the clinic's settings, when the user's second factor was confirmed or None)] of the user."""
    with db.single_statement() as conn:
        return _FACTOR_OF_USER.execute(conn, {"user_id": user_id})
