"""Everything the lead page shows, each part read by the API's own use case and dumped by the API's
own answer schema for this reader (the PHI policy leaves out what the reader may not see, as in the
API's answers): the lead's story (details, timeline, tasks, automation and its why: story.py), its
conversation, consultations and free slots to book, recalls and timers, and possible duplicates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.console import forms, story
from app.console.wording_rules import VALUES
from app.console.workspace import lead_actions, lead_timeline, what_next
from app.console.workspace.form_input import local_input, schema_choices
from app.domains.activities.models import CallOutcome
from app.domains.assignment import service as assignment
from app.domains.availability import schemas as availability_schemas
from app.domains.availability import service as availability
from app.domains.booking_page import service as booking_page
from app.domains.consultations import listing, timers
from app.domains.consultations import schemas as consultation_schemas
from app.domains.consultations.booking import schemas as slot_schemas
from app.domains.consultations.booking import search
from app.domains.conversations import schemas as conversation_schemas
from app.domains.conversations import threads
from app.domains.lead_messages import schemas as message_schemas
from app.domains.leads import duplicates
from app.domains.leads import service as leads
from app.domains.leads.models import LeadStatus
from app.domains.pipeline import service as pipeline
from app.domains.sequences import service as sequences
from app.domains.tasks import schemas as task_schemas
from app.platform import phi_policy
from app.platform.roles import Actor, Permission

THREAD_SIZE = 30  # the newest messages of the conversation the page shows
SLOT_DAYS, SLOTS_SHOWN = 7, 40  # free slots of the next week, the first of them


@dataclass(frozen=True)
class Ask:
    """What the page was asked for besides the lead: the timeline's page, the type to book."""

    timeline_page: int = 1
    type_id: int | None = None


def lead_page(*, session, actor: Actor, lead_id: int, ask: Ask, now: datetime) -> dict:
    """The page's data; another clinic's lead is a 404 (the first read, story's, says so)."""
    shown = story.lead_story(
        session=session, actor=actor, lead_id=lead_id, now=now, timeline_page=ask.timeline_page
    )
    names = shown["names"]
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    conversation = threads.lead_conversation(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    thread = threads.thread_page(
        session=session, actor=actor, lead_id=lead_id, page=(None, THREAD_SIZE), now=now
    )
    pages = max(1, -(-shown["timeline_total"] // story.TIMELINE))
    with phi_policy.reading_as(actor):
        thread_shown = conversation_schemas.ThreadOut().dump(thread)
        visits = consultation_schemas.ConsultationOut(many=True).dump(
            listing.of_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
        )
        return {
            "story": shown,
            "next": what_next.panel(
                shown["trail"],
                _known(session, actor, shown, thread_shown),
                every_step=actor.can(Permission.CONFIGURE),  # the admins' whole trail, step by step
            ),
            "names": names,
            "may_update": actor.can(Permission.UPDATE),
            "may_book": actor.can(Permission.CREATE),
            "owners": _owners(session, actor),
            "actions": _actions(session, actor, lead),
            # Each open task's due time as its edit form's field holds it (clinic time).
            "task_due_local": {t["id"]: local_input(t["due_at"], names.zone) for t in shown["tasks"]},
            "editable": lead_actions.editable_for(actor),
            "choices": lead_actions.CHOICES,
            "flags": lead_actions.FLAGS,
            "listed": lead_actions.LISTED,
            "task_choices": {
                "type": task_schemas.TYPES,
                "priority": task_schemas.PRIORITIES,
                "outcome": task_schemas.OUTCOMES,
                # A call task ends as its call did (tasks/outcomes.log_call), or was not needed.
                "call_outcome": [*task_schemas.CALL_OUTCOMES, "not_needed"],
                "lost_reason": task_schemas.LOST_REASONS,
            },
            "thread": thread_shown,
            "channels": _reply_channels(),
            "last_channel": conversation.last_inbound_channel if conversation is not None else None,
            "idempotency_key": uuid.uuid4().hex,  # one per drawing of the reply form
            "consultations": visits,
            "booking": _booking(session, actor, ask, now, names.zone),
            "booking_gaps": booking_page.booking_gaps(session, actor.clinic_id),
            "timers": consultation_schemas.TimerOut(many=True).dump(
                timers.of_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
            ),
            "duplicates": duplicates.duplicates_of_lead(session=session, lead=lead),
            "timeline": lead_timeline.entries(
                story=shown,
                thread=thread_shown,
                consultations=visits,
                first_page=ask.timeline_page == 1,
                last_page=ask.timeline_page >= pages,
            ),
            "timeline_pages": pages,
            "timeline_page": ask.timeline_page,
        }


CLOSED = (LeadStatus.CONVERTED, LeadStatus.LOST)


def _actions(session, actor: Actor, lead) -> dict:
    """What the action bar offers this reader on this lead: none on a closed (converted or lost)
    lead or to a reader who may not change it; else the call's outcomes (converted only to who may
    convert, as the API), the stages the lead may move to (the next first, lost last: the board's
    move_targets), and the reasons, all in words."""
    closed = lead.status in CLOSED
    if closed or not actor.can(Permission.UPDATE):
        return {"closed": closed, "offered": False}
    may_convert = actor.can(Permission.CONVERT)
    stages = pipeline.list_stages(session=session, clinic_id=actor.clinic_id)
    named = {stage.slug: stage.name for stage in stages}
    return {
        "closed": False,
        "offered": True,
        "may_convert": may_convert,
        "outcomes": {
            o.value: VALUES["outcome"][o.value]
            for o in CallOutcome
            if o != CallOutcome.CONVERTED or may_convert
        },
        "stages": [
            (slug, named[slug]) for slug in pipeline.move_targets(stages).get(lead.pipeline_stage, [])
        ],
        "lost_reasons": VALUES["lost_reason"],
        "hesitation_reasons": VALUES["hesitation_reason"],
        "form": forms.ActionForm(),  # the move form's CSRF token
    }


def _owners(session, actor: Actor) -> dict[int, str]:
    """Whom the reader may give the lead to ({} when they may not assign)."""
    if not actor.can(Permission.ASSIGN):
        return {}
    return {u.id: u.name for u in assignment.assignable_users(session=session, clinic_id=actor.clinic_id)}


def _known(session, actor: Actor, shown: dict, thread: dict) -> what_next.Known:
    """What the panel's sentences name: the owner, the clinic's sequences, the lead's enrolments and
    tasks, and what its automated messages said (as the thread shows them to this reader)."""
    return what_next.Known(
        names=shown["names"],
        owner_id=shown["lead"].get("assigned_to_id"),
        sequences={
            s.id: s.name for s in sequences.list_sequences(session=session, clinic_id=actor.clinic_id)
        },
        enrollments={e["id"]: e["sequence_id"] for e in shown["trail"].get("enrollments") or []},
        tasks={task["id"]: task for task in shown["tasks"]},
        messages={
            item["notification_id"]: item.get("subject") or item.get("body")
            for item in thread.get("items") or []
            if item.get("notification_id") and (item.get("subject") or item.get("body"))
        },
    )


def _reply_channels() -> tuple[str, ...]:
    """The channels a reply may take: the API schema's own list (it grows with the channels)."""
    return schema_choices(message_schemas.ConversationReplyIn(), "channel")


def _booking(session, actor: Actor, ask: Ask, now: datetime, zone) -> dict:
    """The clinic's consultation types and the free slots of the one asked (or the first) over the
    next SLOT_DAYS local days, from the availability service; no types: a time typed in instead."""
    if not actor.can(Permission.CREATE):
        return {"types": [], "type_id": None, "slots": []}
    types = availability_schemas.TypeOut(many=True).dump(
        availability.list_types(session=session, clinic_id=actor.clinic_id)
    )
    chosen = next((t["id"] for t in types if t["id"] == ask.type_id), types[0]["id"] if types else None)
    slots = []
    if chosen is not None:
        today = now.astimezone(zone).date()
        query = search.SlotQuery(chosen, today, today + timedelta(days=SLOT_DAYS - 1))
        found = search.free_slots(session=session, clinic_id=actor.clinic_id, query=query, now=now)
        slots = slot_schemas.SlotOut(many=True).dump(found[:SLOTS_SHOWN])
    return {"types": types, "type_id": chosen, "slots": slots}
