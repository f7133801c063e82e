"""The default automation (docs/guides/clinic.md), seeded into every clinic as editable rules.

Each entry is a rule as the API takes it, plus the `default_key` that seeds it once per clinic.
Three of the defaults are not rules on purpose:
- the reminder before a task is due and the escalation of an overdue task are the task's own
  timers (app/domains/tasks), tuned by the clinic's settings (reminder offsets, escalation hours);
- stopping outreach on an inbound reply, a conversion or a loss is the contact policy: a clinic
  may not switch off "stop messaging someone who answered" (app/domains/sequences/stops.py).
"""

from __future__ import annotations

from app.domains.activities.models import ActivityDirection, ActivityType, CallOutcome
from app.domains.automation.seeded import reference
from app.domains.leads.models import LostReason

NO_SHOW_ACTIVITY = ActivityType.CONSULTATION_NO_SHOW.value
# A missed inbound call, as caller ID logs it (app/domains/intake/inbound/caller_id.py): nobody answered.
MISSED_CALL = (
    {"field": "event.activity_type", "operator": "equals", "value": ActivityType.PHONE_CALL.value},
    {"field": "event.direction", "operator": "equals", "value": ActivityDirection.INBOUND.value},
    {"field": "event.outcome", "operator": "equals", "value": CallOutcome.NO_ANSWER.value},
)
TEXT_BACK_EVERY_HOURS = 12
# Said when the email is planned: when it goes in the clinic's time (quiet hours may hold it; a
# reply or a booking before then cancels it), never that it went before it did.
BREAK_UP_NOTE = "The break-up email {{ email_goes_at }}. Consider marking the lead lost."

# Open but not decided: the stages where the post-consultation follow-up is still wanted.
UNDECIDED_STAGES = ("consultation_completed", "pending_decision")
# Seed 002's "lost (price / timing / not ready)": worth a call in 30 days.
RE_ENGAGE_REASONS = tuple(
    r.value for r in (LostReason.COST_FINANCIAL, LostReason.TIMING_NOT_RIGHT, LostReason.NOT_READY)
)

# The consultation reminders' default hours before the start (the clinic edits the rule's delays).
REMINDER_HOURS = (48, 2)
CONFIRMATION_TEXT = (  # a text to a lead starts with the clinic's name already
    "Your consultation is booked for {{ consultation_time }}. To move or cancel it: {{ consultation_link }}"
)
REMINDER_TEXT = (
    "Reminder: your consultation at {{ clinic_name }} is {{ consultation_time }}. "
    "Reply C to confirm or R to ask for another time."
)

# The long timers' rules: (default_key, name, description, trigger, priority, task title, text).
LONG_TIMERS = (
    (
        "recall_due",
        "Recall date: call and text",
        "On a recall's date (set on the lead: a date or in N months), at the clinic's opening: a call "
        "task to book the planned visit, and a text to the family.",
        "recall.due",
        45,
        "Recall: book the planned visit",
        "Hi {{ first_name }}, this is {{ clinic_name }}: it is time for the visit we planned together. "
        "Reply to this text or call us to book it.",
    ),
    (
        "records_expiring",
        "Records expiring: call and text",
        "Some days before an attended consultation's diagnostic records expire (the clinic's "
        "records_valid_days and records_reminder_days), unless the lead has accepted treatment: a call "
        "task and a text to the family.",
        "records.expiring",
        46,
        "Records expire soon: ask for the decision",
        "Hi {{ first_name }}, {{ clinic_name }} here: the records taken at your consultation are valid "
        "until {{ records_expire_on }}. After that they would need to be taken again, so reply or call "
        "us if you would like to start treatment.",
    ),
    (
        "benefits_reset",
        "Benefits reset: nudge the cost-hesitant",
        "On the clinic's benefits reset date (settings.benefits_reset), every lead pending a decision "
        "for cost or financing gets a call task and a text, once a year.",
        "benefits.reset",
        47,
        "Benefits reset: call about the treatment cost",
        "Hi {{ first_name }}, {{ clinic_name }} here: a new benefits year has started, so your insurance "
        "may now cover more of the treatment we discussed. Reply or call us and we will go through the "
        "numbers with you.",
    ),
)


def _timer_rule(timer: tuple) -> dict:
    key, name, description, trigger, priority, title, text = timer
    call = {"type": "create_task", "title": title, "task_type": "CALL", "assignee": {"kind": "lead_owner"}}
    return {
        "default_key": key, "name": name, "description": description, "trigger": trigger,
        "priority": priority, "conditions": [], "actions": [call, {"type": "send_sms", "body": text}],
    }  # fmt: skip


DEFAULT_RULES: tuple[dict, ...] = (
    *reference.URGENT_RULES,  # an urgent lead: a call within 5 minutes, escalated after 15
    {
        "default_key": "speed_to_lead",
        "name": "Speed to lead: initial contact",
        "description": (
            "A new lead gets a call task due 5 business minutes after capture; its coordinator is told. "
            "An urgent lead gets the urgent call instead (one call task, not two)."
        ),
        "trigger": "lead.created",
        "priority": 10,
        "conditions": [reference.NOT_URGENT],
        "actions": [
            {
                "type": "create_task",
                "title": "Initial contact",
                "task_type": "CALL",
                "priority": "HIGH",
                "description": "Call the new lead: speed to lead wins consultations.",
                "assignee": {"kind": "lead_owner"},
                "delay": {"amount": 5, "unit": "business_minutes"},
            },
            {
                "type": "notify",
                "lead_owner": True,
                "kind": "new_lead",
                "title": "New lead: {{ first_name }} {{ last_name }}",
                "body": "Call before {{ task_due_at }}",
            },
        ],
    },
    {
        "default_key": "stage_task_template",
        "name": "Stage task template",
        "description": "Entering a stage that has a task template creates that task.",
        "trigger": "lead.stage_changed",
        "priority": 20,
        "conditions": [{"field": "stage_task_template_id", "operator": "exists", "value": True}],
        "actions": [{"type": "create_task", "template": "stage", "assignee": {"kind": "lead_owner"}}],
    },
    {
        "default_key": "consultation_confirmation",
        "name": "Consultation booked: confirmation",
        "description": (
            "A consultation booked (or moved to a new time) gets a confirmation message at once, with "
            "its time in the family's timezone."
        ),
        "trigger": "consultation.scheduled",
        "priority": 30,
        "conditions": [],
        "actions": [
            {
                "type": "send_email",
                "subject": "Your consultation at {{ clinic_name }}",
                "body": (
                    "Hi {{ first_name }},\n\nThank you for booking a consultation with {{ clinic_name }}: "
                    "{{ consultation_time }}. We look forward to meeting you. Reply to this email if you "
                    "need to change the time, or move or cancel it yourself: {{ consultation_link }}"
                ),
            }
        ],
    },
    {
        # The confirmation goes by the family's channel: one who gave no email (a phone-only booking
        # on the booking page, a call) is confirmed by text.
        "default_key": "consultation_confirmation_text",
        "name": "Consultation booked: confirmation by text when there is no email",
        "description": "A consultation booked for a family with no email address is confirmed by text.",
        "trigger": "consultation.scheduled",
        "priority": 30,
        "conditions": [{"field": "lead.email", "operator": "exists", "value": False}],
        "actions": [{"type": "send_sms", "body": CONFIRMATION_TEXT}],
    },
    {
        "default_key": "consultation_reminders",
        "name": "Consultation reminders: 48 hours and 2 hours before",
        "description": (
            "Text reminders before a consultation, counted back from its start (edit the hours). A "
            "reply C or YES confirms, R asks for a new time. A reminder the contact policy would hold "
            "past the start is dropped; a reschedule replaces them, a cancel ends them."
        ),
        "trigger": "consultation.scheduled",
        "priority": 31,
        "conditions": [],
        "actions": [
            {
                "type": "send_sms",
                "body": REMINDER_TEXT,
                "delay": {"amount": hours, "unit": "hours", "before": "consultation_start"},
            }
            for hours in REMINDER_HOURS
        ],
    },
    {
        "default_key": "consultation_follow_up",
        "name": "Consultation attended: follow-up call",
        "description": (
            "Three business days after the family checked in for their consultation (or the lead was "
            "moved to Consultation Completed by hand, no check-in recorded), if the lead is still "
            "open, undecided and not contacted since, a call to answer questions and hear the "
            "decision; the owner is told."
        ),
        "trigger": "consultation.attended",
        "priority": 40,
        "conditions": [],
        "actions": [
            {
                "type": "create_task",
                "title": "Follow up after the consultation",
                "task_type": "CALL",
                "priority": "NORMAL",
                "assignee": {"kind": "lead_owner"},
                "delay": {"amount": 3, "unit": "business_days"},
                "deferred": True,
                "recheck": {
                    "stages": list(UNDECIDED_STAGES),
                    "no_contact_since_event": True,
                },
                "notify_owner": True,
            }
        ],
    },
    reference.WEEKLY_FOLLOW_UP,  # a recurring follow-up while pending a decision
    {
        "default_key": "consultation_no_show",
        "name": "Missed consultation: call within 15 minutes",
        "description": (
            "A missed consultation (a CONSULTATION_NO_SHOW on the timeline) gets an urgent call task "
            "due 15 minutes later, to rebook while it is fresh; the owner is told."
        ),
        "trigger": "activity.logged",
        "priority": 55,
        "conditions": [
            {"field": "event.activity_type", "operator": "equals", "value": NO_SHOW_ACTIVITY},
        ],
        "actions": [
            {
                "type": "create_task",
                "title": "Call about the missed consultation",
                "task_type": "CALL",
                "priority": "URGENT",
                "description": "They missed their consultation: call now and rebook it.",
                "assignee": {"kind": "lead_owner"},
                "delay": {"amount": 15, "unit": "minutes"},
                "notify_owner": True,
            }
        ],
    },
    # A lead's long timers (app/domains/consultations/timers.py), each on its day: a call task for the
    # coordinator and a text to the family, through the contact policy.
    *(_timer_rule(timer) for timer in LONG_TIMERS),
    {
        "default_key": "missed_call_text_back",
        "name": "Missed inbound call: text back",
        "description": (
            "Off until the clinic turns it on. A lead's call nobody answered gets a text saying the "
            "clinic will call back (the callback task is caller ID's own), at most one per lead every "
            f"{TEXT_BACK_EVERY_HOURS} hours; the contact policy applies (opt-out, do not contact, "
            "quiet hours). Edit the text here, or point it at a message template (template_id)."
        ),
        "trigger": "activity.logged",
        "priority": 57,
        "active": False,
        "conditions": [dict(condition) for condition in MISSED_CALL],
        "actions": [
            {
                "type": "send_sms",
                "body": (
                    "Sorry we missed your call! This is {{ clinic_name }}: we will call you back shortly. "
                    "Or book your consultation yourself: {{ booking_link }}"
                ),
                "once_per_hours": TEXT_BACK_EVERY_HOURS,
            }
        ],
    },
    reference.REFERRAL,  # a dentist's referral: thank the office, call the family
    {
        "default_key": "callback_requested",
        "name": "Callback requested",
        "description": "A call that ends with a callback request gets a call task the next business day.",
        "trigger": "activity.logged",
        "priority": 60,
        "conditions": [{"field": "event.outcome", "operator": "equals", "value": "callback_requested"}],
        "actions": [
            {
                "type": "create_task",
                "title": "Return the requested callback",
                "task_type": "CALL",
                "priority": "HIGH",
                "assignee": {"kind": "lead_owner"},
                "delay": {"amount": 1, "unit": "business_days"},
            }
        ],
    },
    {
        "default_key": "three_failed_attempts",
        "name": "Three failed attempts: break-up email",
        "description": (
            "At the third failed attempt in a row (a call nobody answered; an email or text whose "
            "reply window passed unanswered; staff's or automation's; one a business day) with no "
            "contact between: one break-up email, a 'mark lost' suggestion and a note to the "
            "coordinator. Any engagement before it goes cancels it."
        ),
        "trigger": "lead.attempt_failed",
        "priority": 70,
        "conditions": [
            {"field": "event.failed_attempts", "operator": "equals", "value": 3},
        ],
        "actions": [
            {
                "type": "send_email",
                "once_per_lead": True,
                "break_up": True,  # it ends the attempts; it is not one
                "subject": "Should we close your file, {{ first_name }}?",
                "body": (
                    "Hi {{ first_name }},\n\nWe have tried to reach you a few times about your visit to "
                    "{{ clinic_name }} and have not managed to. We don't want to keep bothering you, so "
                    "we will close your file unless we hear from you. If you are still interested, just "
                    "reply to this email and we will be in touch, or book your consultation yourself: "
                    "{{ booking_link }}\n\nAll the best,\n{{ clinic_name }}"
                ),
            },
            {"type": "suggest", "suggestion": "mark_lost"},
            {
                "type": "notify",
                "lead_owner": True,
                "kind": "automation",
                "title": "Three failed attempts: {{ first_name }} {{ last_name }}",
                "body": BREAK_UP_NOTE,
            },
        ],
    },
    {
        "default_key": "won_kickoff",
        "name": "Won: treatment kickoff",
        "description": "A converted lead gets a kickoff task for its coordinator.",
        "trigger": "lead.converted",
        "priority": 80,
        "conditions": [],
        "actions": [
            {
                "type": "create_task",
                "title": "Treatment kickoff",
                "task_type": "CALL",
                "priority": "HIGH",
                "description": "Welcome the new patient and book the treatment start.",
                "assignee": {"kind": "lead_owner"},
                "notify_owner": True,
            }
        ],
    },
    {
        "default_key": "lost_re_engagement",
        "name": "Lost (price, timing, not ready): re-engagement call",
        "description": (
            "30 days after a lead is lost for price, timing or not being ready, a re-engagement call "
            "task for its owner (the lead stays lost)."
        ),
        "trigger": "lead.lost",
        "priority": 90,
        "conditions": [
            {
                "field": "event.reason",
                "operator": "in",
                "value": list(RE_ENGAGE_REASONS),
            }
        ],
        "actions": [
            {
                "type": "create_task",
                "title": "Re-engagement call",
                "task_type": "CALL",
                "priority": "NORMAL",
                "description": "They said no for now: see whether the time, the price or the plan now fits.",
                "assignee": {"kind": "lead_owner"},
                "delay": {"amount": 30, "unit": "days"},
                "deferred": True,
                "notify_owner": True,
            }
        ],
    },
)
