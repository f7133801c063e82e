"""The rule language in the clinic's words (part of the wording table, app/console/wording.py): each
trigger, field, operator, group, action, unit and sequence outcome with a label and one line of
help, and the sentences a rule, a rule's test, a replay and a sequence read as. The rule builder,
the rule and sequence pages, the lead page's why-trail and the docs' table
(docs/guides/rules-and-sequences.md, `python -m app.devtools.rule_words_doc`) all say them from here.
Pure: the clinic's names (users, stages, sources, templates, sequences) come in as `Choices`.

tests/console/test_rule_words.py fails when the rule language gains a word this table lacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from app.console.wording import Names, code, field_name, when
from app.domains.activities.models import ActivityDirection, ActivityType, CallOutcome
from app.domains.automation import rules
from app.domains.leads.models import (
    HesitationReason,
    LeadPriority,
    LeadSourceCategory,
    LeadStatus,
    LostReason,
    PatientRelationship,
    PreferredContact,
    TreatmentInterest,
)
from app.domains.sequences import graph
from app.domains.tasks.models import LeadTaskType


@dataclass(frozen=True)
class Word:
    label: str
    help: str = ""


@dataclass(frozen=True)
class TriggerWord(Word):
    happened: str = ""  # the past, counted: "In the last 30 days a new lead came in 4 times"


@dataclass(frozen=True)
class FieldWord(Word):
    kind: str = "text"  # text, number, yes_no or choice
    values: str | None = None  # a choice's list: a key of VALUES, or stages, sources, users, triggers, fields
    group: str = "lead"  # lead, event or counted: the field list's headings
    many: bool = False  # the field holds a list (contains one of)


@dataclass(frozen=True)
class ActionWord(Word):
    one: str = ""  # what one of them is, counted: "1 task", "2 texts"
    many: str = ""


@dataclass(frozen=True)
class Choices:
    """The clinic's names a rule's words need: its users, sources and stages (Names), its message
    templates (id -> (name, channel)) and its sequences (id -> name)."""

    names: Names
    templates: dict[int, tuple[str, str]] = field(default_factory=dict)
    sequences: dict[int, str] = field(default_factory=dict)


# --- triggers -------------------------------------------------------------------------------------

TRIGGERS = {
    "lead.created": TriggerWord(
        "A new lead comes in",
        "A family is captured: a web form, a call, a walk-in, an import or an integration.",
        "a new lead came in",
    ),
    "lead.updated": TriggerWord(
        "A lead's details change",
        "Someone, a rule or an integration changes the lead's details (priority, contacts, interest...).",
        "a lead's details changed",
    ),
    "lead.stage_changed": TriggerWord(
        "A lead moves to another stage",
        "The lead moves in the pipeline, by hand, on the board or by a rule.",
        "a lead moved to another stage",
    ),
    "lead.assigned": TriggerWord(
        "A lead gets a new owner", "The lead is given to a coordinator.", "a lead got a new owner"
    ),
    "lead.converted": TriggerWord(
        "A lead starts treatment", "The family said yes: the lead is won.", "a lead started treatment"
    ),
    "lead.lost": TriggerWord(
        "A lead is marked lost", "The lead is closed as lost, with why.", "a lead was lost"
    ),
    "lead.stale": TriggerWord(
        "A lead goes quiet",
        "An open lead had no activity for the clinic's quiet days, or stayed too long in its stage.",
        "a lead went quiet",
    ),
    "activity.logged": TriggerWord(
        "Something is logged on a lead",
        "A call, email, text, message, visit or note is logged, by staff or by the engine.",
        "something was logged on a lead",
    ),
    "lead.attempt_failed": TriggerWord(
        "An attempt to reach the family fails",
        "A call nobody answered, or a text or email with no answer in its reply window (one a business day).",
        "an attempt to reach a family failed",
    ),
    "task.overdue": TriggerWord(
        "A task is overdue", "A lead's task passed its due time.", "a task went overdue"
    ),
    "lead.score_changed": TriggerWord(
        "A lead's chance of converting changes",
        "The lead's forecast chance of starting treatment moved by 5 points or more.",
        "a lead's chance of converting changed",
    ),
    "consultation.scheduled": TriggerWord(
        "A consultation is booked or moved",
        "A consultation is booked, by staff or on the booking page, or moved to a new time.",
        "a consultation was booked or moved",
    ),
    "consultation.attended": TriggerWord(
        "A family comes to their consultation",
        "The family checked in (or the lead was moved to consultation completed by hand).",
        "a family came to their consultation",
    ),
    "consultation.no_show": TriggerWord(
        "A family misses their consultation",
        "Nobody checked the family in by the start and its grace time.",
        "a family missed their consultation",
    ),
    "consultation.cancelled": TriggerWord(
        "A consultation is cancelled", "By the family or by staff.", "a consultation was cancelled"
    ),
    "recall.due": TriggerWord(
        "A recall date comes",
        "The day of a recall set on the lead, at the clinic's opening.",
        "a recall date came",
    ),
    "records.expiring": TriggerWord(
        "A family's records are about to expire",
        "Some days before an attended consultation's records expire, unless treatment was accepted.",
        "a family's records were about to expire",
    ),
    "benefits.reset": TriggerWord(
        "The benefits year starts again",
        "The clinic's benefits reset date, for each lead deciding for cost or financing.",
        "the benefits year started again",
    ),
    "email.opened": TriggerWord(
        "A family opens an email",
        "The first counted open of an email to the family.",
        "a family opened an email",
    ),
    "link.clicked": TriggerWord(
        "A family clicks a link",
        "The first click on a link in a message to the family.",
        "a family clicked a link",
    ),
}

# --- the values of choice fields ------------------------------------------------------------------


def _coded(enum, said: dict | None = None) -> dict[str, str]:
    return {member.value: (said or {}).get(member.value) or code(member.value) for member in enum}


VALUES: dict[str, dict] = {
    "status": _coded(LeadStatus),
    "source_category": _coded(
        LeadSourceCategory,
        {"WEB_ORGANIC": "Web (search)", "WEB_PAID": "Web (paid ads)", "WEB_SOCIAL": "Social media"},
    ),
    "preferred_contact": _coded(PreferredContact, {"TEXT": "Text message"}),
    "treatment_interest": _coded(
        TreatmentInterest, {"BRACES_METAL": "Metal braces", "BRACES_CLEAR": "Clear braces"}
    ),
    "patient_relationship": _coded(PatientRelationship, {"SELF": "The contact themself"}),
    "hesitation_reason": _coded(HesitationReason, {"approval": "Waiting for someone's approval"}),
    "priority": _coded(LeadPriority),
    "lost_reason": _coded(LostReason, {"COST_FINANCIAL": "Cost", "TIMING_NOT_RIGHT": "Timing not right"}),
    "outcome": _coded(
        CallOutcome, {"spoke": "Spoke with them", "callback_requested": "Asked to be called back"}
    ),
    "direction": {
        ActivityDirection.INBOUND.value: "From the family",
        ActivityDirection.OUTBOUND.value: "To the family",
    },
    "activity_type": _coded(
        ActivityType,
        {"SMS": "Text", "CONSULTATION_NO_SHOW": "Missed consultation", "DIRECT_MESSAGE": "Social message"},
    ),
    "channel": {
        "email": "Email",
        "sms": "Text",
        "whatsapp": "WhatsApp",
        "instagram": "Instagram",
        "call": "Call",
    },
    "sentiment": {
        "positive": "Positive",
        "neutral": "Neutral",
        "negative": "Negative",
        "unknown": "Not known",
    },
    "stale_kind": {"stage": "Too long in its stage", "quiet": "No activity for a while"},
    "suggestion": {
        "mark_lost": "Mark the lead lost",
        "call": "Call them",
        "schedule_consultation": "Book a consultation",
        "review": "Review the lead",
    },
    "task_type": _coded(
        LeadTaskType,
        {
            "SMS": "Text",
            "CONSULTATION_CONFIRM": "Confirm the consultation",
            "PAPERWORK_REMINDER": "Paperwork",
        },
    ),
    "task_priority": {p: code(p) for p in rules.PRIORITIES},
    "role": {
        "front_desk": "The front desk",
        "treatment_coordinator": "The treatment coordinators",
        "clinic_admin": "The clinic admins",
        "doctor": "The doctors",
    },
}

# --- fields ---------------------------------------------------------------------------------------

FIELD_GROUPS = {"lead": "The lead", "event": "What happened", "counted": "Counted for you"}


def _f(label: str, help: str = "", kind: str = "text", values: str | None = None, **more) -> FieldWord:
    return FieldWord(label, help, kind=kind, values=values, **more)


def _e(label: str, help: str = "", kind: str = "text", values: str | None = None, **more) -> FieldWord:
    return FieldWord(label, help, kind=kind, values=values, group="event", **more)


FIELDS = {
    "lead.status": _f("Status", "New, active, converted, lost or archived.", "choice", "status"),
    "lead.pipeline_stage": _f("Stage", "Where the lead is in your pipeline.", "choice", "stages"),
    "lead.source_id": _f(
        "Source", "Where the family came from, as your sources name it.", "choice", "sources"
    ),
    "lead.source_category": _f(
        "Kind of source", "Doctor referral, web, walk-in...", "choice", "source_category"
    ),
    "lead.source_campaign": _f("Campaign", "The campaign the lead came with, as typed."),
    "lead.assigned_to_id": _f("Owner", "The coordinator the lead belongs to.", "choice", "users"),
    "lead.preferred_contact": _f(
        "Preferred contact", "How the family likes to be reached.", "choice", "preferred_contact"
    ),
    "lead.treatment_interest": _f(
        "Treatment interest", "What the family asked about.", "choice", "treatment_interest"
    ),
    "lead.email": _f("Email address"),
    "lead.phone": _f("Phone number"),
    "lead.city": _f("City"),
    "lead.state": _f("State"),
    "lead.postal_code": _f("Postal code"),
    "lead.insurance_carrier": _f("Insurance carrier"),
    "lead.patient_relationship": _f(
        "Who the patient is", "The contact themself, their child, spouse...", "choice", "patient_relationship"
    ),
    "lead.suggested_action": _f(
        "Suggested next step", "What the engine last suggested.", "choice", "suggestion"
    ),
    "lead.hesitation_reason": _f(
        "Why they hesitate", "Asked when the lead is pending a decision.", "choice", "hesitation_reason"
    ),
    "lead.do_not_contact": _f("Do not contact", "The family asked not to be contacted at all.", "yes_no"),
    "lead.email_opt_out": _f("No emails", "The family asked for no emails.", "yes_no"),
    "lead.sms_opt_out": _f("No texts", "The family asked for no texts.", "yes_no"),
    "lead.score": _f("Chance of converting", "From 0 to 1: 0.6 is a 60% chance.", "number"),
    "lead.priority": _f("Priority", "Normal, high or urgent.", "choice", "priority"),
    "lead.referring_provider_id": _f("Referring dentist", "The dentist who referred the family, if any."),
    "event.type": _e("What happened", "The kind of event.", "choice", "triggers"),
    "event.previous_stage": _e("Stage it left", "On a stage move, lost or converted.", "choice", "stages"),
    "event.new_stage": _e("Stage it entered", "On a stage move.", "choice", "stages"),
    "event.stage": _e("Stage it is quiet in", "On a lead gone quiet.", "choice", "stages"),
    "event.kind": _e("Why it is quiet", "Too long in its stage, or no activity.", "choice", "stale_kind"),
    "event.outcome": _e("Call outcome", "On a call logged.", "choice", "outcome"),
    "event.direction": _e("Direction", "From the family or to them.", "choice", "direction"),
    "event.activity_type": _e(
        "What was logged", "A call, an email, a text, a visit, a note...", "choice", "activity_type"
    ),
    "event.source_category": _e(
        "Kind of source (of the event)", "As the event names it.", "choice", "source_category"
    ),
    "event.channel": _e("Channel", "Email, text, WhatsApp or Instagram.", "choice", "channel"),
    "event.reason": _e("Why it was lost", "On a lead marked lost.", "choice", "lost_reason"),
    "event.from_user_id": _e("Previous owner", "On a new owner.", "choice", "users"),
    "event.to_user_id": _e("New owner", "On a new owner.", "choice", "users"),
    "event.changed": _e(
        "Details that changed", "On a change of the lead's details.", "choice", "fields", many=True
    ),
    "event.days_in_stage": _e("Days in its stage", "On a lead gone quiet.", "number"),
    "event.system": _e("Logged by the engine", "Rather than by a person.", "yes_no"),
    "event.contact": _e(
        "A two-way exchange", "An answered call, a message from the family, a visit or a booking.", "yes_no"
    ),
    "event.attempt": _e("An attempt to reach them", "An outbound call, email or text.", "yes_no"),
    "event.failed_attempts": _e(
        "Failed attempts it makes", "On a failed attempt: how many in a row.", "number"
    ),
    "event.score": _e("New chance of converting", "On a change of the chance, from 0 to 1.", "number"),
    "event.previous_score": _e("Previous chance of converting", "From 0 to 1.", "number"),
    "event.rescheduled": _e("Moved to a new time", "On a consultation booked: it was moved.", "yes_no"),
    "failed_attempts_in_a_row": FieldWord(
        "Failed attempts since the last contact",
        "Calls, emails and texts with no answer.",
        "number",
        group="counted",
    ),
    "days_in_stage": FieldWord("Days in the current stage", "Whole days.", "number", group="counted"),
    "hours_since_created": FieldWord("Hours since the lead came in", "", "number", group="counted"),
    "stage_task_template_id": FieldWord(
        "A task template for the stage", "The stage the lead entered has a task template.", group="counted"
    ),
    "reply_sentiment": FieldWord(
        "Tone of the reply",
        "A reply by email or text: positive, neutral or negative.",
        "choice",
        "sentiment",
        group="counted",
    ),
}

# --- operators, groups ----------------------------------------------------------------------------

OPERATORS = {
    "equals": Word("is", "The same value (capitals do not matter)."),
    "not_equals": Word("is not", "Any other value, or none."),
    "contains": Word("contains", "The text holds these letters, or the list holds this value."),
    "greater_than": Word("is more than", "A number above this one."),
    "less_than": Word("is less than", "A number below this one."),
    "in": Word("is one of", "Any of the values chosen."),
    "not_in": Word("is none of", "None of the values chosen."),
    "exists": Word("is filled in or empty", "Whether there is a value at all."),
    "changed_to": Word("changes to", "This event changed it to this value."),
}
BY_KIND = {
    "text": ("equals", "not_equals", "contains", "in", "not_in", "exists", "changed_to"),
    "number": ("equals", "not_equals", "greater_than", "less_than", "exists", "changed_to"),
    "yes_no": ("equals", "changed_to"),
    "choice": ("equals", "not_equals", "in", "not_in", "exists", "changed_to"),
    "many": ("contains", "in", "not_in", "exists"),
}
GROUPS = {
    "all": Word("All of these are true", "Every condition below must hold."),
    "any": Word("Any of these is true", "One condition below is enough."),
    "not": Word("This is not true", "The condition below must not hold."),
}
YES_NO = {"yes": "yes", "no": "no"}
FILLED = {"yes": "filled in", "no": "empty"}

# --- actions --------------------------------------------------------------------------------------

ACTIONS = {
    "create_task": ActionWord(
        "Create a task", "A task for someone on staff, due when you say.", "task", "tasks"
    ),
    "send_email": ActionWord(
        "Send an email", "To the family, from a template or written here.", "email", "emails"
    ),
    "send_sms": ActionWord("Send a text", "To the family, from a template or written here.", "text", "texts"),
    "send_instagram": ActionWord(
        "Send an Instagram message",
        "Only within a day of the family's last Instagram message.",
        "Instagram message",
        "Instagram messages",
    ),
    "send_whatsapp": ActionWord(
        "Send a WhatsApp message",
        "Free text within a day of their last message; else an approved template.",
        "WhatsApp message",
        "WhatsApp messages",
    ),
    "notify": ActionWord(
        "Tell someone on staff", "A notification in the app.", "notification", "notifications"
    ),
    "assign": ActionWord(
        "Give the lead an owner", "A person, or in turn as your clinic assigns.", "assignment", "assignments"
    ),
    "enroll_sequence": ActionWord(
        "Start a sequence", "The lead starts one of your sequences.", "sequence start", "sequence starts"
    ),
    "suggest": ActionWord(
        "Suggest a next step", "Shown on the lead to whoever works it.", "suggestion", "suggestions"
    ),
    "update_stage": ActionWord(
        "Move the lead to a stage", "Forward in the pipeline, or lost with why.", "stage move", "stage moves"
    ),
    "set_priority": ActionWord(
        "Set the lead's priority", "Normal, high or urgent.", "priority change", "priority changes"
    ),
    "recurring_follow_up": ActionWord(
        "Repeat a follow-up task",
        "A task every few days while the lead stays in a stage.",
        "follow-up task",
        "follow-up tasks",
    ),
}
ASSIGNEES = {"lead_owner": "The lead's owner", "round_robin": "The next coordinator in turn"}
# What an action's other settings (made through the API: the builder keeps them) are, said.
KEPT = {
    "deferred": "made only when it is due",
    "recheck": "checked again before it is made",
    "escalate_after_minutes": "escalated to the admins if still open after a while",
    "follow_lead_priority": "keeps its own priority",
    "once_per_lead": "once per lead",
    "once_per_hours": "at most one every few hours",
    "break_up": "the last message to a family who never answered",
    "fallback_channel": "tried by the other channel if this one fails",
    "template": "the stage's own task template",
    "kind": "a kind of notification",
    "content_sid": "an approved WhatsApp template",
    "content_variables": "the WhatsApp template's details",
}

# --- units ----------------------------------------------------------------------------------------

UNITS = {
    "minutes": Word("minutes", "Counted on the clock, day and night."),
    "hours": Word("hours", "Counted on the clock, day and night."),
    "days": Word("days", "Calendar days."),
    "business_minutes": Word("business minutes", "Counted only while the clinic is open."),
    "business_hours": Word("business hours", "Counted only while the clinic is open."),
    "business_days": Word("business days", "Days the clinic is open."),
}
ANCHORS = {"": "after it happens", "consultation_start": "before the consultation starts"}

# --- sequences ------------------------------------------------------------------------------------

WAIT_EVENTS = {
    "replied": Word("they reply", "A call, email or text from the family."),
    "email_opened": Word("they open the email", "An open by a person, not a mail program."),
    "link_clicked": Word("they click a link", "A link in one of their messages."),
    "consultation_booked": Word("they book a consultation", "The lead moves to consultation scheduled."),
    "call_logged": Word("a call is logged", "A call with an outcome (some outcomes only, if chosen)."),
    graph.TIMEOUT: Word("nothing comes in time", "The wait is over."),
}
CHANNELS = {
    "email": "send an email",
    "sms": "send a text",
    "instagram": "send an Instagram message",
    "whatsapp": "send a WhatsApp message",
    "call": "make a call task",
}

# --- sentences ------------------------------------------------------------------------------------


def _plural(n, one: str, many: str) -> str:
    return f"{n:g} {one if n == 1 else many}"


def duration(amount, unit: str) -> str:
    """5, business_minutes -> "5 business minutes"; 1, days -> "1 day"."""
    words = UNITS[unit].label if unit in UNITS else code(str(unit)).lower()
    if not isinstance(amount, int | float) or isinstance(amount, bool):
        return f"{amount} {words}"
    return _plural(amount, words[:-1] if words.endswith("s") else words, words)


def later(delay: dict | None, *, due: bool = False) -> str:
    """An action's delay: "at once", "5 business minutes later", "2 hours before the consultation starts";
    a task says when it is due ("due at once", "due 1 business day later")."""
    delay = delay or {}
    amount, unit = delay.get("amount", 0), delay.get("unit", "minutes")
    if delay.get("before"):
        text = f"{duration(amount, unit)} {ANCHORS.get(delay['before'], 'before')}"
    else:
        text = "at once" if not amount else f"{duration(amount, unit)} later"
    return f"due {text}" if due else text


def trigger_label(trigger: str) -> str:
    return TRIGGERS[trigger].label if trigger in TRIGGERS else code(str(trigger or "").replace(".", " "))


def field_label(name: str) -> str:
    return FIELDS[name].label if name in FIELDS else "a detail the builder does not name"


def _field_word(name: str) -> FieldWord:
    return FIELDS.get(name) or FieldWord("a detail", "")


def value_choices(name: str, choices: Choices) -> dict:
    """The values a choice field offers, value -> words (ids as numbers for users and sources)."""
    word = _field_word(name)
    if word.values == "stages":
        return dict(choices.names.stages)
    if word.values == "sources":
        return dict(choices.names.sources)
    if word.values == "users":
        return dict(choices.names.users)
    if word.values == "triggers":
        return {key: trigger.label for key, trigger in TRIGGERS.items()}
    if word.values == "fields":
        return {key.removeprefix("lead."): FIELDS[key].label for key in FIELDS if key.startswith("lead.")}
    return dict(VALUES.get(word.values or "", {}))


def say_value(name: str, value, choices: Choices) -> str:
    """A condition's value or a value seen, as words: a stage's name, a user's, "yes", “Oakland”."""
    word = _field_word(name)
    if isinstance(value, list):
        if not value:
            return "nothing chosen yet"
        said = [say_value(name, item, choices) for item in value]
        return " or ".join(said) if len(said) < 3 else ", ".join(said[:-1]) + " or " + said[-1]
    if value is None or value == "":
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if word.kind == "choice":
        known = value_choices(name, choices)
        if value in known:
            return known[value]
        if word.values == "fields" and isinstance(value, str):
            return field_name(value)
        return code(str(value)) if isinstance(value, str) else str(value)
    if word.kind == "number" and isinstance(value, float):
        return f"{value:g}"
    return f"“{value}”" if isinstance(value, str) else str(value)


def condition_sentence(condition: dict, choices: Choices) -> str:
    """{"field": "lead.city", "operator": "in", "value": ["Oakland", "Fresno"]} -> "City is one of
    “Oakland” or “Fresno”"."""
    name, operator = condition.get("field", ""), condition.get("operator", "")
    label = field_label(name)
    if operator == "exists":
        return f"{label} is {'filled in' if condition.get('value', True) is not False else 'empty'}"
    said = OPERATORS[operator].label if operator in OPERATORS else "compares with"
    return f"{label} {said} {say_value(name, condition.get('value'), choices)}"


def seen_sentence(condition: dict, choices: Choices) -> str:
    """What a condition saw, as the test and the replay say it: "it is “Fresno”"; "" when withheld."""
    if "seen" not in condition:
        return "what it saw is not shown to you"
    return f"it is {say_value(condition.get('field', ''), condition['seen'], choices)}"


def group_of(item: dict) -> str | None:
    return rules.group_of(item) if isinstance(item, dict) else None


def items_of(item: dict) -> list:
    """A group's items (a `not` holds one)."""
    kind = group_of(item)
    if kind is None:
        return []
    return [item["not"]] if kind == "not" else list(item[kind] or [])


def conditions_sentence(items: list, choices: Choices) -> str:
    """A list of conditions (all must hold) as one line: "City is “Oakland” and any of: ..."."""
    parts = []
    for item in items or []:
        kind = group_of(item)
        if kind is None:
            parts.append(condition_sentence(item, choices))
        elif kind == "not":
            parts.append(f"not ({conditions_sentence(items_of(item), choices)})")
        else:
            joiner = " and " if kind == "all" else " or "
            parts.append("(" + joiner.join(conditions_sentence([i], choices) for i in items_of(item)) + ")")
    return " and ".join(parts)


def _assignee(assignee: dict | None, choices: Choices) -> str:
    assignee = assignee or {"kind": "lead_owner"}
    kind = assignee.get("kind")
    if kind == "role":
        return VALUES["role"].get(assignee.get("role"), "a role").replace("The ", "the ", 1)
    if kind == "user":
        return choices.names.users.get(assignee.get("user_id"), "someone no longer on the team")
    return ASSIGNEES.get(kind, "the lead's owner").replace("The ", "the ", 1)


def _template(action: dict, choices: Choices) -> str:
    found = choices.templates.get(action.get("template_id"))
    return f"the template “{found[0]}”" if found else "a template no longer there"


def _quoted(text, limit: int = 80) -> str:
    text = " ".join(str(text or "").split())
    return f"“{text if len(text) <= limit else text[: limit - 1] + '…'}”"


def _task_phrase(action: dict, choices: Choices) -> str:
    what = (
        "the stage's task"
        if action.get("template") == "stage"
        else f"a task {_quoted(action.get('title'))}"
        if action.get("title")
        else "a task"
    )
    said = []
    if "task_type" in action or (action.get("template") != "stage" and "template_id" not in action):
        said.append(VALUES["task_type"].get(action.get("task_type", "CALL"), "task").lower())
    priority = action.get("priority")
    if priority and priority != "NORMAL":
        said.append(f"priority {priority.lower()}")
    kind = f" ({', '.join(said)})" if said else ""
    return f"{what}{kind} for {_assignee(action.get('assignee'), choices)}"


def _message_phrase(action: dict, choices: Choices) -> str:
    noun = ACTIONS[action["type"]].one
    if "template_id" in action:
        return f"send the {noun} from {_template(action, choices)}"
    if action["type"] == "send_email" and action.get("subject"):
        return f"send the {noun} {_quoted(action['subject'])}"
    if action.get("body"):
        return f"send the {noun} {_quoted(action['body'], 60)}"
    return f"send {'an' if noun[0] in 'aeiouAEIOU' else 'a'} {noun}"


def _notify_phrase(action: dict, choices: Choices) -> str:
    whom = []
    if action.get("lead_owner"):
        whom.append("the lead's owner")
    whom += [
        VALUES["role"].get(role, "a role").replace("The ", "the ", 1) for role in action.get("roles") or []
    ]
    whom += [
        choices.names.users.get(user, "someone no longer on the team") for user in action.get("users") or []
    ]
    title = f": {_quoted(action.get('title'))}" if action.get("title") else ""
    return f"tell {' and '.join(whom) or 'nobody yet'}{title}"


def action_sentence(action: dict, choices: Choices) -> str:
    """One action as a sentence: "create a task “Call the family” (call) for the lead's owner, due 5
    business minutes later"."""
    kind = action.get("type")
    delay = action.get("delay")
    if kind == "create_task":
        return f"create {_task_phrase(action, choices)}, {later(delay, due=True)}"
    if kind == "recurring_follow_up":
        stage = choices.names.stages.get(
            action.get("while_stage"), code(str(action.get("while_stage") or ""))
        )
        every = duration(action.get("every_days", 0), "days")
        return (
            f"create {_task_phrase(action, choices)} every {every} while the lead stays in {stage}, up to "
            f"{_plural(action.get('times', 0), 'time', 'times')}"
        )
    if kind in rules.MESSAGE_ACTIONS:
        text = _message_phrase(action, choices)
    elif kind == "notify":
        text = _notify_phrase(action, choices)
    elif kind == "assign":
        user = action.get("user_id")
        text = (
            f"give the lead to {choices.names.users.get(user, 'someone no longer on the team')}"
            if user
            else "give the lead an owner in turn, as the clinic assigns"
        )
    elif kind == "enroll_sequence":
        text = f"start the sequence “{choices.sequences.get(action.get('sequence_id'), 'no longer there')}”"
    elif kind == "suggest":
        text = f"suggest: {VALUES['suggestion'].get(action.get('suggestion'), 'a next step').lower()}"
    elif kind == "update_stage":
        stage = action.get("stage")
        text = f"move the lead to {choices.names.stages.get(stage, code(str(stage or 'a stage')))}"
        if action.get("reason"):
            text += f" ({VALUES['lost_reason'].get(action['reason'], 'a reason').lower()})"
    elif kind == "set_priority":
        text = f"make the lead's priority {str(action.get('priority') or 'normal').lower()}"
    else:
        text = "do something the builder does not name"
    return (
        text
        if not delay or (not delay.get("amount") and not delay.get("before"))
        else f"{text}, {later(delay)}"
    )


def kept_words(keys) -> list[str]:
    return [KEPT.get(key, "another setting") for key in keys]


def totals_sentence(totals: dict) -> str:
    """{"create_task": 2, "send_sms": 1} -> "2 tasks and 1 text"."""
    said = [
        _plural(n, ACTIONS[kind].one, ACTIONS[kind].many) if kind in ACTIONS else _plural(n, "step", "steps")
        for kind, n in totals.items()
    ]
    return " and ".join(said) if len(said) < 3 else ", ".join(said[:-1]) + " and " + said[-1]


def replay_sentence(answer: dict, trigger: str) -> str:
    """The 30 days' replay: "In the last 30 days a new lead came in 4 times: this rule would have
    matched 1 of them and made 1 task."."""
    happened = TRIGGERS[trigger].happened if trigger in TRIGGERS else "its event happened"
    considered, matched = answer["events_considered"], answer["events_matched"]
    start = f"In the last {answer['days']} days {happened} {_plural(considered, 'time', 'times')}"
    if not considered:
        return f"{start}: nothing to replay."
    if not matched:
        return f"{start}: this rule would have matched none of them."
    made = totals_sentence(answer.get("totals") or {})
    return f"{start}: this rule would have matched {matched} of them{' and made ' + made if made else ''}."


def planned_sentence(planned: dict, choices: Choices) -> str:
    """A tried rule's action with its time: "create a task ... — Mon 12 May 2025, 09:05 PDT"."""
    return f"{action_sentence(planned['action'], choices)}: {when(planned['at'], choices.names)}"


def at(moment: datetime | str | None, choices: Choices) -> str:
    return when(moment, choices.names)


# --- sequences ------------------------------------------------------------------------------------


def step_name(steps: list[dict], key: str | None, index: int) -> str:
    """Where a path leads, by the step's number ("step 3") or "the end"; no target is the next step."""
    if key == graph.END:
        return "the end"
    target = index + 1 if key is None else graph.index_of(steps, key)
    if target is None or target >= len(steps):
        return "the end"
    return f"step {target + 1}"


def step_sentence(step: dict, choices: Choices) -> str:
    """What a step does: "send a text “Hi {{ first_name }}”", "make a call task “Call them”"."""
    what = CHANNELS.get(step.get("channel"), "do a step")
    if step.get("template_id"):
        found = choices.templates.get(step["template_id"])
        return f"{what} from the template “{found[0] if found else 'no longer there'}”"
    text = step.get("title") or step.get("subject") or step.get("body")
    return f"{what} {_quoted(text)}" if text else what


def wait_sentence(wait: dict) -> str:
    """ "Then it waits up to 2 days for they reply or they click a link"."""
    events = [WAIT_EVENTS[e].label if e in WAIT_EVENTS else "an event" for e in wait.get("for") or []]
    timeout = wait.get("timeout") or {}
    outcomes = ""
    if wait.get("call_outcomes"):
        outcomes = " (" + ", ".join(VALUES["outcome"].get(o, o) for o in wait["call_outcomes"]).lower() + ")"
    return (
        f"Then it waits up to {duration(timeout.get('amount', 0), timeout.get('unit', 'days'))} until "
        f"{' or '.join(events)}{outcomes}."
    )


def paths(step: dict, steps: list[dict], index: int) -> list[dict]:
    """A waiting step's paths: each outcome it waits for (and the timeout) with where it leads."""
    wait, on = step.get("wait") or {}, step.get("on") or {}
    outcomes = [*(wait.get("for") or []), graph.TIMEOUT]
    return [
        {
            "outcome": outcome,
            "if": WAIT_EVENTS[outcome].label,
            "goes": step_name(steps, on.get(outcome), index),
        }
        for outcome in outcomes
    ]


# --- errors, said where they are ------------------------------------------------------------------

_PLAIN = {
    "name": "Give it a name.",
    "trigger": "Choose when the rule runs.",
    "field": "Choose what to check.",
    "operator": "Choose how to compare.",
    "type": "Choose what to do.",
    "task_type": "Choose the kind of task.",
    "priority": "Choose a priority.",
    "assignee": "Choose who gets the task.",
    "users": "Choose whom to tell.",
    "roles": "Choose whom to tell.",
    "policy": "Choose who gets the lead.",
    "user_id": "Choose who gets the lead.",
    "sequence_id": "Choose a sequence.",
    "suggestion": "Choose what to suggest.",
    "template_id": "Choose a message template.",
    "every_days": "Every 1 to 365 days.",
    "times": "From 1 to 52 times.",
    "while_stage": "Choose the stage the lead must stay in.",
    "once_per_hours": "At most one every 1 to 8,760 hours.",
    "lead_id": "Choose a lead to try the rule on.",
    "amount": "A whole number, 0 or more.",
    "timeout": "A whole number, 1 or more.",
}


def problem(path: str, message: str) -> str:
    """An error of the rule language (by path, in its own terms) as the builder says it beside the field."""
    last = path.rsplit(".", 1)[-1]
    if "merge field" in message or "merge fields" in message:
        return "This text has a mistake in its merge fields (the names in {{ }})."
    if "not both" in message:
        return "Choose a template or write the text here, not both."
    if last in ("title", "subject", "body"):
        return {"title": "Give it a title.", "subject": "Write the email's subject."}.get(
            last, "Write the message."
        )
    if last == "value":
        if "list" in message:
            return "Choose or type at least one value."
        return "Type a number." if "number" in message else "Give a value to compare with."
    if last == "delay" or "amount" in message:
        if "before" in message or "counts in" in message:
            return "Counting back from the consultation works in minutes, hours or days."
        return "A whole number from 0 to 525,600, and a unit."
    if last == "stage":
        if "converts" in message:
            return "Starting treatment is a person's decision: a rule cannot convert a lead."
        return "Choose a stage."
    if last == "reason":
        return "Choose why the lead is lost."
    if last in _PLAIN:
        return _PLAIN[last]
    if last in rules.GROUPS:
        return f"Groups go at most {rules.MAX_GROUP_DEPTH} deep."
    if path.startswith("actions") and "non-empty" in message:
        return "Add at least one thing for the rule to do."
    if "non-empty" in message or "a group" in message:
        return "A group needs at least one condition."
    if "at most" in message:
        return f"At most {rules.MAX_CONDITIONS} conditions in all."
    return "This is not right yet."


def number_of(path: str) -> str:
    """conditions.0.any.1 -> "1.2": a condition's or group's number as the builder shows it."""
    return ".".join(str(int(part) + 1) for part in path.split(".") if part.isdigit())


def where(path: str) -> str:
    """What an error's path names, in words: "Name", "Condition 1.2", "Action 1", "Step 2"."""
    head = path.split(".", 1)[0]
    parts = path.split(".")
    if head == "actions":
        return f"Action {int(parts[1]) + 1}" if len(parts) > 1 and parts[1].isdigit() else "Actions"
    if head == "steps":
        return f"Step {int(parts[1]) + 1}" if len(parts) > 1 and parts[1].isdigit() else "Steps"
    if head in ("conditions", "entry_conditions", "exit_conditions"):
        prefix = {"conditions": "", "entry_conditions": "Who may start: ", "exit_conditions": "Who stops: "}[
            head
        ]
        number = number_of(path)
        if not number:
            return prefix.rstrip(": ") or "Conditions"
        return f"{prefix}{'Group' if parts[-1] in rules.GROUPS else 'Condition'} {number}"
    return {"name": "Name", "trigger": "When", "lead_id": "Try it on a lead"}.get(head, "This form")


# --- the builder's pickers --------------------------------------------------------------------------


def operators_for(name: str, current: str | None = None) -> list[tuple[str, str]]:
    """The ways a field compares (a yes/no field: is, changes to), and the operator it has if another."""
    word = FIELDS.get(name)
    kind = "many" if word and word.many else word.kind if word else "text"
    keys = list(BY_KIND[kind])
    if current in OPERATORS and current not in keys:
        keys.append(current)
    return [(key, OPERATORS[key].label) for key in keys]


def value_options(name: str, choices: Choices, current=None) -> dict:
    """A choice field's values, value -> words, with the one it has if the list lacks it."""
    found = value_choices(name, choices)
    for value in current if isinstance(current, list) else [current]:
        if value not in (None, "") and not isinstance(value, list | dict) and value not in found:
            found[value] = say_value(name, value, choices)
    return found


def typed(value) -> str:
    """A value as a text box shows it: a list as "Oakland, Fresno"."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(typed(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def who(ref: str | None, choices: Choices) -> str:
    """Who saved a version: a user's name, an integration, or the engine (a default rule)."""
    kind, _, rest = (ref or "").partition(":")
    if kind == "user" and rest.isdigit():
        return choices.names.users.get(int(rest), "someone no longer on the team")
    if kind == "api_key":
        return "an integration"
    return "the engine (a default rule)"


def evaluated_sentence(condition: dict, choices: Choices) -> str:
    """A condition as a test, a replay or a why-trail evaluated it: "City is “Oakland”: it is
    “Fresno”, so this does not hold."; a condition on a PHI field says nothing of it to a reader who
    may not see it."""
    if "result" not in condition:
        return (
            f"{field_label(condition.get('field', ''))}: what it checks and what it saw are not shown to you."
        )
    holds = "so this holds" if condition["result"] else "so this does not hold"
    return f"{condition_sentence(condition, choices)}: {seen_sentence(condition, choices)}, {holds}."


def rule_sentence(rule: dict, choices: Choices) -> str:
    """A whole rule on one line: "When a new lead comes in, if City is “Oakland”: create a task ..."."""
    start = f"When {trigger_label(rule.get('trigger', '')).lower()}"
    conditions = conditions_sentence(rule.get("conditions") or [], choices)
    actions = [action_sentence(action, choices) for action in rule.get("actions") or []]
    does = "; then ".join(actions) if actions else "nothing yet"
    return f"{start}{', if ' + conditions if conditions else ''}: {does}."


def first_up(text: str) -> str:
    """A sentence's first letter up, the rest as it is (Jinja's `capitalize` lowers the rest)."""
    return text[:1].upper() + text[1:]


MERGE_HINT = (
    "Names in double braces are filled in for each family: {{ first_name }}, {{ clinic_name }}, "
    "{{ booking_link }} (their link to book)."
)


def trail_sentence(condition: dict, names: Names) -> str:
    """A condition on a lead's why-trail (as evaluated then), in words."""
    return evaluated_sentence(condition, Choices(names=names))


def action_label(kind: str | None) -> str:
    """An automated step's kind as a person reads it: a rule's action, or a sequence's own steps."""
    if kind in ACTIONS:
        return ACTIONS[kind].label
    return code(kind or "")
