"""Caller ID: the phone system's signed webhook for an inbound call.

The call is matched to the clinic's open lead by phone (as an inbound SMS is), or a lead is created
for the caller (source "Phone"); it is logged as an INBOUND PHONE_CALL, which the activity
vocabulary counts as contact: its `activity.logged` event stops pending outreach like a reply.
Stored once per the phone system's call id (a retried delivery answers as the first did).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityDirection, ActivityType, CallOutcome
from app.domains.auth.models import Clinic
from app.domains.intake import service as intake
from app.domains.intake.inbound import messages as inbound
from app.domains.intake.inbound.models import InboundMessage
from app.domains.leads import rules as lead_rules
from app.domains.tasks import creation as task_creation
from app.domains.tasks.models import LeadTaskType, TaskPriority
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed

CALL = "call"  # the InboundMessage channel of calls: their ids are unique per clinic like messages'


@dataclass
class CallAnswer:
    lead_id: int
    activity_id: int
    created_lead: bool


def _answer(row: InboundMessage, created_lead: bool = False) -> CallAnswer:
    return CallAnswer(lead_id=row.lead_id, activity_id=row.activity_id, created_lead=created_lead)


def receive_call(*, session: UnitOfWork, clinic_id: int, call: dict, now: datetime) -> CallAnswer:
    """Log a verified inbound call on its lead (made if nobody has that number), once per call id."""
    seen = inbound.find_seen(session, clinic_id, CALL, call["call_id"])
    if seen is not None:
        return _answer(seen)
    clinic = session.get(Clinic, clinic_id)
    try:
        phone = lead_rules.normalize_phone(call["from"], clinic.default_phone_region)
    except lead_rules.InvalidPhone:
        raise ValidationFailed("from", "not a phone number a lead could be matched or created by") from None
    lead = inbound.match_lead(session=session, clinic=clinic, channel=inbound.SMS, sender=phone)
    created = lead is None

    def write() -> InboundMessage:
        caller = lead
        if caller is None:
            name = call.get("caller_name")
            caller = intake.capture_phone_call(
                session=session, clinic_id=clinic_id, phone=phone, caller_name=name, now=now
            ).lead
        return _record(session, caller, call, min(call.get("started_at") or now, now), now)

    row, first = inbound.record_once(session, clinic_id, CALL, call["call_id"], write)
    return _answer(row, created_lead=created and first)


def is_missed(call: dict) -> bool:
    """Nobody at the clinic answered: the phone system says so, or the call lasted 0 seconds."""
    return call.get("answered") is False or call.get("duration_seconds") == 0


def _record(session: UnitOfWork, lead, call: dict, started_at: datetime, now: datetime) -> InboundMessage:
    seconds = call.get("duration_seconds")
    missed = is_missed(call)
    activity = activities.record(
        session=session,
        lead=lead,
        facts=activities.ActivityFacts(
            type=ActivityType.PHONE_CALL,
            at=started_at,
            recorded_at=now,
            actor_ref=intake.PHONE_SYSTEM_ACTOR,
            direction=ActivityDirection.INBOUND,
            duration_minutes=None if seconds is None else -(-seconds // 60),  # a started minute counts
            outcome=CallOutcome.NO_ANSWER if missed else None,
            details={"call_id": call["call_id"], "channel": CALL, "missed": missed},
        ),
    )
    if missed:  # the lead tried to reach the clinic: someone calls back now
        task_creation.create_system_task(
            session=session,
            lead=lead,
            now=now,
            task=task_creation.SystemTask(
                title="Call back: missed call",
                type=LeadTaskType.CALL,
                due_at=now,
                dedupe_key=f"missed-call:{lead.clinic_id}:{call['call_id']}"[:200],
                origin={"kind": "missed_call", "call_id": call["call_id"]},
                priority=TaskPriority.HIGH,
            ),
        )
    return inbound.store(session, activity=activity, channel=CALL, message_id=call["call_id"], now=now)
