"""Which activities a client may log, and with what. Pure: no I/O, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.activities.models import SYSTEM_TYPES, ActivityDirection, ActivityType, CallOutcome

# Phones and laptops drift; a minute of clock skew is not a lie about the future.
FUTURE_TOLERANCE = timedelta(minutes=1)

DIRECTION_REQUIRED = frozenset({ActivityType.PHONE_CALL, ActivityType.EMAIL, ActivityType.SMS})


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
