"""A clinic's automated outreach paused (closed for the holidays) and resumed: every automated
message to a lead (rules', sequences', consultation reminders) due inside the pause is held, moved to
its end as the same step (sent once, never lost), and a sequence's later steps follow it; a resume
before the end lets the held ones go at once. Messages a person sends are not held; a task the
engine makes due inside a bounded pause is due at its end (app/domains/tasks/creation.py). Kept in
the clinic's settings (`outreach_pause`: from, until or null).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.domains.auth.models import Clinic
from app.domains.lead_messages.events import OutreachResumed
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.events import service as events
from app.platform.roles import Actor

KEY = "outreach_pause"
# An open-ended pause: a held message looks again this often (a resume lets it go within the hour).
RECHECK = timedelta(hours=1)
# What a held step's move says (its result's `moved`): how a resume finds the steps to let go.
HELD_NOTE = "the clinic's outreach is paused"
RESUMED_NOTE = "the clinic's outreach resumed"


def window(settings: dict | None) -> tuple[datetime, datetime | None] | None:
    """The clinic's pause (from, until or None: open-ended), if it has one."""
    pause = (settings or {}).get(KEY)
    if not pause:
        return None
    until = pause.get("until")
    return datetime.fromisoformat(pause["from"]), datetime.fromisoformat(until) if until else None


def held_until(settings: dict | None, at: datetime) -> datetime | None:
    """When a message due `at` may go instead, if the pause holds it; None: it goes."""
    pause = window(settings)
    if pause is None:
        return None
    starts, until = pause
    if at < starts or (until is not None and at >= until):
        return None
    return until if until is not None else at + RECHECK


def bounded_end(settings: dict | None, at: datetime) -> datetime | None:
    """The end of the clinic's pause if it has one and it holds `at`; None otherwise, and for an
    open-ended pause (no end to move anything to)."""
    pause = window(settings)
    if pause is None or pause[1] is None or held_until(settings, at) is None:
        return None
    return pause[1]


def describe(settings: dict | None, now: datetime) -> dict:
    pause = window(settings)
    if pause is None:
        return {"from": None, "until": None, "active": False}
    starts, until = pause
    return {"from": starts, "until": until, "active": held_until(settings, now) is not None}


def pause(
    *, session: UnitOfWork, actor: Actor, starts: datetime, until: datetime | None, now: datetime
) -> dict:
    """Pause the clinic's automated outreach from `starts` until `until` (None: until resumed)."""
    if until is not None and until <= max(starts, now):
        raise ValidationFailed("until", "must be after from and after now")
    clinic = session.get(Clinic, actor.clinic_id)
    value = {"from": starts.isoformat(), "until": until.isoformat() if until else None}
    _write(session, clinic, actor, value, now)
    return describe(clinic.settings, now)


def resume(*, session: UnitOfWork, actor: Actor, now: datetime) -> dict:
    """End the pause: the messages it held go now, once (its event's consumer,
    app/domains/automation/held.py, moves each held step to now through the ledger)."""
    clinic = session.get(Clinic, actor.clinic_id)
    before = window(clinic.settings)
    _write(session, clinic, actor, None, now)
    if before is not None:
        until = before[1].isoformat() if before[1] is not None else None
        events.emit(
            session=session,
            event=OutreachResumed(paused_from=before[0].isoformat(), until=until),
            subject=events.Subject(clinic.id, "clinic", clinic.id),
            now=now,
        )
    return describe(clinic.settings, now)


def current(*, session: UnitOfWork, actor: Actor, now: datetime) -> dict:
    return describe(session.get(Clinic, actor.clinic_id).settings, now)


def _write(session: UnitOfWork, clinic: Clinic, actor: Actor, value: dict | None, now: datetime) -> None:
    before = (clinic.settings or {}).get(KEY)
    settings = {key: item for key, item in (clinic.settings or {}).items() if key != KEY}
    clinic.settings = {**settings, KEY: value} if value else settings  # a new dict: the JSON is saved
    clinic.updated_at = now
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=clinic.id,
            actor=actor.ref,
            action="clinic.outreach_pause",
            subject_type="clinic",
            subject_id=clinic.id,
            before={KEY: before},
            after={KEY: value},
            at=now,
        ),
    )
