"""What an escalation does for both of the spec's readings (a lead nobody reached, an overdue task
nobody acted on): every active clinic admin is told, once each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.auth import service as auth
from app.auth.roles import Role
from app.notifications import service as notifications


def tell_clinic_admins(
    *, session: Session, clinic_id: int, title: str, body: str, link: str, dedupe_key: str, now: datetime
) -> None:
    """An `escalation` notification to each active clinic_admin; `dedupe_key` names the escalation
    (each admin's copy is keyed by it and the admin, so a redelivered job tells nobody twice)."""
    for admin in auth.list_users(session=session, clinic_id=clinic_id, role=Role.CLINIC_ADMIN):
        if not admin.active:
            continue
        notifications.notify_staff(
            session=session,
            clinic_id=clinic_id,
            user_id=admin.id,
            kind="escalation",
            title=title,
            body=body,
            link=link,
            dedupe_key=f"{dedupe_key}:{admin.id}",
            now=now,
        )
