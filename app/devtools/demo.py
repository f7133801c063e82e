"""The demo clinic: created once, with one user per role; logins kept under var/ (never in git)."""

from __future__ import annotations

import json
import secrets
from datetime import datetime

import sqlalchemy as sa

from app.domains.auth import service as auth
from app.domains.auth.models import Clinic, User
from app.platform.app_db import get_wiring, unit_of_work
from app.platform.config import VAR_DIR
from app.platform.roles import Role

DEMO_DOMAIN = "demo.followup.example"
DEMO_CLINIC_NAME = "Demo Orthodontics"
LOGINS_FILE = "demo-logins.json"


def demo_email(role: Role) -> str:
    return f"{role.value.replace('_', '.')}@{DEMO_DOMAIN}"


def seed(*, now: datetime) -> dict:
    """Create the demo clinic if it is missing; return its id, webhook secret and logins."""
    logins_path = VAR_DIR / LOGINS_FILE
    with unit_of_work() as session:
        # Emails are unique per clinic only: any clinic may have a user with the demo admin's email,
        # so the demo clinic is the one of that name holding it (the first made, should two).
        admin = session.scalar(
            sa.select(User)
            .join(Clinic, Clinic.id == User.clinic_id)
            .where(User.email == demo_email(Role.CLINIC_ADMIN), Clinic.name == DEMO_CLINIC_NAME)
            .order_by(User.id)
            .limit(1)
        )
        if admin is None:
            clinic = auth.create_clinic(
                session=session,
                name=DEMO_CLINIC_NAME,
                now=now,
                hooks=get_wiring().auth,
                timezone="America/New_York",
                holiday_country="US",
            )
            users = [_create_demo_user(session, clinic.id, role, now) for role in Role]
        else:
            clinic = session.get(Clinic, admin.clinic_id)
            users = _known_logins(logins_path) or _reset_demo_passwords(session, clinic.id, now)
        # The single web-form secret of before; none once the clinic has retired it (signing secrets).
        legacy = None if clinic.webhook_secret_retired_at else clinic.webhook_secret
        result = {"clinic_id": clinic.id, "webhook_secret": legacy, "users": users}
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    logins_path.write_text(json.dumps(result["users"], indent=2))
    logins_path.chmod(0o600)
    return result


def _create_demo_user(session, clinic_id: int, role: Role, now: datetime) -> dict:
    password = secrets.token_urlsafe(12)
    data = {
        "email": demo_email(role),
        "name": f"Demo {role.value.replace('_', ' ')}",
        "role": role.value,
        "password": password,
        "timezone": "America/New_York",
    }
    auth.create_user(session=session, clinic_id=clinic_id, actor=None, data=data, now=now)
    return {"email": data["email"], "password": password, "role": role.value}


def _known_logins(path) -> list[dict] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _reset_demo_passwords(session, clinic_id: int, now: datetime) -> list[dict]:
    """The logins file was lost: give the demo users new passwords so they can be printed again."""
    logins = []
    for user in session.scalars(
        sa.select(User).where(User.clinic_id == clinic_id, User.email.like(f"%@{DEMO_DOMAIN}"))
    ):
        password = secrets.token_urlsafe(12)
        user.password_hash = auth.hash_password(password)
        user.updated_at = now
        logins.append({"email": user.email, "password": password, "role": user.role})
    return logins
