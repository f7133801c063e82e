"""The next best action: one recommendation with its reason, from the lead's state. Pure: no I/O,
no clock, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domains.intelligence.contact_time_rules import Slot

CALL_NOW = "call_now"
CALL_AT_BEST_SLOT = "call_at_best_slot"
SEND_BREAKUP_EMAIL = "send_breakup_email"
MOVE_TO_LOST = "move_to_lost"
SCHEDULE_CONSULTATION = "schedule_consultation"
ENROLL_SEQUENCE = "enroll_sequence"
ACTIONS = (
    CALL_NOW,
    CALL_AT_BEST_SLOT,
    SEND_BREAKUP_EMAIL,
    MOVE_TO_LOST,
    SCHEDULE_CONSULTATION,
    ENROLL_SEQUENCE,
)

BREAKUP_AFTER_ATTEMPTS = 3  # the default automation's break-up rule
LOST_AFTER_BREAKUP_DAYS = 7  # no answer a week after the break-up email: let the lead go
SPEED_TO_LEAD = timedelta(hours=1)  # a fresh lead is called at once, whatever the hour's rate
GOOD_ENOUGH = 0.9  # the hour we are in counts as the best when its rate is within 10% of it
LOW_SCORE = 0.15  # below this, a decided-later lead is nurtured by a sequence, not by calls
DECIDING_STAGES = ("consultation_completed", "pending_decision")


@dataclass(frozen=True)
class LeadState:
    """What the next best action reads of a lead (all as of `now`)."""

    is_open: bool
    stage: str
    created_at: datetime
    failed_attempts_in_a_row: int
    contacts: int
    breakup_sent_at: datetime | None
    last_contact_at: datetime | None
    score: float | None
    has_open_task: bool
    do_not_contact: bool = False
    email_allowed: bool = True


@dataclass(frozen=True)
class Action:
    action: str
    reason: str
    at: datetime | None = None

    def as_json(self) -> dict:
        return {"action": self.action, "reason": self.reason, "at": self.at.isoformat() if self.at else None}


def next_best_action(
    state: LeadState, now: datetime, current_rate: float | None, best: Slot | None
) -> Action | None:
    """One recommended action with its reason; None for a closed lead."""
    if not state.is_open:
        return None
    if _breakup_unanswered_for_a_week(state, now):
        days = (now - state.breakup_sent_at).days
        return Action(MOVE_TO_LOST, f"no answer {days} days after the break-up email")
    if state.failed_attempts_in_a_row >= BREAKUP_AFTER_ATTEMPTS and state.breakup_sent_at is None:
        if state.email_allowed and not state.do_not_contact:
            return Action(
                SEND_BREAKUP_EMAIL,
                f"{state.failed_attempts_in_a_row} attempts in a row without an answer",
            )
        return Action(MOVE_TO_LOST, f"{state.failed_attempts_in_a_row} unanswered attempts; no email allowed")
    if state.stage == "contacted" and state.contacts:
        return Action(SCHEDULE_CONSULTATION, "reached, and no consultation booked yet")
    low_score = state.score is not None and state.score < LOW_SCORE
    if state.stage in DECIDING_STAGES and low_score and not state.has_open_task:
        return Action(ENROLL_SEQUENCE, f"undecided with a low score ({state.score:.0%}): nurture by sequence")
    return _call(state, now, current_rate, best)


def _breakup_unanswered_for_a_week(state: LeadState, now: datetime) -> bool:
    sent = state.breakup_sent_at
    if sent is None or (state.last_contact_at is not None and state.last_contact_at >= sent):
        return False
    return now - sent >= timedelta(days=LOST_AFTER_BREAKUP_DAYS)


def _call(state: LeadState, now: datetime, current_rate: float | None, best: Slot | None) -> Action:
    if now - state.created_at <= SPEED_TO_LEAD and state.contacts == 0:
        return Action(CALL_NOW, "new lead: the first hour decides most conversions", now)
    if best is None:
        return Action(CALL_NOW, "no open hours known: call when you can", now)
    if current_rate is not None and current_rate >= GOOD_ENOUGH * best.rate:
        return Action(CALL_NOW, f"this hour answers {current_rate:.0%} of calls, near the week's best", now)
    return Action(
        CALL_AT_BEST_SLOT,
        f"{best.rate:.0%} of calls are answered then ({best.calls} calls), against "
        f"{(current_rate or 0):.0%} now",
        best.starts_at,
    )
