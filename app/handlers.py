"""What runs when something happens: the one handler map of the engine (the composition root).

Every reaction one domain has to another's event or job is listed here, once, in the order it runs:
- `EVENT_HANDLERS`: event type → the consumers an `events.process` job hands each committed event
  to (as its type: `Delivered[E]`, read back through `EVENTS`), in the order listed;
  `AFTER_EVENTS`: once per processing, after them, with all its events;
  `PROCESSED_LATER`: the sweeps' event types, processed on the timers queue instead;
- `JOB_KINDS`: each ledger job kind → the handler a worker runs it with, its queue and shape;
- `STEP_EXECUTORS`: an automation step's action type → what carries it out;
- `CLINIC_SETUP` (a new clinic, in this order), `USER_UNAVAILABLE`, `USER_INVITED`, `USER_AVAILABLE`:
  auth's moments;
- `SEND_GUARDS`: asked just before a message to a lead goes to its provider; `COMPOSERS`: what
  goes instead of its stored texts (engagement's tracked links and open pixel);
- `LEAD_LIST_FILTERS`: the lead list's filters another domain answers;
- `LEAD_FLAGS`: flags of a lead's answer another domain answers;
- `RECEIPT_LISTENERS`: told of each change a provider's receipt makes to a message;
- `STAGE_GUARDS`: asked before a lead is moved to a stage (a refusal raised stops the move).

This module is data: importing it registers nothing. app/bootstrap.py builds the process's one
engine from it (`bootstrap(settings) -> Wiring`, called by create_app): it binds each handler to the
dependencies it names (the settings, the event map, the executors, the send hooks, the caches) and
hands each layer its part; no layer keeps a list for anyone to fill. A domain never registers itself, and the
order a consumer runs in is the order written here, not the order modules were imported in.

Not everything that happens is here: a use case calls the services of the domains below it
directly (intake calls assignment and pipeline); what a unit of work does as it commits is its
`commit()` (app/platform/db/uow.py: the events' one processing job, the ledger's rows, then
publishing the due jobs and the live stream's messages); a `sends_after_commit` kind's handler
returns its send, which the runner calls once the claim has committed.
"""

from __future__ import annotations

import functools

from app.domains.activities import service as activities
from app.domains.activities import stream_notes as reply_notes
from app.domains.activities.events import ActivityLogged
from app.domains.analytics import monthly, rollups
from app.domains.assignment import service as assignment
from app.domains.assignment.events import LeadAssigned
from app.domains.automation import cadence, consultation_steps, held, orphans, processing, steps
from app.domains.automation import service as automation
from app.domains.automation.events import AttemptFailed
from app.domains.automation.executors import actions, fallback, outreach, recurring
from app.domains.availability import feeds as calendar_feeds
from app.domains.bulk import service as bulk
from app.domains.bulk import task_actions
from app.domains.bulk.events import BulkCompleted
from app.domains.consultations import attendance, reactions
from app.domains.consultations import service as consultations
from app.domains.consultations import timers as lead_timers
from app.domains.consultations.events import (
    BenefitsReset,
    ConsultationAttended,
    ConsultationCancelled,
    ConsultationNoShow,
    ConsultationScheduled,
    RecallDue,
    RecordsExpiring,
)
from app.domains.conversations import threads as conversation_threads
from app.domains.engagement import service as engagement
from app.domains.engagement.events import EmailOpened, LinkClicked
from app.domains.intake import imports
from app.domains.intelligence import service as intelligence
from app.domains.intelligence.events import LeadScoreChanged
from app.domains.lead_messages import at_send
from app.domains.lead_messages.events import OutreachResumed
from app.domains.leads import sources
from app.domains.leads.events import LeadCreated, LeadDeleted, LeadUpdated
from app.domains.merging.events import LeadMerged
from app.domains.outbound import invitations, outgoing
from app.domains.outbound.events import MessageBounced
from app.domains.outbound.worker import attempts, batches
from app.domains.pipeline import outcomes
from app.domains.pipeline import service as pipeline
from app.domains.pipeline.events import (
    LeadConverted,
    LeadLost,
    LeadStageChanged,
    LeadStale,
    StagesReordered,
)
from app.domains.sequences import branching, bulk_enrolment, follow_up_pass, stops
from app.domains.sequences import labels as sequence_labels
from app.domains.sequences import service as sequences
from app.domains.tasks import escalation
from app.domains.tasks import outcomes as task_outcomes
from app.domains.tasks import service as tasks
from app.domains.tasks.alerts import handover, overdue, timers
from app.domains.tasks.events import TaskOverdue
from app.domains.tasks.sla import service as sla
from app.domains.webhooks import posting
from app.domains.webhooks import service as webhooks
from app.platform.events import consumers
from app.platform.events.types import Catalogue, Event
from app.platform.scheduling.registry import BULK, TRANSACTIONAL, JobKind

# The events after which a lead's score or next best action may change (not lead.score_changed:
# the re-scoring writes that one).
RESCORED_AFTER = (
    LeadCreated,
    LeadUpdated,
    LeadStageChanged,
    LeadAssigned,
    LeadConverted,
    LeadLost,
    ActivityLogged,
    LeadStale,
    TaskOverdue,
)

# Events of the sweeps, hundreds at a time when nobody works the leads (their tasks overdue, the
# leads stale): processed on the timers queue (consumers.PROCESS_LATER_KIND), never ahead of a new
# lead's on the realtime one (bench/soak).
PROCESSED_LATER = (TaskOverdue, LeadStale)

# Automatic stops of sequences come first (before the rules they would cancel); the rules next
# (automation.process_event for every trigger of app/domains/automation/rules.py); the reports last: they
# may lag, the rules may not.
EVENT_HANDLERS: dict[type[Event], list] = {
    LeadCreated: [
        processing.process_event,
        escalation.schedule_no_contact_escalation,  # no contact within hours of capture
        sla.start_clocks,
        webhooks.enqueue_deliveries,
    ],
    LeadUpdated: [
        stops.on_opt_out,
        stops.on_lead_changed,  # a sequence's exit conditions now met
        activities.note_priority_change,  # a new priority on the lead's timeline
        processing.process_event,
    ],
    LeadDeleted: [stops.on_deleted, sla.on_deleted, lead_timers.end_on_close],
    LeadStageChanged: [
        cadence.on_stage_changed,  # a forward move ends the cadence and its break-up
        stops.on_stage_changed,
        stops.on_lead_changed,  # a sequence's exit conditions now met
        recurring.stop_on_stage_change,  # a recurring follow-up tied to the stage left ends
        lead_timers.end_on_close,  # treatment accepted: its recalls and records reminder end
        attendance.attend_by_stage_move,  # moved to consultation_completed, no check-in recorded
        processing.process_event,
        rollups.on_stage_changed,
    ],
    LeadAssigned: [stops.on_lead_changed, processing.process_event],
    LeadConverted: [
        stops.on_converted,
        processing.process_event,
        tasks.close_tasks_of_closed_lead,  # its open tasks (and their timers) are cancelled
        lead_timers.end_on_close,  # its recalls and records reminder
        sla.on_converted,
        webhooks.enqueue_deliveries,
    ],
    LeadLost: [
        stops.on_lost,
        processing.process_event,
        tasks.close_tasks_of_closed_lead,
        lead_timers.end_on_close,
        sla.on_lost,
        webhooks.enqueue_deliveries,
    ],
    ActivityLogged: [
        cadence.on_activity,  # a failed call counts; a message's reply window starts; a contact ends it
        stops.on_inbound_contact,
        task_outcomes.complete_on_reply,  # a reply completes the automation's tasks to reach the lead
        branching.on_call_logged,  # a sequence waiting for a call takes its branch
        task_outcomes.complete_call_task_on_call,  # a call logged on the timeline ends its due call task
        outcomes.close_on_call_outcome,  # a call logged "not interested" or "converted" closes the lead
        processing.process_event,
        intelligence.label_reply,
        reply_notes.tell_owner_of_reply,  # a reply: on its lead's owner's live stream
        reactions.on_reply,  # C or YES confirms the next consultation, R asks for another time
        sla.on_activity,
        rollups.on_activity_logged,
    ],
    LeadStale: [processing.process_event],
    # The cadence plans the next attempt; the break-up rule fires on the third.
    AttemptFailed: [cadence.plan_next_attempt, processing.process_event],
    TaskOverdue: [
        processing.process_event,
        overdue.tell_overdue,  # told to its assignee at once
        webhooks.enqueue_deliveries,
    ],
    LeadScoreChanged: [stops.on_lead_changed, processing.process_event],
    BulkCompleted: [webhooks.enqueue_deliveries],
    StagesReordered: [rollups.on_stages_reordered],
    # The bounced step goes by its fallback channel before the bounce ends the lead's sequences.
    MessageBounced: [fallback.on_failed, stops.on_bounced],
    # Engagement (app/domains/engagement): an email's first counted open, a link's first click; a
    # sequence waiting for one takes its branch, and rules on them fire.
    EmailOpened: [branching.on_engagement, processing.process_event],
    LinkClicked: [branching.on_engagement, processing.process_event],
    # A consultation's earlier steps end (an old time's reminders) before its rules plan the new ones.
    ConsultationScheduled: [
        cadence.on_booked,  # a booking ends the cadence and its break-up
        consultation_steps.end_earlier_steps,
        processing.process_event,
    ],
    ConsultationCancelled: [consultation_steps.end_earlier_steps, processing.process_event],
    ConsultationAttended: [
        cadence.on_attended,
        consultation_steps.end_earlier_steps,
        consultation_steps.end_no_show_call,  # a late check-in: the no-show's call is not needed
        processing.process_event,
    ],
    ConsultationNoShow: [consultation_steps.end_earlier_steps, processing.process_event],
    # A lead's long timers fired (app/domains/consultations/timers.py): the rules' call task and text.
    RecallDue: [processing.process_event],
    RecordsExpiring: [processing.process_event],
    BenefitsReset: [processing.process_event],
    # An early resume: the messages the pause held go now.
    OutreachResumed: [held.release_held_steps],
}
# Every event the engine writes, those no consumer above takes included (a webhook or the reports may):
# what a stored event's name is read back as, and what docs/architecture/events.md is written from.
EVENTS = Catalogue(
    [
        LeadCreated, LeadUpdated, LeadDeleted, LeadMerged, LeadAssigned, LeadStageChanged,
        LeadConverted, LeadLost, LeadStale, StagesReordered, ActivityLogged, AttemptFailed, TaskOverdue,
        LeadScoreChanged, BulkCompleted, MessageBounced, EmailOpened, LinkClicked,
        ConsultationScheduled, ConsultationCancelled, ConsultationAttended, ConsultationNoShow,
        RecallDue, RecordsExpiring, BenefitsReset, OutreachResumed,
    ]
)  # fmt: skip

# Once per processing, after the consumers above: a lead's re-scoring and its monthly recount are
# background jobs of their own (off a new lead's path), a drainer's batch of leads in one pass.
AFTER_EVENTS = [
    functools.partial(intelligence.queue_rescoring, watched=tuple(event.NAME for event in RESCORED_AFTER)),
    monthly.on_events,
]

# Drained kinds: under load, one delivery processes the rows of many transactions, up to `batch`
# to a transaction. Timers write only in their transaction: rows due together run in batches.
# Kinds that `sends_after_commit` send after the claim commits and record the outcome in a unit of their own.
JOB_KINDS = [
    JobKind(consumers.PROCESS_KIND, consumers.process_events, "realtime", drain=True, batch=10),
    JobKind(consumers.PROCESS_LATER_KIND, consumers.process_events, "timers", drain=True, batch=10),
    JobKind(steps.STEP_KIND, steps.run_step_job, "realtime"),
    JobKind(steps.SEQUENCE_STEP_KIND, steps.run_step_job, "bulk", yields=True, lane=BULK),
    # The timers of leads and tasks, off a new lead's path: when nobody contacts the leads, every
    # one's clocks warn and breach and its task escalates minutes later, a load as large as the
    # leads' own (bench/soak) that must never slow a new lead's speed to lead. They step aside
    # while a new lead's processing waits (`yields`): a reminder or a breach a few seconds late
    # (at most yield_at_most_seconds) costs nobody the lead a slow first call would.
    JobKind(timers.REMINDER, timers.send_task_reminder, "timers", batch=50, yields=True),
    JobKind(timers.ESCALATION, escalation.escalate_overdue_task, "timers", batch=50, yields=True),
    JobKind(
        escalation.LEAD_ESCALATION, escalation.escalate_uncontacted_lead, "timers", batch=50, yields=True
    ),
    # Two for every new lead, due minutes later: published once due, many to a message, rather
    # than held as eta messages by a worker (JobKind.when_due).
    JobKind(sla.WARN, sla.warn, "timers", batch=50, when_due=True, yields=True),
    JobKind(sla.BREACH, sla.breach, "timers", batch=50, when_due=True, yields=True),
    JobKind(consultations.NO_SHOW_CHECK, consultations.detect_no_show, "timers", batch=50, yields=True),
    JobKind(lead_timers.TIMER_KIND, lead_timers.fire, "timers", batch=50, yields=True),
    # A text or email's reply window passed: a failed attempt, if nobody answered (the cadence).
    JobKind(cadence.REPLY_WINDOW_KIND, cadence.reply_window_passed, "timers", batch=50, yields=True),
    # Someone may own leads again: those captured while nobody could get an owner.
    JobKind(assignment.WAITING_LEADS_KIND, assignment.give_waiting_leads, "timers"),
    # Messages, webhooks, bulk work and imports are taken in turns between clinics, transactional
    # messages before a campaign's (app/platform/scheduling/turns.py). A message that is to wait (a
    # retry while its provider is down, quiet hours, a clinic's rate limit) waits in the ledger, not
    # in the sender's memory (`when_due`); one due now goes at once.
    JobKind(
        outgoing.DELIVER, attempts.claim_delivery, "notifications", sends_after_commit=True,
        lane=TRANSACTIONAL, when_due=True,
    ),
    JobKind(
        outgoing.DELIVER_BULK, attempts.claim_delivery, "notifications", sends_after_commit=True, lane=BULK,
        when_due=True,
    ),
    JobKind(
        outgoing.DELIVER_BATCH, batches.claim_batch, "notifications", sends_after_commit=True, yields=True,
        lane=BULK, when_due=True,
    ),
    JobKind(
        outgoing.DELIVER_TOGETHER, batches.claim_batch, "notifications", sends_after_commit=True,
        lane=TRANSACTIONAL, when_due=True,
    ),
    # Receivers are the clinics' servers: a slow one must not delay anyone's email or SMS.
    JobKind(
        webhooks.DELIVER_KIND, posting.deliver, "webhooks", sends_after_commit=True, lane=TRANSACTIONAL,
        when_due=True,
    ),
    JobKind(bulk.CHUNK_KIND, bulk.run_tasks_chunk, "bulk", yields=True, lane=BULK),
    JobKind(task_actions.CHUNK_KIND, task_actions.run_chunk, "bulk", yields=True, lane=BULK),
    JobKind(bulk_enrolment.CHUNK_KIND, bulk_enrolment.run_chunk, "bulk", yields=True, lane=BULK),
    JobKind(imports.CHUNK_KIND, imports.run_import_chunk, "bulk", yields=True, lane=BULK),
    # A provider's calendar feed read (an HTTP GET with a timeout): in turns between clinics.
    JobKind(calendar_feeds.READ_FEED, calendar_feeds.read_feed, "bulk", yields=True, lane=BULK),
    # A clinic's follow-up pass at a send window: its paced sequences' next messages, in turns.
    JobKind(follow_up_pass.PASS_KIND, follow_up_pass.run_pass, "bulk", yields=True, lane=BULK),
    JobKind(
        intelligence.RESCORE_KIND, intelligence.rescore_jobs, "bulk", drain=True, batch=50, together=True,
        derived=True, due_later=True,
    ),
    JobKind(
        monthly.RECOUNT_KIND, monthly.recount_jobs, "bulk", drain=True, batch=50, together=True, derived=True,
        due_later=True,
    ),
]  # fmt: skip

STEP_EXECUTORS = {
    "create_task": actions.create_task,
    "notify": actions.notify,
    "assign": actions.assign,
    "suggest": actions.suggest,
    "update_stage": actions.update_stage,
    "set_priority": actions.set_priority,
    "recurring_follow_up": recurring.recurring_follow_up,  # one occurrence, and the next planned
    "send_email": outreach.send_email,  # through the contact policy
    "send_sms": outreach.send_sms,
    "send_instagram": outreach.send_instagram,
    "send_whatsapp": outreach.send_whatsapp,
    "sequence_step": sequences.run_sequence_step,
    "enroll_sequence": sequences.enroll_from_rule,
    "sequence_wait": branching.on_timeout,  # a branching step's wait timed out
}

# A new clinic's setup, in this order: sources and stages before the rules that name them.
CLINIC_SETUP = [sources.seed_default_sources, pipeline.seed_default_stages, automation.seed_default_rules]
# A user gone inactive or out of office: their leads, then their open tasks, follow.
USER_UNAVAILABLE = [assignment.hand_over_open_leads, handover.hand_over_open_tasks]
USER_AVAILABLE = [assignment.on_user_available]  # the leads captured while nobody could own them
USER_INVITED = [invitations.send_invitation]  # their password-setup link, by email
# Flags of a lead's answer (a read and the list) another domain answers, for a page of leads at once.
LEAD_FLAGS = {"in_sequence": sequence_labels.leads_in_sequence}  # the spec's label
# Told of each change a provider's receipt makes to a message (delivered, opened, failed).
RECEIPT_LISTENERS = [conversation_threads.tell_status]  # the thread's status, on the owner's stream
# A lead's move to a stage another domain's facts forbid (the pipeline cannot import them).
STAGE_GUARDS = [attendance.refuse_completion_before_visit]  # a visit booked here has started first
SEND_GUARDS = [at_send.guard]  # the contact policy, checked again as each message to a lead goes
COMPOSERS = [engagement.tracked]  # a message to a lead's links through the redirect, as it goes
LEAD_LIST_FILTERS = {
    "next_step": orphans.conditions,  # next_step=none: the orphans
    "in_sequence": sequence_labels.list_conditions,  # the spec's label: an active enrollment
}
