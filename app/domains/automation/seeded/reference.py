"""The rules-engine reference's rules (seed 002) the engine seeds since issue 60: urgent priority,
the weekly follow-up of a lead pending its decision, and a dentist's referral. Plain data, as the
API takes a rule, each with the `default_key` that seeds it once per clinic (defaults.py lists
them in DEFAULT_RULES; automation/service.py adds a missing default to every clinic)."""

from __future__ import annotations

from app.domains.leads.models import LeadPriority, LeadSourceCategory

# "Urgent priority: immediate follow-up": a call due 5 minutes after the lead became urgent,
# escalated to the clinic admins 10 minutes after its due time (15 in all) if nobody acted on it.
URGENT_CALL_MINUTES, URGENT_ESCALATE_AFTER_MINUTES = 5, 10
URGENT = LeadPriority.URGENT.value
DOCTOR_REFERRAL = LeadSourceCategory.DOCTOR_REFERRAL.value
URGENT_CALL = {
    "type": "create_task",
    "title": "Urgent: call now",
    "task_type": "CALL",
    "priority": "URGENT",
    "description": "An urgent lead: call within 5 minutes. The manager is told if it is not done in 15.",
    "assignee": {"kind": "lead_owner"},
    "delay": {"amount": URGENT_CALL_MINUTES, "unit": "minutes"},
    "escalate_after_minutes": URGENT_ESCALATE_AFTER_MINUTES,
    "notify_owner": True,
}
URGENT_DESCRIPTION = (
    "A lead {when} gets a call task due 5 minutes later, priority urgent, for its coordinator; if "
    "it is still open with no contact 15 minutes after the lead became urgent, the clinic admins "
    "are told."
)


# Speed to lead's condition since 0050: the urgent rule's call replaces its own for an urgent lead.
NOT_URGENT = {"field": "lead.priority", "operator": "not_equals", "value": URGENT}


def _urgent_rule(key: str, trigger: str, condition: dict, when: str) -> dict:
    return {
        "default_key": key,
        "name": f"Urgent: call within 5 minutes, escalate after 15 ({when})",
        "description": URGENT_DESCRIPTION.format(when=when),
        "trigger": trigger,
        "priority": 5,
        "conditions": [condition],
        "actions": [dict(URGENT_CALL)],
    }


# A lead captured urgent, and one made urgent later (by staff, a rule or an integrator's update):
# one rule per moment, the same call; a lead that stays urgent is not called again.
URGENT_RULES = (
    _urgent_rule(
        "urgent_priority",
        "lead.created",
        {"field": "lead.priority", "operator": "equals", "value": URGENT},
        "captured urgent",
    ),
    _urgent_rule(
        "urgent_priority_raised",
        "lead.updated",
        {"field": "lead.priority", "operator": "changed_to", "value": URGENT},
        "made urgent",
    ),
)

# "Negotiating status: weekly follow-up". The orthodontic pipeline's negotiation is pending_decision:
# a check-in call every 7 days of the stay, up to WEEKLY_FOLLOW_UPS times (seeded once before issue 60).
WEEKLY_FOLLOW_UPS = 4
WEEKLY_FOLLOW_UP = {
    "default_key": "pending_decision_check_in",
    "name": "Pending decision: weekly follow-up",
    "description": (
        f"A lead pending a decision gets a check-in call every 7 days of that stay, up to "
        f"{WEEKLY_FOLLOW_UPS} times; the owner is told. Leaving the stage, or closing, ends it."
    ),
    "trigger": "lead.stage_changed",
    "priority": 50,
    "conditions": [{"field": "event.new_stage", "operator": "equals", "value": "pending_decision"}],
    "actions": [
        {
            "type": "recurring_follow_up",
            "every_days": 7,
            "times": WEEKLY_FOLLOW_UPS,
            "while_stage": "pending_decision",
            "title": "Check in on the treatment decision",
            "task_type": "CALL",
            "priority": "NORMAL",
            "assignee": {"kind": "lead_owner"},
            "notify_owner": True,
        }
    ],
}

# "Referral lead special handling". The engine keeps no referring providers' contacts (a lead's
# referring_provider_id names none): the coordinator thanks the office and calls the family.
REFERRAL = {
    "default_key": "doctor_referral",
    "name": "Referral from a dentist: thank the office, call the family",
    "description": (
        "A lead referred by a dentist or another provider (a DOCTOR_REFERRAL source, or a referring "
        "provider named) gets a task for its coordinator within 2 business hours: thank the "
        "referring office and call the family."
    ),
    "trigger": "lead.created",
    "priority": 15,
    "conditions": [
        {
            "any": [
                {"field": "lead.source_category", "operator": "equals", "value": DOCTOR_REFERRAL},
                {"field": "lead.referring_provider_id", "operator": "exists", "value": True},
            ]
        }
    ],
    "actions": [
        {
            "type": "create_task",
            "title": "Referral: thank the referring office and call the family",
            "task_type": "CALL",
            "priority": "HIGH",
            "description": (
                "A dentist referred this family: call the referring office to thank them, then call "
                "the family (a referral is the warmest lead there is)."
            ),
            "assignee": {"kind": "lead_owner"},
            "delay": {"amount": 2, "unit": "business_hours"},
            "notify_owner": True,
        }
    ],
}
