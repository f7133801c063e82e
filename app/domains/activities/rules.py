"""What an activity means, and which ones a client may log. Pure: no I/O, no clock.

The one vocabulary of contact (docs/architecture/contact-and-attempt.md), used by escalation, the
failed-attempt count, staleness and analytics:
- a *contact* is a two-way exchange: an answered call (spoke, or a callback the lead asked for),
  an inbound call, email or SMS, an in-person meeting; a missed inbound call (recorded with the
  outcome no_answer) is the lead trying to reach the clinic, not a contact;
- an *attempt* is an outbound call, email or SMS that got no answer, whoever sent it (staff or
  automation); the break-up email is not one (it ends the attempts, it does not add to them).
Each is a table of shapes (types, direction, outcomes); `is_contact`/`is_attempt` read a single
activity and `contact_clause`/`attempt_clause` are the same tables as SQL, so the two can't drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.activities.models import (
    SYSTEM_TYPES,
    ActivityDirection,
    ActivityType,
    CallOutcome,
    LeadActivity,
)

ANSWERED_OUTCOMES = frozenset(
    {CallOutcome.SPOKE, CallOutcome.CALLBACK_REQUESTED, CallOutcome.NOT_INTERESTED, CallOutcome.CONVERTED}
)
FAILED_OUTCOMES = frozenset({CallOutcome.NO_ANSWER, CallOutcome.VOICEMAIL, CallOutcome.WRONG_NUMBER})
CHANNEL_TYPES = frozenset(
    {ActivityType.PHONE_CALL, ActivityType.EMAIL, ActivityType.SMS, ActivityType.DIRECT_MESSAGE}
)
MESSAGE_TYPES = frozenset({ActivityType.EMAIL, ActivityType.SMS, ActivityType.DIRECT_MESSAGE})
# The key in an activity's `details` that marks the break-up email
# (app/domains/automation/executors/outreach.py).
BREAK_UP = "break_up"


@dataclass(frozen=True)
class Shape:
    """Activities of one of `types`, in `direction` (None: any), whose outcome is one of `outcomes`
    (None: any) and not one of `not_outcomes` (a missing outcome is not one of them)."""

    types: frozenset
    direction: str | None = None
    outcomes: frozenset | None = None
    not_outcomes: frozenset = frozenset()

    def matches(self, type: str | None, direction: str | None, outcome: str | None) -> bool:
        return (
            type in self.types
            and (self.direction is None or direction == self.direction)
            and (self.outcomes is None or outcome in self.outcomes)
            and outcome not in self.not_outcomes
        )

    def clause(self, activity) -> sa.ColumnElement[bool]:
        conditions = [activity.type.in_(_texts(self.types))]
        if self.direction is not None:
            conditions.append(activity.direction == str(self.direction))
        if self.outcomes is not None:
            conditions.append(activity.outcome.in_(_texts(self.outcomes)))
        if self.not_outcomes:
            conditions.append(
                sa.or_(activity.outcome.is_(None), activity.outcome.not_in(_texts(self.not_outcomes)))
            )
        return sa.and_(*conditions)


def _texts(values: Iterable) -> list[str]:
    return sorted(str(v) for v in values)


CALL = frozenset({ActivityType.PHONE_CALL})
CONTACT_SHAPES = (
    Shape(frozenset({ActivityType.IN_PERSON})),
    Shape(CHANNEL_TYPES, ActivityDirection.INBOUND, not_outcomes=FAILED_OUTCOMES),
    Shape(CALL, ActivityDirection.OUTBOUND, outcomes=ANSWERED_OUTCOMES),
)
# Every outbound call, email or SMS is one or the other: a call with no answer recorded is an attempt.
ATTEMPT_SHAPES = (
    Shape(CALL, ActivityDirection.OUTBOUND, not_outcomes=ANSWERED_OUTCOMES),
    Shape(MESSAGE_TYPES, ActivityDirection.OUTBOUND),
)


def is_contact(*, type: str | None, direction: str | None, outcome: str | None = None) -> bool:
    """Whether an activity is a contact: a two-way exchange with the lead."""
    return any(shape.matches(type, direction, outcome) for shape in CONTACT_SHAPES)


def is_attempt(
    *, type: str | None, direction: str | None, outcome: str | None = None, details: dict | None = None
) -> bool:
    """Whether an activity is an attempt: outbound, unanswered (not the break-up email)."""
    if (details or {}).get(BREAK_UP):
        return False
    return any(shape.matches(type, direction, outcome) for shape in ATTEMPT_SHAPES)


def _any_of(shapes: Iterable[Shape], activity) -> sa.ColumnElement[bool]:
    return sa.or_(*(shape.clause(activity) for shape in shapes))


def contact_clause(activity=LeadActivity) -> sa.ColumnElement[bool]:
    """SQL: `activity` is a contact (the same shapes as `is_contact`)."""
    return _any_of(CONTACT_SHAPES, activity)


def attempt_clause(activity=LeadActivity) -> sa.ColumnElement[bool]:
    """SQL: `activity` is an attempt (the same shapes and break-up exclusion as `is_attempt`)."""
    break_up = sa.func.coalesce(activity.details[BREAK_UP].as_boolean(), sa.false())
    return sa.and_(_any_of(ATTEMPT_SHAPES, activity), sa.not_(break_up))


def attempts_in_a_row(activities: Iterable) -> int:
    """Attempts since the last contact, reading `activities` newest first (objects with type,
    direction, outcome and details): a contact ends the run, anything else is passed over."""
    count = 0
    for a in activities:
        facts = {"type": a.type, "direction": a.direction, "outcome": a.outcome}
        if is_contact(**facts):
            break
        if is_attempt(**facts, details=a.details):
            count += 1
    return count


# Phones and laptops drift; a minute of clock skew is not a lie about the future.
FUTURE_TOLERANCE = timedelta(minutes=1)

DIRECTION_REQUIRED = frozenset(
    {ActivityType.PHONE_CALL, ActivityType.EMAIL, ActivityType.SMS, ActivityType.DIRECT_MESSAGE}
)


def call_detail_problems(
    outcome: str | None, callback_at: datetime | None, lost_reason: str | None, now: datetime
) -> dict[str, list[str]]:
    """A call's details beside its outcome: the time the family asked to be called back (with
    callback_requested, in the future), the reason a not_interested family gave."""
    errors: dict[str, list[str]] = {}
    if callback_at is not None and outcome != CallOutcome.CALLBACK_REQUESTED:
        errors["callback_at"] = ["only with the outcome callback_requested"]
    elif callback_at is not None and callback_at <= now:
        errors["callback_at"] = ["must be in the future"]
    if lost_reason is not None and outcome != CallOutcome.NOT_INTERESTED:
        errors["lost_reason"] = ["only with the outcome not_interested"]
    return errors


def call_details(data: dict) -> dict | None:
    """What an activity keeps of a call's details (in clear: ids, a time and a reason code, no PHI):
    the call task it was logged from, the callback time, the lost reason."""
    details = {"task_id": data["task_id"]} if data.get("task_id") is not None else {}
    if data.get("callback_at") is not None:
        details["callback_at"] = data["callback_at"].isoformat()
    if data.get("lost_reason") is not None:
        details["lost_reason"] = data["lost_reason"]
    return details or None


def problems(data: dict, now: datetime) -> dict[str, list[str]]:
    """What is wrong with a client's activity, by field (empty when it may be logged)."""
    errors: dict[str, list[str]] = {}
    kind = data.get("type")
    if kind in SYSTEM_TYPES:
        errors["type"] = [f"{kind} activities are written by the system, not logged by clients"]
        return errors
    direction, outcome = data.get("direction"), data.get("outcome")
    if kind in DIRECTION_REQUIRED and direction is None:
        errors["direction"] = [f"required for {kind}: INBOUND or OUTBOUND"]
    if kind == ActivityType.PHONE_CALL:
        if direction == ActivityDirection.OUTBOUND and outcome is None:
            errors["outcome"] = ["required for an outbound call: " + ", ".join(o.value for o in CallOutcome)]
    elif outcome is not None:
        errors["outcome"] = ["only phone calls have an outcome"]
    errors.update(call_detail_problems(outcome, data.get("callback_at"), data.get("lost_reason"), now))
    if data.get("duration_minutes") is not None and kind not in (
        ActivityType.PHONE_CALL,
        ActivityType.IN_PERSON,
        ActivityType.CONSULTATION_COMPLETED,
    ):
        errors["duration_minutes"] = [f"{kind} activities have no duration"]
    occurred_at = data.get("occurred_at")
    if occurred_at is not None and occurred_at > now + FUTURE_TOLERANCE:
        errors["occurred_at"] = ["cannot be in the future: log an activity once it happened"]
    return errors
