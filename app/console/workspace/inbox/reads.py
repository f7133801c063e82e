"""What the inbox pages show, each part read by the API's own use case and dumped by the API's own
answer schema for this reader (the PHI policy leaves out a message's texts and previews for a reader
without `lead:phi`, as the API's answers do), plus the spec's "In sequence" label of each lead."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import MappingProxyType

from marshmallow import ValidationError

from app.console import wording
from app.console.story import names_of_clinic
from app.console.workspace import lead_reads
from app.console.workspace.inbox import snoozing
from app.domains.conversations import inbox, linking, threads
from app.domains.conversations import schemas as conversation_schemas
from app.domains.conversations.models import OPEN
from app.domains.lead_messages import templates as message_templates
from app.domains.leads import listing
from app.domains.leads import schemas as lead_schemas
from app.domains.leads import service as leads
from app.domains.sequences import labels as sequence_labels
from app.domains.tasks import schemas as task_schemas
from app.domains.tasks import service as tasks
from app.domains.tasks.models import OPEN_TASK_STATUSES
from app.platform import phi_policy
from app.platform.db import PageRequest
from app.platform.errors import NotFound, ValidationFailed
from app.platform.roles import Actor, Permission

PAGE_SIZE = 50  # rows of the inbox a page shows
THREAD_SIZE = 30  # the newest messages a thread shows
FOUND_LEADS = 10  # leads a search for an unknown sender's family shows
TASKS_READ = 50  # the lead's tasks by due time, read for the first still open
INBOX_ARGS = conversation_schemas.InboxArgs()


def inbox_filters(query: dict) -> dict:
    """The URL's view, unread, channel and status as the API reads them (the console shows the open
    conversations unless asked for the resolved ones); a ValidationError names the field."""
    names = ("view", "unread", "channel", "status", "cursor")
    wanted = {"status": OPEN, **{name: query[name] for name in names if query.get(name)}}
    # A read-only mapping, not a dict: the schema then reads it as a query string (`true` a boolean).
    return INBOX_ARGS.load(MappingProxyType(wanted))


def inbox_rows(*, session, actor: Actor, filters: dict, now: datetime) -> dict:
    """A page of the team inbox as GET /api/conversations answers it, each lead's row with whether
    the lead is in an active sequence (the spec's label)."""
    found = inbox.inbox_page(
        session=session, actor=actor, filters=filters, cursor=filters.get("cursor"), limit=PAGE_SIZE, now=now
    )
    with phi_policy.reading_as(actor):
        page = conversation_schemas.InboxOut().dump(found)
    lead_ids = [row["lead"]["id"] for row in page["items"] if row.get("lead")]
    in_sequence = sequence_labels.leads_in_sequence(session, lead_ids)
    for row in page["items"]:
        row["in_sequence"] = bool(row.get("lead")) and row["lead"]["id"] in in_sequence
    return {
        **page,
        "names": names_of_clinic(session=session, actor=actor),
        "unread_threads": inbox.unread_threads(session=session, actor=actor, now=now),
    }


def lead_thread(*, session, actor: Actor, lead_id: int, now: datetime) -> dict:
    """A lead's thread as GET /api/leads/{id}/conversation answers it (a 404 for another clinic's),
    the clinic's message templates its reply box offers, and the lead's card beside it."""
    thread = threads.thread_page(
        session=session, actor=actor, lead_id=lead_id, page=(None, THREAD_SIZE), now=now
    )
    conversation = threads.lead_conversation(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    lead = listing_lead(session=session, actor=actor, lead_id=lead_id, now=now)
    with phi_policy.reading_as(actor):
        return {
            "thread": conversation_schemas.ThreadOut().dump(thread),
            "lead": lead,
            "in_sequence": bool(sequence_labels.leads_in_sequence(session, [lead_id])),
            "names": names_of_clinic(session=session, actor=actor),
            "may_update": actor.can(Permission.UPDATE),
            "may_read_phi": phi_policy.may_read_phi(actor),
            "channels": lead_reads._reply_channels(),
            "last_channel": conversation.last_inbound_channel if conversation is not None else None,
            "idempotency_key": uuid.uuid4().hex,  # one per drawing of the reply form
            "reply_templates": reply_templates(session=session, actor=actor),
            "next_task": _next_task(session, actor, lead_id),
            "owners": lead_reads._owners(session, actor),  # whom the card may give the lead to
            "snooze_choices": list(snoozing.CHOICES),
        }


def reply_templates(*, session, actor: Actor) -> list[dict]:
    """The clinic's message templates a reply may start from (as the rule builder lists them), each
    with its channel, texts unmerged: the merge fields are filled as the reply goes."""
    if not actor.can(Permission.UPDATE):
        return []
    return [
        {"id": t.id, "name": t.name, "channel": t.channel, "subject": t.subject, "body": t.body}
        for t in message_templates.list_templates(session=session, clinic_id=actor.clinic_id)
    ]


def with_template(*, session, actor: Actor, posted: dict) -> dict:
    """The reply box as posted, its channel, subject and message now the chosen template's, merge
    fields left as written (the reply merges them as it goes); a ValidationFailed names the field
    when none of the clinic's templates was chosen."""
    try:
        template = message_templates.get_template(
            session=session, clinic_id=actor.clinic_id, template_id=int(posted.get("template_id") or "")
        )
    except (ValueError, NotFound):
        raise ValidationFailed("template_id", wording.CHOOSE_SAVED_REPLY) from None
    texts = {"channel": template.channel, "subject": template.subject or "", "body": template.body}
    return {**posted, **texts}


def _next_task(session, actor: Actor, lead_id: int) -> dict | None:
    """The lead's open task due first (the card's "next task"), as GET /api/leads/{id}/tasks lists it."""
    found, _ = tasks.list_lead_tasks(
        session=session, actor=actor, lead_id=lead_id, status=None, paging=PageRequest(1, TASKS_READ)
    )
    still_open = [task for task in found if task.status in OPEN_TASK_STATUSES]
    return task_schemas.TaskOut().dump(still_open[0]) if still_open else None


def listing_lead(*, session, actor: Actor, lead_id: int, now: datetime) -> dict:
    """The lead's name and phone as GET /api/leads/{id} shows them to this reader."""
    lead = leads.read_lead(session=session, actor=actor, lead_id=lead_id, now=now)
    with phi_policy.reading_as(actor):
        return lead_schemas.LeadOut().dump(lead)


def unknown_thread(*, session, actor: Actor, conversation_id: int, search: str, now: datetime) -> dict:
    """An unknown sender's thread (a 404 for another clinic's, or once it is a lead's), and the leads
    a search by name or phone finds (GET /api/leads?q=), to link it to."""
    conversation = linking.unknown_sender(
        session=session, clinic_id=actor.clinic_id, conversation_id=conversation_id
    )
    thread = threads.page_of(
        session=session, conversation=conversation, actor=actor, cursor=None, limit=THREAD_SIZE
    )
    with phi_policy.reading_as(actor):
        return {
            "conversation": conversation,
            "thread": conversation_schemas.ThreadOut().dump(thread),
            "names": names_of_clinic(session=session, actor=actor),
            "search": search,
            "found": _search(session, actor, search, now),
            "may_update": actor.can(Permission.UPDATE),
            "may_create": actor.can(Permission.CREATE),
        }


def _search(session, actor: Actor, search: str, now: datetime) -> list[dict] | None:
    if not search.strip():
        return None
    try:
        args = lead_schemas.LeadQueryArgs().load({"q": search.strip()})
    except ValidationError:
        return []
    sort = args.pop("sort")
    found, _ = listing.list_leads(
        session=session, actor=actor, filters=args, sort=sort, paging=PageRequest(1, FOUND_LEADS), now=now
    )
    return lead_schemas.LeadOut(many=True).dump(found)
