"""Health checks and heartbeats."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import Database
from app.ops.models import Heartbeat


def record_heartbeat(*, session: Session, name: str, now: datetime, detail: str | None = None) -> None:
    """Upsert the heartbeat row `name` (a worker proves it consumes tasks and can write)."""
    beat = session.get(Heartbeat, name)
    if beat is None:
        session.add(Heartbeat(name=name, at=now, detail=detail))
    else:
        beat.at, beat.detail = now, detail


def heartbeats(*, session: Session) -> dict[str, datetime]:
    return {b.name: b.at for b in session.scalars(sa.select(Heartbeat))}


def readiness(*, db: Database, redis) -> dict[str, str]:
    """'ok' or the error for each dependency the system needs to do its work."""
    checks: dict[str, str] = {}
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"error: {exc.__class__.__name__}: {exc}"[:300]
    try:
        redis.ping()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {exc.__class__.__name__}: {exc}"[:300]
    return checks
