"""The consultations' events: a visit booked, moved, cancelled, attended or missed, and a lead's
long timers firing (recall, records expiry, benefits reset) (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event, optional


@dataclass(frozen=True)
class _ConsultationEvent(Event):
    """A consultation as of the event: its time, version and status (the rules plan its reminders
    from them, and end an earlier time's when it moves)."""

    SUBJECT = "consultation"
    lead_id: int
    consultation_id: int
    starts_at: str
    version: int
    status: str


@dataclass(frozen=True)
class ConsultationScheduled(_ConsultationEvent):
    """A consultation was booked, or moved to a new time (`rescheduled`)."""

    NAME = "consultation.scheduled"
    rescheduled: bool = False


@dataclass(frozen=True)
class ConsultationCancelled(_ConsultationEvent):
    """A consultation was cancelled."""

    NAME = "consultation.cancelled"


@dataclass(frozen=True)
class ConsultationNoShow(_ConsultationEvent):
    """The family did not come: the no-show check found the visit past without a check-in."""

    NAME = "consultation.no_show"


@dataclass(frozen=True)
class ConsultationAttended(Event):
    """The family came: checked in (`checked_in_at`; `after_no_show`: a late check-in of a visit
    marked missed, `no_show_at` when), or moved by hand to consultation_completed with no check-in
    recorded (`by_stage_move`: then no consultation is named)."""

    NAME = "consultation.attended"
    SUBJECT = "consultation"
    lead_id: int
    consultation_id: int | None
    starts_at: str | None = optional()
    version: int | None = optional()
    status: str | None = optional()
    checked_in_at: str | None = optional()
    after_no_show: bool | None = optional()
    no_show_at: str | None = optional()
    by_stage_move: bool | None = optional()


@dataclass(frozen=True)
class _TimerFired(Event):
    """A lead's long timer fired (app/domains/consultations/timers.py): ids and dates only (no note:
    events outlive erasure as ids)."""

    lead_id: int
    timer_id: int
    kind: str
    fires_on: str
    consultation_id: int | None
    expires_on: str | None


@dataclass(frozen=True)
class RecallDue(_TimerFired):
    """A recall's day came: the family is due back (the rules' call task and text)."""

    NAME = "recall.due"


@dataclass(frozen=True)
class RecordsExpiring(_TimerFired):
    """A lead's records (x-rays, scans) are about to expire (`expires_on`)."""

    NAME = "records.expiring"


@dataclass(frozen=True)
class BenefitsReset(_TimerFired):
    """The clinic's insurance benefits reset date reached a lead who hesitated over cost."""

    NAME = "benefits.reset"
