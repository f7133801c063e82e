"""How the console says a value to a person: names for the ids of users, sources and stages, lists
and objects as text, times in the clinic's timezone. Pure: the names and the zone are read once per
page by the page's service (story.py) and handed in as `Names`. The rule language's words (triggers,
fields, operators, actions, units, a sequence's waits) and the sentences rules are said in are this
table's too, in wording_rules.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import phonenumbers

# Lead fields whose values are codes (an enum's member), said as words; any other text is shown as typed.
CODED = frozenset(
    ("status", "preferred_contact", "patient_relationship", "treatment_interest", "hesitation_reason",
     "lost_reason", "temperature", "source_category")
)  # fmt: skip
# Ids the console names, by the lead field that holds them, and the label it shows instead of the key.
NAMED_IDS = {"assigned_to_id": ("users", "owner"), "source_id": ("sources", "source")}
TIME_FORMAT = "%a %d %b %Y, %H:%M %Z"


@dataclass(frozen=True)
class Names:
    """What a page needs to name things: users, sources and stages of the clinic, and its zone."""

    zone: ZoneInfo
    users: dict[int, str] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)  # slug -> name


def label(key: str) -> str:
    """A field's key as a heading: `source_id` -> "Source", `patient_dob` -> "Patient dob"."""
    named = NAMED_IDS.get(key)
    text = named[1] if named else key
    return text.replace("_", " ").capitalize()


def code(value: str) -> str:
    """A code as words: `INVISALIGN` -> "Invisalign", `call_now` -> "Call now"; a channel by its name
    (`SMS` -> "Text", `whatsapp` -> "WhatsApp"), whichever field holds it (a task's type, a message's
    channel), since capitalizing would say "Sms"."""
    named = CHANNELS.get(value.lower())
    return named if named is not None else value.replace("_", " ").capitalize()


def when(value: datetime | str | None, names: Names) -> str:
    """A moment in the clinic's timezone, or "" for none."""
    if value in (None, ""):
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(names.zone).strftime(TIME_FORMAT)


# Why an open lead has no next step (automation/orphans.py's reasons), said on the board and Today.
NO_NEXT_STEP = {
    "no_owner": "no owner",
    "unreachable": "can't be reached: opted out everywhere",
    "not_planned_yet": "nothing planned yet (a follow-up task is on its way)",
}


def no_next_step(why: str) -> str:
    return NO_NEXT_STEP.get(why, "nothing planned")


# What held a message back, in words (a message's `held_by`).
HOLDS = {"quiet_hours": "quiet hours", "pacing": "pacing", "daily_cap": "daily cap"}


def held(until: datetime | str | None, held_by: str | None, names: Names) -> str:
    """A held message's state: "held until 8:00 AM (quiet hours)", in the clinic's time; "" if not held."""
    if until in (None, ""):
        return ""
    moment = datetime.fromisoformat(until) if isinstance(until, str) else until
    why = f" ({HOLDS.get(held_by, 'held back')})" if held_by else ""
    return f"held until {moment.astimezone(names.zone).strftime('%-I:%M %p')}{why}"


def _is_moment(value: str) -> bool:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    return moment.tzinfo is not None


def say(key: str, value, names: Names) -> str:
    """A lead field's value as text for a person."""
    if value is None:
        return ""
    named = NAMED_IDS.get(key)
    if named is not None:
        found = getattr(names, named[0]).get(value)
        return found if found is not None else f"#{value}"
    if key == "pipeline_stage":
        return names.stages.get(value, code(value))
    if key == "patient_relationship" and value in RELATIONSHIPS:
        return RELATIONSHIPS[value]
    if key == "suggested_action" and isinstance(value, str):
        return SUGGESTIONS.get(value, value)  # a rule's own suggestion is shown as its author wrote it
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(say(key, item, names) for item in value)
    if isinstance(value, dict):
        return _object(value, names)
    if isinstance(value, str) and _is_moment(value):
        return when(value, names)
    if key in CODED and isinstance(value, str):
        return code(value)
    return str(value)


def _object(value: dict, names: Names) -> str:
    """An object as one line: a next best action reads "Call now (new lead, 2 minutes old)"."""
    if "action" in value and "reason" in value:
        text = f"{code(value['action'])} ({value['reason']})"
        return f"{text}, at {when(value['at'], names)}" if value.get("at") else text
    return "; ".join(
        f"{code(k)}: {say(k, v, names)}" for k, v in value.items() if v not in (None, "", [], {})
    )


# Lead fields whose heading is not their key said plainly (the import's column choices).
FIELD_NAMES = {
    "email": "Email",
    "phone_alt": "Other phone",
    "patient_dob": "Patient's date of birth",
    "address_line1": "Address",
    "address_line2": "Address (second line)",
    "external_id": "Your id for the lead",
    "do_not_contact": "Do not contact",
    "sms_opt_out": "No texts",
    "email_opt_out": "No emails",
    "whatsapp_opt_out": "No WhatsApp",
    "referring_provider_id": "Referring provider",
    "referring_patient_id": "Referring patient",
    "source_detail": "Source details (who referred them)",
    "source_campaign": "Campaign",
    "consent_reason": 'Why they may be contacted again (to untick a "No …" box)',
    "consent_source": "How they asked to be contacted again",
}
# The engine's suggested next steps (a lead's `suggested_action`) as a coordinator reads them.
SUGGESTIONS = {
    "mark_lost": "Close the file as lost: three tries and the break-up email went unanswered",
    "call_now": "Call now",
    "call_at_best_slot": "Call at the family's best time",
    "send_breakup_email": "Send the break-up email",
    "move_to_lost": "Close the file as lost",
    "schedule_consultation": "Book a consultation",
    "enroll_sequence": "Start a follow-up sequence",
}
# How a family asked to be contacted again, when staff untick one of their "No …" boxes.
CONSENT_SOURCES = {
    "": "—", "in_person": "In person", "written": "In writing", "phone_call": "On a phone call",
    "email": "By email",
}  # fmt: skip
# A bulk import row's outcome, and a preview's, in words.
IMPORT_OUTCOMES = {
    "created": "Imported",
    "ready": "Ready",
    "duplicate": "Possible duplicate",
    "invalid": "Refused",
    "refused": "Refused",
}


def field_name(key: str) -> str:
    """A lead field as a person names it: `first_name` -> "First name", `email` -> "Email"."""
    return FIELD_NAMES.get(key) or label(key)


def sequence_step(sequence: str | None, step: int) -> str:
    """A step of a sequence, as a person counts it: "Step 2 of Nurture"."""
    return f"Step {step} of {sequence or 'a deleted sequence'}"


# The API's weekday keys (business hours) as people read them.
DAYS = {
    "mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
    "sat": "Saturday", "sun": "Sunday",
}  # fmt: skip

# The setup checklist (app/console/settings/): each step's title and, for each thing it lacks, what
# is missing in the clinic's words.
SETUP_STEPS = {
    "profile": "Clinic profile, hours and holidays",
    "team": "Team",
    "booking": "Booking",
    "sources": "Lead sources",
    "templates": "Message templates",
    "channels": "Channels: texts, email, WhatsApp and Instagram",
    "forms": "Your website's form",
    "webhooks": "Integrations and webhooks",
}
SETUP_MISSING = {
    "hours_unconfirmed": "Your opening hours are still our guess ({hours}, {timezone} time): "
    "check them and save.",
    "no_team": "Nobody but the admins can log in yet: invite your treatment coordinators and front desk.",
    "invited_waiting": "{count} invited {people} not set a password yet.",
    "provider": "Families cannot book yet: add a provider (a doctor or a chair) with the hours they see "
    "patients.",
    "no_source": "Leads have no source to be filed under: add where your families come from.",
    "no_costs": "No source has a monthly cost yet: add what you spend on each, for the reports' cost per "
    "lead and return.",
    "no_template": "No message template yet: write the texts and emails your team sends most, with the "
    "family's name and booking link filled in.",
    "consultation_type": "Families cannot book yet: add a consultation type (what a family books, how "
    "long it takes and with which provider).",
    "no_email_domain": "Your emails go out from the platform's shared address, not your own: ask the "
    "company that runs your Follow-up Engine to verify your email domain (for example brightsmiles.com).",
    "email_from_unchosen": "Your email domain is verified, but your emails still go out from the "
    "platform's shared address: choose the address they go from.",
    "shared_sms": "Your texts go out from the platform's shared number. To text from a number of your own, "
    "ask the company that runs your Follow-up Engine to assign one to your clinic.",
    "no_form_secret": "Inquiries from your website's form do not reach you here yet: make a secret for "
    "your website and paste the form on it.",
    "no_webhook": "Optional: add a webhook only if another system of yours (a CRM, your practice "
    "software) should hear of new leads, conversions and losses.",
}
# A setup step that is never missing anything, only worth a look.
SETUP_OPTIONAL = frozenset(("webhooks",))
# The settings pages' choices, in words (the API's values are the keys).
ASSIGNMENT_POLICIES = {
    "round_robin": "In turn to each available coordinator (round robin)",
    "capacity": "To the coordinator with the most room (their maximum open leads)",
    "source": "To the coordinators of the lead's source",
}
PROVIDER_KINDS = {"provider": "A doctor or hygienist", "chair": "A chair or room"}

# The merge fields a message template may hold (lead_messages.merge_fields), as a picker says them.
MERGE_FIELDS = {
    "first_name": "the family's first name",
    "last_name": "the family's last name",
    "patient_first_name": "the patient's first name",
    "clinic_name": "your clinic's name",
    "coordinator_name": "their coordinator's name",
    "stage": "where they are in the pipeline",
    "task_due_at": "when the task is due",
    "consultation_time": "their consultation's time (confirmations and reminders)",
    "records_expire_on": "the last day their records are valid (records reminders)",
    "booking_link": "their own link to book a consultation",
    "consultation_link": "the link to move or cancel their consultation (confirmations)",
}

# The channels page (app/console/settings/): a sender the platform operator assigned, by its kind.
SMS_SENDER_KINDS = {
    "number": "A phone number",
    "messaging_service": "A pool of numbers (a Twilio Messaging Service)",
}
ASK_THE_OPERATOR = (
    "The company that runs your Follow-up Engine assigns numbers and verifies email domains: ask them, "
    "and what they set up shows here for you to choose."
)
INSTAGRAM_UNAVAILABLE = (
    "Instagram could not be asked whether this token is the account's just now; nothing was changed. "
    "Try again in a minute."
)

# The events a webhook may be told of (webhooks.schemas.EVENT_TYPES), as a person reads them.
WEBHOOK_EVENTS = {
    "lead.created": "A new lead arrives",
    "lead.converted": "A lead becomes a patient (converted)",
    "lead.lost": "A lead is marked lost",
    "task.overdue": "A task is overdue",
    "bulk.completed": "An import or bulk change has finished",
}


def webhook_delivery(delivery: dict) -> str:
    """A webhook delivery's state in words: delivered, waiting, retrying or given up, and what the
    receiving server answered (its HTTP status), never the raw error."""
    answered = delivery.get("response_status")
    said = f"; their server answered {answered}" if answered else ""
    attempts = delivery.get("attempts") or 0
    status = delivery.get("status")
    if status == "delivered":
        return "Delivered" + (f" (answered {answered})" if answered else "")
    if status == "failed":
        reason = said or "; their server could not be reached"
        return f"Not delivered: given up after {attempts} {_tries(attempts)}{reason}"
    if status == "sending":
        return "Being sent now"
    if attempts:
        reason = said or "; their server could not be reached"
        return f"Not delivered yet: tried {attempts} {_tries(attempts)}{reason}, trying again"
    return "Waiting to be sent"


def _tries(count: int) -> str:
    return "time" if count == 1 else "times"


# On a lead's page when the clinic's booking link would offer no time (booking_page.booking_gaps).
# The lead page's owner: who works the lead, and giving it to someone.
NO_OWNER = "Nobody yet: give the lead to someone so that it is worked."
GIVE_LEAD_TO = "Give the lead to"
ASSIGN_LEAD = "Assign"
# The reply box's "Send the booking link": the message sent, merged as it goes (their own link).
SEND_BOOKING_LINK = "Send the booking link"
BOOKING_LINK_MESSAGE = {
    "subject": "Book your consultation at {{ clinic_name }}",
    "body": "Hi {{ first_name }}, here is your link to book a consultation at {{ clinic_name }} at a time "
    "that suits you: {{ booking_link }}",
}
DEAD_BOOKING_LINK = "This family's booking link would offer no time: {missing}."
DEAD_BOOKING_GAPS = {"provider": "the clinic has no provider", "consultation_type": "no consultation type"}


def dead_booking_link(gaps: list[str]) -> str:
    """The lead page's warning for the clinic's booking gaps ("provider", "consultation_type")."""
    return DEAD_BOOKING_LINK.format(missing=" and ".join(DEAD_BOOKING_GAPS[gap] for gap in gaps))


# The board's move form (app/console/workspace/board.py): a reason left empty where a stage needs one,
# said in the form before anything is sent; a closed lead, which moves nowhere.
MOVE_NEEDS_WHY = {
    "lost": "Choose why the lead was lost: a lead moves to Lost only with a reason.",
    "pending_decision": "Choose why the family hesitates before moving the lead to Pending Decision.",
}
NO_MOVE = "This lead is closed: there is no stage to move it to."
NOT_STARTED = "This consultation starts {when}: check the family in once it has started."


def not_started(starts_at: datetime, names: Names) -> str:
    """A check-in refused because the consultation has not started yet, in the clinic's time."""
    return NOT_STARTED.format(when=when(starts_at, names))


# --- The console's frame: channels, the live panel and the menu (issue 76, items 1 and 8) -------
# Kept apart from the lead page's words above so each part is edited on its own.

# A channel as people say it, whatever case the code comes in (a message's `sms`, a task's or an
# activity's `SMS`, a lead's preferred `PHONE`): never "Sms" or "Whatsapp".
CHANNELS = {
    "sms": "Text",
    "text": "Text",
    "email": "Email",
    "whatsapp": "WhatsApp",
    "instagram": "Instagram",
    "phone": "Phone",
    "phone_call": "Phone call",
    "call": "Call",
    "direct_message": "Direct message",
    "in_app": "In the app",
    "webhook": "Webhook",
}


def channel(value: str | None) -> str:
    """A channel's code as its name: `sms` -> "Text", `whatsapp` -> "WhatsApp"; "" for none."""
    if not value:
        return ""
    return CHANNELS.get(value.lower()) or value.replace("_", " ").capitalize()


# The live panel ("New for you"): each event of the user's stream (app/platform/stream/document.py
# EVENT_TYPES) as the start of a sentence; static/live.js adds whom it is about ("Task assigned:
# Maria Lopez"). The panel reads this table from the page, so no event's code is ever shown.
LIVE_EVENTS = {
    "lead.assigned": "Lead assigned to you",
    "task.assigned": "Task assigned",
    "task.claimed": "Your task was taken by a teammate",
    "task.due_soon": "Task due soon",
    "task.overdue": "Task overdue",
    "reply.received": "Reply from your lead",
    "sla.warning": "Reply time running out",
    "sla.breach": "Reply time missed",
    "notification": "For you",
    "conversation.message": "New message in your lead's thread",
}
LIVE_OTHER = "Something new for you"  # a type this table does not know yet (a newer stream)
LIVE_TITLE = "New for you"  # the header's live indicator: its list's heading, its count's name
LIVE_NOTHING = "Nothing new since this page opened."
LIVE_STATUS = {"connecting": "connecting…", "live": "live", "reconnecting": "reconnecting…"}


def live_words() -> dict:
    """What static/live.js says, handed to it in the page (data-words): events and statuses."""
    return {"events": LIVE_EVENTS, "other": LIVE_OTHER, "status": LIVE_STATUS}


# The header's menu (app/console/menu.py decides who sees which), and the user menu beside it.
MENU = {
    "today": "Today",
    "schedule": "Schedule",
    "new_lead": "New lead",
    "inbox": "Inbox",
    "board": "Board",
    "import": "Import",
    "team": "Team",
    "bulk_jobs": "Bulk jobs",
    "my_figures": "My figures",
    "reports": "Reports",
    "analytics": "Analytics",
    "rules": "Rules",
    "sequences": "Sequences",
    "failures": "Failures",
    "health": "Health",
    "settings": "Settings",
}
USER_MENU = "Account"
SIGNED_IN_AS = "Signed in as"
# Today's box for a clinic admin: what they used to land on, one click away.
ADMIN_LINKS_TITLE = "Running the clinic"
ADMIN_LINKS = {
    "setup": "Setup checklist",
    "health": "Automation health",
    "failures": "Failed messages and jobs",
}
# A bulk job's status (the progress bar's words; static/console.js reads them from the answer).
JOB_KINDS = {
    "leads.import": "Import of leads",
    "tasks.create": "Tasks for many leads",
    "sequences.enroll": "Leads added to a sequence",
}
JOB_STATUSES = {
    "pending": "Waiting",
    "running": "Running",
    "done": "Done",
    "cancelled": "Cancelled",
    "failed": "Failed",
}


def job_status(status: str | None) -> str:
    return JOB_STATUSES.get(status or "", code(status or ""))


def job_kind(kind: str | None) -> str:
    """A bulk job's kind (`leads.import`) as words, never its code."""
    return JOB_KINDS.get(kind or "", "Bulk change")


# --- The admin pages (Failures, its retry preview, Automation health) -------------------------------
# What failed, said as words and shown as a badge whose tone (console.css .badge.<tone>) repeats it.
FAILURE_STATUSES = {
    "failed": ("Failed", "danger"),
    "dead": ("Gave up after its retries", "danger"),
    "unknown": ("Outcome unknown", "warning"),
    "pending": ("Waiting", "neutral"),
    "sending": ("Being sent", "info"),
    "cancelled": ("Cancelled", "neutral"),
}
FAILURE_SOURCES = {"notifications": "messages", "jobs": "automation jobs", "webhooks": "webhook deliveries"}
ANY_CHANNEL = "Any channel"
ANY_FAILURE = "Any failed"
FAILURE_NOTICE = (
    "Messages that failed, gave up after their retries or whose outcome is unknown; automation jobs "
    "that gave up; webhook deliveries that failed."
)
FILTER_NAMES = {"status": "status", "kind": "kind", "channel": "channel", "recipient": "recipient",
                "error": "error containing", "since": "since", "until": "until"}  # fmt: skip
# A message's kind (app/domains/outbound: Notification.kind).
MESSAGE_KINDS = {
    "access": "Sign-in link or code",
    "digest": "Daily digest",
    "escalation": "Overdue task escalated",
    "negative_reply": "Unhappy reply",
    "new_task": "New task",
    "overdue": "Task overdue",
    "refresh": "Reminder to refresh",
    "reminder": "Task reminder",
    "sla_warning": "Response time warning",
}
HEARTBEAT = {False: ("Running", "success"), True: ("Silent", "danger")}


def failure_status(status: str | None) -> dict:
    """A failure's status as a badge: its word and its tone, never its code."""
    word, tone = FAILURE_STATUSES.get(status or "", (code(status or "unknown"), "neutral"))
    return {"word": word, "tone": tone}


def heartbeat(silent: bool) -> dict:
    word, tone = HEARTBEAT[bool(silent)]
    return {"word": word, "tone": tone}


def kind_words(kind: str | None) -> str:
    """A message's, job's or webhook event's kind as words: a named one by its name, any other code
    (`automation.step`) with its dots and underscores as spaces ("Automation step")."""
    kind = kind or ""
    named = MESSAGE_KINDS.get(kind) or WEBHOOK_EVENTS.get(kind) or JOB_KINDS.get(kind)
    return named or kind.replace(".", " ").replace("_", " ").capitalize()


def filter_words(filters: dict) -> str:
    """The failure filters as a phrase ("status Failed, channel Text"), never `key=value`."""
    said = []
    for key, value in filters.items():
        if key == "status":
            value = failure_status(value)["word"]
        elif key == "channel":
            value = channel(value)
        elif key == "kind":
            value = kind_words(value)
        elif hasattr(value, "strftime"):
            value = value.strftime("%d %b %Y")
        said.append(f"{FILTER_NAMES.get(key, label(key)).capitalize()} {value}")
    return ", ".join(said)


# --- The lead page's "What happens next" (app/console/workspace/what_next.py) ------------------------
# Every automated step of a lead said as a sentence: what is planned (by the step's kind), what it did
# (by what its result holds), what stopped it and why, never its ids or its JSON. Placeholders: {at}
# and {when} a time in the clinic's zone, {whom} a person or role, {thing} a step's THING.
# tests/console/test_what_next.py fails when the engine gains a kind of step or a result these lack.
# The panel's headings, and what each list says when it is empty.
NEXT_PANEL = {
    "title": "What happens next",
    "planned": "Planned next",
    "planned_none": "Nothing automated is planned for this lead.",
    "attempts": "Attempts to reach the family",
    "sequences": "Sequences",
    "done": "Done recently",
    "done_none": "The automation has done nothing for this lead yet.",
    "stopped": "Cancelled or held back",
    "stopped_none": "Nothing was cancelled or held back.",
    "every_step": "Every automated step for this lead ({count}), newest first",
    "every_step_none": "None yet.",
}
AT = "on {when}"
# A message's channel as a noun (a sequence step's channel, a result's `channel`).
CHANNEL_NOUNS = {
    "sms": "text",
    "email": "email",
    "instagram": "Instagram message",
    "whatsapp": "WhatsApp message",
}
# A channel named inside an engine's reason ("not sent by sms" -> "not sent by text").
CHANNEL_WORDS = {"sms": "text", "email": "email", "whatsapp": "WhatsApp", "instagram": "Instagram"}
# A channel said inside a sentence ("the family opted out of texts").
CHANNEL_PLURALS = {"sms": "texts", "email": "emails", "instagram": "Instagram", "whatsapp": "WhatsApp"}
# What a step is, by its kind (a sequence's step by its channel: SEQUENCE_STEP_KINDS).
STEP_THINGS = {
    "create_task": "a {task} task",
    "recurring_follow_up": "a {task} task",
    "send_email": "an email",
    "send_sms": "a text",
    "send_instagram": "an Instagram message",
    "send_whatsapp": "a WhatsApp message",
    "notify": "a note to {whom}",
    "assign": "a new owner for the lead",
    "suggest": "the suggestion “{suggestion}”",
    "update_stage": "a move to {stage}",
    "set_priority": "a change of priority to {priority}",
    "enroll_sequence": "the start of the sequence “{sequence}”",
    "sequence_step": "a step of the sequence “{sequence}”",
    "sequence_wait": "a wait in the sequence “{sequence}”",
}
# A sequence step is said as the step of that kind it makes (a call: a task).
SEQUENCE_STEP_KINDS = {
    "email": "send_email",
    "sms": "send_sms",
    "instagram": "send_instagram",
    "whatsapp": "send_whatsapp",
    "call": "create_task",
}
# What is planned, by the step's kind.
PLANNED = {
    "create_task": "A {task} task for {whom} is due {at}",
    "recurring_follow_up": "A {task} task for {whom} is due {at}",
    "send_email": "An email to the family goes {at}",
    "send_sms": "A text to the family goes {at}",
    "send_instagram": "An Instagram message to the family goes {at}",
    "send_whatsapp": "A WhatsApp message to the family goes {at}",
    "notify": "A note goes to {whom} {at}",
    "assign": "The lead gets {owner} {at}",
    "suggest": "The suggestion “{suggestion}” shows on the lead {at}",
    "update_stage": "The lead moves to {stage} {at}",
    "set_priority": "The lead's priority becomes {priority} {at}",
    "enroll_sequence": "The lead starts the sequence “{sequence}” {at}",
    "sequence_step": "A step of the sequence “{sequence}” runs {at}",
    "sequence_wait": "The sequence “{sequence}” waits until {events}, at the latest {when}",
}
NEW_OWNER = {"named": "{user} as its owner", "in_turn": "a new owner (in turn, as the clinic assigns)"}
# What a step did, by what its result holds (what_next.DONE_BY_RESULT picks one), then when.
DONE = {
    "task": "Made {thing} for {whom} on {when}, due {due}",
    "task_titled": "Made {thing} “{title}” for {whom} on {when}, due {due}",
    "notified": "Told {whom}",
    "assigned": "Gave the lead to {to}",
    "reassigned": "Gave the lead to {to} (it was {was}'s)",
    "suggested": "Suggested: {suggestion}",
    "priority": "Changed the priority from {was} to {to}",
    "stage": "Moved to {stage}",
    "sent": "Sent {thing}",
    "sent_quoted": "Sent the {noun} “{text}”",
    "enrolled": "Started the sequence “{sequence}”",
    "branched": "In the sequence “{sequence}”, {outcome}: it went on from there",
    "done": "Did {thing}",
}
DONE_AT = "{sentence} on {when}"  # unless the sentence says when itself
# What a done step's result adds after its sentence.
DONE_MORE = {
    "series": "follow-up {occurrence} of {times}",
    "next": "the next one is due {when}",
    "instead": "as a {noun} instead: {why}",
    "fell_back": "{why}, so it went again as a {noun}",
    "withdrawn": "withdrawn on {when}: {why}",
    "held": "held first: {why}",
}
# Why a message went again by the other channel (automation/executors/fallback.py), by the first one.
BOUNCES = {
    "email": "the email bounced",
    "sms": "the number cannot take texts",
    "whatsapp": "WhatsApp could not reach the family",
}
# A sequence's wait taken by what the family did (sequences/graph.py's outcomes).
OUTCOMES = {
    "replied": "the family replied",
    "email_opened": "the family opened the email",
    "link_clicked": "the family clicked a link",
    "consultation_booked": "the family booked a consultation",
    "call_logged": "a call was logged",
    "timeout": "nothing came in time",
}
# Why a step exists, said after its sentence.
WHY = {
    "cadence": "the cadence's attempt {attempt}",
    "break_up": "the break-up message after the failed attempts",
    "sequence": "step {step} of the sequence “{sequence}”",
    "sweep": "the lead had no next step",
    "rule": "your rule “{rule}”",
    "rule_when": "your rule “{rule}”, when {event}",
    "reminder": "a reminder before the consultation",
    "held": "held from {when}: {why}",
    "because": "because {why}",
}
# A step that did not happen, by its status (skipped by the contact policy: "held_back").
STOPPED = {
    "cancelled": "Cancelled: {why} — {thing} planned for {when}",
    "skipped": "Not done: {why} — {thing} due {when}",
    "held_back": "Held back by the contact policy: {why} — {thing} due {when}",
    "failed": "Failed: {why} — {thing} due {when}",
}
NO_REASON = "no reason was given"
# The engine's reasons (a step's `reason`, a move's `why`) in the clinic's words: the first pattern
# that matches the whole reason says it; a named part is said as its name says (`when`: a time,
# `stage...`: a stage's name, `ended`: ENDED, `channel`: CHANNEL_PLURALS, `by`: CHANNEL_WORDS,
# `priority`: the priority), any other part as a reason.
REASONS = (
    (r"engagement: (?P<why>.+)", "{why}"),
    (r"unenrolled: (?P<ended>\w+)", "{ended}"),
    (r"the lead replied", "the family replied"),
    (r"rule \d+ was deleted", "its rule was deleted"),
    (r"no executor for .+", "the engine cannot do this kind of step"),
    (
        r"(?P<count>\d+) failed attempt\(s\) in a row: the cadence's attempt (?P<attempt>\d+).*",
        "{count} failed attempts in a row: the cadence's attempt {attempt}",
    ),
    (r"no next step since (?P<when>\S+): found by .+", "the lead had no next step since {when}"),
    (r"the task text cannot be rendered: .+", "the task's text could not be filled in"),
    (r"stage change refused: (?P<why>.+)", "the move was refused: {why}"),
    (r"the lead opted out of (?P<channel>\w+)", "the family opted out of {channel}"),
    (r"(?P<why>.+); not by (?P<by>\w+) either: (?P<also>.+)", "{why}; nor by {by}: {also}"),
    (r"(?P<why>.+); not sent by (?P<by>\w+) either: (?P<also>.+)", "{why}; nor by {by}: {also}"),
    (r"(?P<ended>merged|erased)", "{ended}"),
    (r"the lead is already (?P<priority>\w+)", "the lead's priority is already {priority}"),
    (r"the lead has moved on to (?P<stage>\w+)", "the lead has moved on to {stage}"),
    (r"the lead moved forward to (?P<stage>\w+)", "the lead moved forward to {stage}"),
    (
        r"the lead left (?P<stage>\w+) for (?P<stage_now>\w+): the recurring follow-up ends",
        "the lead left {stage} for {stage_now}: the recurring follow-up ends",
    ),
    (r"no message template \d+ in this clinic", "its message template was deleted"),
    (r"template \d+ is an? (?P<channel>\w+) template", "its message template is for {channel}"),
    (
        r"outside WhatsApp's 24-hour window and no approved template \(content_sid\) given: (?P<why>.+)",
        "outside WhatsApp's 24-hour window, and no approved template was chosen: {why}",
    ),
)
# Why an enrolment ended (its end_reason), and why a step was cancelled with it.
ENDED = {
    "replied": "the family replied",
    "converted": "the lead converted",
    "lost": "the lead was lost",
    "deleted": "the lead was deleted",
    "opted_out": "the family opted out",
    "manual": "someone on staff took the lead out",
    "completed": "every step was done",
    "consultation_booked": "the family booked a consultation",
    "bounced": "a message to the family bounced",
    "exit_conditions": "the lead met the sequence's exit conditions",
    "step_limit": "it went round its steps too many times",
    "merged": "the lead was merged into another",
    "erased": "the family's details were erased",
}
ENROLLMENTS = {
    "active": "In the sequence “{sequence}” since {since}",
    "active_next": "In the sequence “{sequence}” since {since}; its next step is due {next}",
    "completed": "Finished the sequence “{sequence}” on {ended}",
    "unenrolled": "Left the sequence “{sequence}” on {ended}: {why}",
}
# What the panel says where it cannot name something (gone since, or a kind it does not know), and
# the people a step names by what they are.
NEXT_OTHER = {
    "sequence": "a sequence no longer there",
    "rule": "a rule no longer there",
    "person": "someone no longer on the team",
    "nobody": "nobody",
    "owner": "the lead's owner",
    "in_turn": "the next coordinator in turn",
    "role": "a role",
    "stage": "another stage",
    "suggestion": "a next step",
    "priority": "another",
    "no_priority": "none",
    "task": "follow-up",
    "outcome": "the family did something",
    "bounce": "the first message failed",
    "message": "message",
    "thing": "an automated step",
    "planned": "An automated step runs {at}",
    "events": "what the family does",
    "event": "an event",
    "step": "a step",
}
# The failed attempts counted since the last contact (automation/attempts.py), and one still open.
ATTEMPTS = {
    0: "No failed attempts since the last contact.",
    1: "1 failed attempt since the last contact.",
    "many": "{count} failed attempts in a row since the last contact.",
    "open": "The {noun} sent {at} counts as a failed attempt if there is no answer by {when}.",
}
# A branching sequence's path (an enrolment's `path`): where it waits, and which way each wait went.
PATH = {
    "waiting": "At {step}, waiting until {events}, at the latest {until}",
    "via": "After {after}, {outcome} on {at}: on to {step}",
    "end": "After {after}, {outcome} on {at}: the sequence ends there",
}
STEP_NAMED = {"named": "step “{key}”", "numbered": "step {key}"}
# What a rule checked before it made the step (its conditions, as evaluated then): a group's words.
CHECKED = {
    "title": "What the rule checked",
    "all": "All of these",
    "any": "Any of these",
    "not": "Not this",
    "held": "{group}: this holds",
    "failed": "{group}: this does not hold",
}
ATTEMPT_NOUNS = {"PHONE_CALL": "call", "SMS": "text", "EMAIL": "email", "DIRECT_MESSAGE": "message"}


# --- Today's whole day (issue 76, item 4): when later tasks come due, the clinic's consultations
# of the day and the call in hand. Times in the clinic's zone, as a coordinator says them.
WEEK_AHEAD = 7  # within this many days a weekday names the day ("Mon"); beyond, the date too


def clock_time(value: datetime, names: Names) -> str:
    """A time of day in the clinic's zone: "8:00 AM"."""
    return value.astimezone(names.zone).strftime("%-I:%M %p")


def due_when(value: datetime, names: Names, now: datetime) -> str:
    """When a task comes due, counted in the clinic's days from `now`: "Today at 4:30 PM",
    "Tomorrow at 8:00 AM", "Mon at 9:00 AM" within the week, "Mon 14 Dec at 9:00 AM" beyond."""
    local = value.astimezone(names.zone)
    days = (local.date() - now.astimezone(names.zone).date()).days
    at = clock_time(value, names)
    if days == 0:
        return f"Today at {at}"
    if days == 1:
        return f"Tomorrow at {at}"
    if 1 < days < WEEK_AHEAD:
        return f"{local:%a} at {at}"
    return f"{local:%a %-d %b} at {at}"


TODAY = {
    "upcoming_title": "Coming up",
    "upcoming_empty": "Nothing else of yours is due after today.",
    "upcoming_more": "and {count} more later",
    "consultations_title": "Today's consultations",
    "consultations_empty": "No consultation at the clinic today.",
    "consultation_headings": ("Time", "Family", "Type", "Provider", "Status"),
    "held_until": "Yours until {time}: nobody else's next call hands it out meanwhile.",
    "release": "Release",
    "release_help": "Give this call back: anyone's next call may hand it out again.",
    "released": "Call released: anyone's next call may hand it out again.",
    "not_held": "That call was no longer yours: it was done, or your hold on it ran out.",
    "keep": "Keep it longer",
    "keep_help": "Still on it? Hold this call for another full hold, counted from now.",
    "kept": "Still yours, until {time}.",
}

# --- The schedule of consultations (app/console/workspace/schedule*.py, issue 76 item 6) -----------
# A consultation's status (ConsultationStatus) as the front desk says it.
CONSULTATION_STATUSES = {
    "scheduled": "Scheduled",
    "attended": "Checked in",
    "no_show": "No-show",
    "cancelled": "Cancelled",
}
SCHEDULE = {
    "all_providers": "All providers",
    "no_provider": "No provider named",
    "no_type": "Not given",
    "removed_family": "A family no longer on file",
    "empty_day": "No consultations on {day}.",
    "empty_day_provider": "No consultations with {provider} on {day}.",
    "cancelled_hidden": "{count} cancelled {noun} not shown.",
    "moved": "{family}'s consultation moved to {when}.",
    "cancelled": "{family}'s consultation on {when} is cancelled: its reminders will not go.",
    "booked": "Consultation booked for {family} on {when}.",
    "checked_in": "{family} checked in for the consultation on {when}.",
    "no_show": "{family}'s consultation on {when} is marked a no-show.",
    "check_in_button": "Checked in",
    "no_show_button": "No-show",
}
# A schedule's form field refused, by the field's name, in the words the label uses.
SCHEDULE_FIELDS = {
    "day": "Day",
    "provider": "Provider",
    "date": "New date",
    "time": "New time",
    "starts_at": "Time",
    "lead": "Family",
}
SCHEDULE_BAD_INPUT = {
    "day": "Day: “{typed}” is not a date. Pick one, or type it as year-month-day (2030-01-31).",
    "provider": "Provider: that provider is not one of the clinic's. Showing every provider.",
    "date": "Enter the new date as year-month-day, like 2030-01-31.",
    "time": "Enter the new time as hours and minutes, like 09:30.",
    "lead": "Choose the family from the list.",
    "when": "Choose a free time, or type a time.",
}
# A move or booking refused because the provider holds that time (the placement's slot_taken).
SLOT_TAKEN = "{provider} is booked from {start} to {end} that day: choose another time."
SLOT_TAKEN_RACE = "Someone booked that time at the same moment: choose another time."
SLOT_ALTERNATIVES = "Free nearby: {times}."
THE_PROVIDER = "The provider"
NOT_SCHEDULED = "This consultation is {status}: only a scheduled consultation can be {verb}."
SCHEDULE_LEAD_CLOSED = (
    "This family's lead is closed (converted or lost): reopen it on its page before booking."
)


def consultation_status(status: str | None) -> str:
    """A consultation's status as words: `no_show` -> "No-show", `attended` -> "Checked in"."""
    return CONSULTATION_STATUSES.get(status or "", code(status or ""))


def slot_taken(clash: dict | None, alternatives: list[dict], provider: str | None, names: Names) -> str:
    """Why a time was refused (the placement's `clash` and `alternatives`), in the clinic's time."""
    zone = names.zone
    if clash is None:
        sentence = SLOT_TAKEN_RACE
    else:
        start, end = (datetime.fromisoformat(clash[k]).astimezone(zone) for k in ("starts_at", "ends_at"))
        sentence = SLOT_TAKEN.format(
            provider=provider or THE_PROVIDER, start=start.strftime("%H:%M"), end=end.strftime("%H:%M")
        )
    if alternatives:
        times = ", ".join(when(slot["starts_at"], names) for slot in alternatives)
        sentence = f"{sentence} {SLOT_ALTERNATIVES.format(times=times)}"
    return sentence


# A lead's patients (app/domains/leads/patients.py): who is to be treated, as the console says it.
RELATIONSHIPS = {
    "SELF": "Same as contact",
    "CHILD": "Child",
    "SPOUSE": "Spouse or partner",
    "OTHER": "Someone else",
}
PATIENT_WORDS = {
    "section": "Patient",
    "section_hint": "Who is to be treated. Most often the caller's child.",
    "relationship": "Who the patient is",
    "first_name": "Patient's first name",
    "last_name": "Patient's last name (if not the contact's)",
    "age": "Age or year of birth",
    "age_hint": "For example 12, or 2014.",
    "age_unreadable": "Give an age (12) or a year of birth (2014).",
    "heading": "Patients",
    "none": "No patient named yet.",
    "add": "Add a patient",
    "save": "Save patient",
    "remove": "Remove",
    "removed": "Patient removed.",
    "added": "Patient added.",
    "first_only": "The first patient is edited with the lead's details above.",
    "for_whom": "for",
}


def patient_age(birth_year: int | None, year: int) -> int | None:
    """A patient's age this `year` from their year of birth (a year off at most: no day is known)."""
    return None if birth_year is None else max(year - birth_year, 0)


def _name_of(first: str | None, last: str | None) -> str:
    return " ".join(p for p in (first, last) if p)


def patient_line(patient: dict, year: int) -> str:
    """One patient as a card says them: "Diego (12)", "Sofia Lopez" (no year of birth known)."""
    name = _name_of(patient.get("first_name"), patient.get("last_name"))
    age = patient_age(patient.get("birth_year"), year)
    return name if age is None else f"{name} ({age})"


def patients_for(patients: list[dict], year: int, contact: tuple[str | None, str | None]) -> str | None:
    """Whom a lead is for, after the contact's name: "Diego (12) and Sofia (10)". The contact as a
    patient is left out (the card says the name once, never "Maria Lopez for Maria Lopez"); None
    when nobody else is."""
    contact_name = _name_of(*contact).casefold()
    others = [
        p
        for p in patients or []
        if _name_of(p.get("first_name"), p.get("last_name")).casefold() != contact_name
    ]
    said = [patient_line(p, year) for p in others]
    if not said:
        return None
    return said[0] if len(said) == 1 else f"{', '.join(said[:-1])} and {said[-1]}"


def patient_entry(patient: dict, year: int) -> str:
    """A patient as the lead page lists them: "Diego (12), Child", "Maria Lopez (38), Same as contact"."""
    name = _name_of(patient.get("first_name"), patient.get("last_name"))
    age = patient_age(patient.get("birth_year"), year)
    said = name if age is None else f"{name} ({age})"
    relationship = RELATIONSHIPS.get(patient.get("relationship") or "")
    return f"{said}, {relationship}" if relationship else said


# --- The lead page's contact card (issue 76 item 2): how to reach the family, and what they allow.
CONTACT_CARD = {
    "title": "Contact",
    "phone": "Phone",
    "phone_alt": "Other phone",
    "email": "Email",
    "preferred_contact": "Prefers",
    "preferred_time": "Best time",
    "source_id": "Came from",
    "treatment_interest": "Interested in",
    "messages": "Messages",
    "all_details": "All details",
}
CONSENT = {
    "do_not_contact": "Do not contact: no calls and no messages.",
    "sms_opt_out": "No texts",
    "email_opt_out": "No emails",
    "whatsapp_opt_out": "No WhatsApp",
    "all_allowed": "Texts, emails and WhatsApp allowed.",
}


def phone_display(number: str) -> str:
    """A stored number (E.164, "+14155550142") as a person reads it: "+1 415-555-0142"."""
    try:
        parsed = phonenumbers.parse(number)
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return number


def consent(lead: dict) -> str:
    """What the family allows, as one sentence: "No texts, no emails." or "Do not contact: ..."."""
    if lead.get("do_not_contact"):
        return CONSENT["do_not_contact"]
    refused = [CONSENT[key] for key in ("sms_opt_out", "email_opt_out", "whatsapp_opt_out") if lead.get(key)]
    if not refused:
        return CONSENT["all_allowed"]
    return ", ".join([refused[0], *(text.lower() for text in refused[1:])]) + "."


# The inbox beside its contact (issue 76 item 5): the thread between the conversation list and the
# family's card, its Resolve / Reopen, the list's Open / Resolved filter and the reply box's saved
# replies (the clinic's message templates, merged as the reply goes).
INBOX_STATUSES = {"open": "Open", "snoozed": "Snoozed", "resolved": "Resolved"}
INBOX_STATUS_NAV = "Open, snoozed or resolved conversations"
NO_CONVERSATIONS = {
    "open": "No conversations here",
    "snoozed": "No snoozed conversations here",
    "resolved": "No resolved conversations here",
}
BACK_TO_INBOX = "Back to the inbox"
ABOUT_FAMILY = "About this family"
CONVERSATIONS = "Conversations"
RESOLVE = "Resolve"
REOPEN = "Reopen"
RESOLVED_NOTE = "Resolved: nothing is left to answer. The family's next message opens it again."
RESOLVED_DONE = "Conversation resolved."
REOPENED_DONE = "Conversation reopened."
# Snoozing a thread: the choices in words (app/domains/conversations/snoozing.py works out when).
SNOOZE = "Snooze"
SNOOZE_UNTIL = "Snooze until"
SNOOZE_CHOICES = {
    "later_today": "Later today (in 3 hours)",
    "tomorrow_morning": "Tomorrow morning (clinic's opening)",
    "next_week": "Next week",
}
CHOOSE_SNOOZE = "Choose until when to snooze the conversation."
SNOOZED_NOTE = "Snoozed until {when}: out of the open conversations until then, or until the family writes."
SNOOZED_DONE = "Conversation snoozed until {when}."
SNOOZED_BADGE = "Snoozed until {when}"
ASSIGN_TO = "Assign to"  # the family's card's owner field beside the thread
LEAD_ASSIGNED = "Lead assigned."
CARD = {
    "phone": "Phone",
    "email": "Email",
    "stage": "Stage",
    "owner": "Owner",
    "next_task": "Next task",
    "no_task": "No open task",
    "due": "due",
    "hidden": "Shown only to staff who may see patient details",
    "none": "None on file",
}
OPEN_LEAD_PAGE = "Open the lead page"
SAVED_REPLY = "Saved reply"
USE_REPLY = "Use this reply"
SAVED_REPLY_HINT = "Fills the message box with it; names and links are filled in as it is sent."
CHOOSE_SAVED_REPLY = "Choose a saved reply to use."


# --- The lead page as a work surface (issue 76 item 2): its heading in words, the action bar near
# its top (log a call, move stage, convert, mark lost) and a task's edit.
LEAD_STATUS = {
    "NEW": "New: not reached yet",
    "ACTIVE": "Being worked",
    "CONVERTED": "Converted: treatment started",
    "LOST": "Lost",
    "ARCHIVED": "Archived",
}
REFERENCE = "Reference {id}"


def lead_status(status: str | None) -> str:
    """A lead's status as the heading says it ("Being worked", never `ACTIVE`)."""
    return LEAD_STATUS.get(status or "", code(status or ""))


LEAD_ACTIONS = {
    "title": "Act on this lead",
    "log_call": "Log a call",
    "outcome": "How the call went",
    "notes": "Notes on the call (optional)",
    "callback_at": "Call back at (clinic time, if they asked)",
    "lost_reason": "Why not interested (if so)",
    "save_call": "Log the call",
    "call_logged": "Call logged.",
    "choose_outcome": "Choose how the call went.",
    "move": "Move stage",
    "moved": "Stage changed.",
    "convert": "Convert",
    "convert_hint": "The family has started treatment: the lead becomes a patient and is locked.",
    "treatment_value": "Treatment value (optional)",
    "confirm_convert": "Convert to patient",
    "converted": "Lead converted: treatment started.",
    "lost": "Mark lost",
    "reason": "Why lost",
    "lost_notes": "Note (optional)",
    "confirm_lost": "Mark the lead lost",
    "marked_lost": "Lead marked lost.",
    "write": "Write to the family",
    "book": "Book a visit",
    "closed": "This lead is closed ({status}): there is nothing left to act on.",
}
# The move form's fields, named where a refusal is said above it.
MOVE_FIELDS = {
    "stage": "Stage",
    "reason": "Why lost",
    "hesitation_reason": "Why they hesitate",
    "notes": "Note",
    "_form": "",
}
TASK_EDIT = {
    "edit": "Edit",
    "title": "Title",
    "due_at": "Due (clinic time)",
    "assignee": "Assignee",
    "save": "Save the task",
    "saved": "Task saved.",
}
# The lead page's one timeline (issue 76 item 2): messages, calls, tasks, stage moves and
# consultations in time order, each said as a sentence (app/console/workspace/lead_timeline.py).
TIMELINE = {
    "title": "Timeline",
    "order": "oldest first",
    "empty": "Nothing yet.",
    "older": "Older",
    "newer": "Newer",
    "page": "page {page} of {pages}",
    "call_out": "{who} called the family: {outcome}.",
    "call_in": "The family called.",
    "call_in_said": "The family called: {outcome}.",
    "message_out": "{who} sent {thing}.",
    "message_in": "The family sent {thing}.",
    "note": "{who} added a note.",
    "in_person": "The family came in person.",
    "stage": "{who} moved the lead from {before} to {after}.",
    "assigned": "The lead was given to {owner}.",
    "task_done": "{who} completed a task.",
    "task_done_said": "{who} completed a task: {outcome}.",
    "document": "{who} sent a document.",
    "consultation_scheduled": "A consultation was booked.",
    "consultation_completed": "The family came to the consultation.",
    "consultation_no_show": "The family missed the consultation.",
    "priority": "{who} changed the lead's priority.",
    "other": "{who} logged {thing}.",
    "task_created": "Task “{title}” for {owner}, due {due}.",
    "consultation_booked": "Consultation booked for {when} ({status}).",
    "nobody": "nobody yet",
}
TIMELINE_WHO = {
    "system": "The automation",
    "web_form": "The web form",
    "api_key": "An integration",
    "user": "Someone on the team",
}
MESSAGE_THINGS = {"SMS": "a text", "EMAIL": "an email", "DIRECT_MESSAGE": "a message"}
